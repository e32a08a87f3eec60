"""The quantization acceptance table (slow): FP32 / PTQ / QAT top-1 for mobilevit_xxs,
efficientformer_l1 and attn_vgg16 (linear attention) trained on builtin:digits at 64 px, the INT8
ONNX on onnxruntime against the torch INT8 model and against onnxruntime's own quantize_static
defaults, and distributed QAT (torchrun, 2 processes) against the single-process run."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from helpers.models import CACHE, REPO
from helpers.models import code_hash as _code_hash

from edgeattn.checkpoint import load_checkpoint
from edgeattn.data import load_split

pytestmark = pytest.mark.slow

MODELS = {
    "mobilevit_xxs": ("mobilevit_xxs", {}),
    "efficientformer_l1": ("efficientformer_l1", {}),
    # width 0.5 keeps CPU training time sane; the block structure (13 convs, 5 linear-attention blocks) is VGG16's
    "attn_vgg16_linear": ("attn_vgg16", {"attention": "linear", "batch_norm": True, "width": 0.5}),
}
SIZE, EPOCHS = 64, 8


def trained_fp32(key: str) -> str:
    from filelock import FileLock

    from edgeattn.train import train_checkpoint

    name, options = MODELS[key]
    ident = hashlib.sha256(
        json.dumps([name, options, SIZE, EPOCHS, _code_hash()], sort_keys=True).encode()
    ).hexdigest()[:16]
    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / f"slow-{key}-{ident}.pt"
    with FileLock(str(path) + ".lock"):
        if not path.exists():
            train_checkpoint(
                model=name, data="builtin:digits", out=path, input_size=SIZE, options=options, epochs=EPOCHS
            )
    return str(path)


def ort_top1(path, x: np.ndarray, labels: np.ndarray) -> float:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 2
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    logits = np.concatenate([sess.run(None, {"input": x[i : i + 64]})[0] for i in range(0, len(x), 64)])
    return 100.0 * float(np.mean(logits.argmax(1) == labels))


def peer_int8(fp32_ckpt: str, calib: np.ndarray, tmp_path) -> str:
    """onnxruntime.quantization.quantize_static with its defaults on our FP32 ONNX (the peer tool)."""
    from onnxruntime.quantization import CalibrationDataReader, quantize_static

    handle = load_checkpoint(fp32_ckpt)
    fp32 = tmp_path / "fp32.onnx"
    torch.onnx.export(
        handle.module,
        (torch.zeros(handle.input_spec.shape(1)),),
        str(fp32),
        input_names=["input"],
        output_names=["logits"],
        opset_version=17,
        dynamo=False,
        dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
    )

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.it = iter([{"input": calib[i : i + 1]} for i in range(len(calib))])

        def get_next(self):
            return next(self.it, None)

    out = tmp_path / "peer.onnx"
    quantize_static(str(fp32), str(out), Reader())
    return str(out)


def test_quantization_table(tmp_path):
    from edgeattn.quantize import quantize_checkpoint
    from edgeattn.quantize.onnx_export import export_quantized_onnx

    rows, failures = [], []
    for key in MODELS:
        ckpt = trained_fp32(key)
        d = tmp_path / key
        d.mkdir()
        ptq = quantize_checkpoint(ckpt, "builtin:digits", d / "ptq.pt")
        qat = quantize_checkpoint(ckpt, "builtin:digits", d / "qat.pt", qat=True, epochs=2)
        fp32_top1, ptq_top1, qat_top1 = ptq.top1.fp32, ptq.top1.ptq, qat.top1.qat
        handle = load_checkpoint(d / "qat.pt")
        val = load_split("builtin:digits", "val", SIZE)
        x, labels = val.to_model_input(handle.input_spec).numpy(), val.labels.numpy()
        export_quantized_onnx(handle, d / "qat.onnx", dynamic_batch=True)
        assert all(n.domain in ("", "ai.onnx") for n in onnx.load(str(d / "qat.onnx")).graph.node)
        onnx_top1 = ort_top1(d / "qat.onnx", x, labels)
        calib = (
            load_split("builtin:digits", "calib", SIZE).subset(300).to_model_input(handle.input_spec).numpy()
        )
        peer_top1 = ort_top1(peer_int8(ckpt, calib, d), x, labels)
        rows.append(
            (
                key,
                fp32_top1,
                ptq_top1,
                qat_top1,
                onnx_top1,
                peer_top1,
                ptq.int8_layers,
                ptq.float_layers,
            )
        )
        if fp32_top1 - ptq_top1 > 1.0:
            failures.append(f"{key}: PTQ loses {fp32_top1 - ptq_top1:.2f} > 1.0")
        if fp32_top1 - qat_top1 > 0.5:
            failures.append(f"{key}: QAT loses {fp32_top1 - qat_top1:.2f} > 0.5")
        if qat_top1 < ptq_top1:
            failures.append(f"{key}: QAT {qat_top1:.2f} < PTQ {ptq_top1:.2f}")
        if abs(onnx_top1 - qat_top1) > 0.5:
            failures.append(f"{key}: INT8 ONNX on onnxruntime {onnx_top1:.2f} vs torch {qat_top1:.2f}")
    print("\nmodel                 FP32    PTQ    QAT  ORT-INT8  peer-INT8  layers int8/float")
    for key, f, p, q, o, peer, ni, nf in rows:
        print(f"{key:20s} {f:6.2f} {p:6.2f} {q:6.2f}    {o:6.2f}     {peer:6.2f}  {ni}/{nf}")
    assert not failures, "; ".join(failures)


def test_torchrun_qat_matches_single_process(tmp_path):
    # mobilevit_xxs: the attention model whose QAT epoch is cheap on CPU (attn_vgg16's takes ~10x longer)
    ckpt = trained_fp32("mobilevit_xxs")
    single = tmp_path / "single.pt"
    args = [ckpt, "--data", "builtin:digits", "--qat", "--epochs", "2", "--calib-size", "300"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "EDGEATTN_QUIET": "1"}
    subprocess.run(
        [
            sys.executable,
            "-m",
            "edgeattn",
            "quantize",
            *args,
            "--out",
            str(single),
            "--json",
            str(tmp_path / "s.json"),
        ],
        check=True,
        cwd=REPO,
        env=env,
        timeout=3600,
    )
    multi = tmp_path / "multi.pt"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc-per-node",
            "2",
            "-m",
            "edgeattn",
            "quantize",
            *args,
            "--out",
            str(multi),
            "--json",
            str(tmp_path / "m.json"),
        ],
        check=True,
        cwd=REPO,
        env=env,
        timeout=3600,
    )
    s = json.loads((tmp_path / "s.json").read_text())["top1"]["qat"]
    m = json.loads((tmp_path / "m.json").read_text())["top1"]["qat"]
    print(f"\nQAT top-1: single process {s:.2f}, torchrun x2 {m:.2f}")
    assert abs(s - m) <= 1.0
