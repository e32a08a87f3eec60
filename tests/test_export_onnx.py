"""ONNX export: every zoo family in FP32 and FP16, checked independently of the exporter's own checks."""

from __future__ import annotations

import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from helpers.models import TINY, tiny_config

from edgeattn.checkpoint import ModelHandle, load_checkpoint, save_checkpoint
from edgeattn.export import export_artifact
from edgeattn.fileio import sha256_of
from edgeattn.manifest import read_manifest
from edgeattn.runtime import open_runner

FAMILIES = list(TINY)


def make_ckpt(tmp_path, key: str, seed: int = 0, **config_changes) -> tuple:
    torch.manual_seed(seed)
    cfg = tiny_config(key)
    for k, v in config_changes.items():
        setattr(cfg, k, v)
    handle = ModelHandle.new(cfg)
    path = tmp_path / f"{key}.pt"
    save_checkpoint(handle, path)
    return path, handle


def ort_logits(path, x: np.ndarray) -> np.ndarray:
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    inp = sess.get_inputs()[0]
    dtype = np.float16 if "float16" in inp.type else np.float32
    return sess.run(["logits"], {"input": x.astype(dtype)})[0].astype(np.float32)


def torch_logits(handle, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return handle.module.eval()(torch.from_numpy(x)).numpy()


@pytest.mark.parametrize("key", FAMILIES)
def test_fp32_onnx_every_family(tmp_path, key):
    ckpt, _ = make_ckpt(tmp_path, key)
    handle = load_checkpoint(ckpt)
    size = handle.config.input_size
    x = np.random.default_rng(7).standard_normal((3, 3, size, size)).astype(np.float32)
    ref = torch_logits(handle, x)

    fp32 = tmp_path / "m32.onnx"
    manifest = export_artifact(ckpt, "onnx", fp32, dynamic_batch=(1, 2, 8))
    model = onnx.load(str(fp32))
    onnx.checker.check_model(model, full_check=True)
    assert [i.name for i in model.graph.input] == ["input"] and [o.name for o in model.graph.output] == [
        "logits"
    ]
    assert model.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    assert all(n.domain in ("", "ai.onnx") for n in model.graph.node)
    assert np.max(np.abs(ort_logits(fp32, x) - ref)) <= 1e-4
    assert manifest.precision == "fp32" and manifest.input_shape == ["batch", 3, size, size]
    assert manifest.batch == {"min": 1, "opt": 2, "max": 8}
    # simplification never grows the graph and, when applied, did not change the outputs
    assert manifest.details["nodes"] <= manifest.details["nodes_exported"]
    if manifest.details["simplified"]:
        assert manifest.details["simplify_max_abs_change"] <= 1e-5
    if key == "mobilevit_xxs":  # the TorchScript graph's shape arithmetic folds away
        assert (
            manifest.details["simplified"]
            and manifest.details["nodes"] < 0.7 * manifest.details["nodes_exported"]
        )


# The default run covers FP16 on two attn_vgg variants (attention with and without heads); the rest
# (mobilevit/efficientformer take ~2x as long) runs with `make test-all`.
DEFAULT_FP16 = {"attn_vgg11_linear", "attn_vgg11_cbam"}


@pytest.mark.parametrize(
    "key", [k if k in DEFAULT_FP16 else pytest.param(k, marks=pytest.mark.slow) for k in FAMILIES]
)
def test_fp16_onnx(tmp_path, key):
    ckpt, _ = make_ckpt(tmp_path, key)
    handle = load_checkpoint(ckpt)
    size = handle.config.input_size
    x = np.random.default_rng(7).standard_normal((3, 3, size, size)).astype(np.float32)
    ref = torch_logits(handle, x)
    fp16 = tmp_path / "m16.onnx"
    export_artifact(ckpt, "onnx", fp16, precision="fp16", batch=3)
    half = onnx.load(str(fp16))
    onnx.checker.check_model(half, full_check=True)
    weights = [
        t
        for t in half.graph.initializer
        if t.data_type in (onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16) and np.prod(t.dims) > 64
    ]
    assert weights and all(t.data_type == onnx.TensorProto.FLOAT16 for t in weights)
    assert half.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT  # FP32 I/O by default
    out16 = ort_logits(fp16, x)
    scale = max(1.0, float(np.abs(ref).max()))
    assert np.max(np.abs(out16 - ref)) <= 5e-2 * scale
    assert read_manifest(fp16).precision == "fp16"


def test_manifest_records_model_spec_versions_and_history(tmp_path):
    ckpt, handle = make_ckpt(tmp_path, "attn_vgg11_se")
    out = tmp_path / "se.onnx"
    export_artifact(ckpt, "onnx", out, batch=2)
    data = json.loads((tmp_path / "se.onnx.json").read_text())
    assert data["artifact"] == "se.onnx" and data["target"] == "onnx" and data["precision"] == "fp32"
    assert data["sha256"] == sha256_of(out)
    assert data["model"]["name"] == "attn_vgg11" and data["num_classes"] == 10
    assert (
        data["input_spec"]["mean"] == list(handle.input_spec.mean) and data["input_spec"]["layout"] == "NCHW"
    )
    assert data["input_shape"] == [2, 3, 32, 32] and data["image_input"] is False
    assert {"edgeattn", "torch", "onnx", "onnxruntime", "onnxslim"} <= set(data["versions"])
    assert data["history"][-1]["step"] == "export" and data["source_checkpoint"] == str(ckpt)
    meta = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
    assert json.loads(meta["edgeattn.input_spec"])["std"] == list(handle.input_spec.std)
    # the runner reads the artifact through its manifest (hash-checked) and pads a static batch
    runner = open_runner(out)
    assert runner.max_batch == 2
    images = torch.randint(0, 256, (3, 3, 32, 32), dtype=torch.uint8)
    assert runner.predict(images).shape == (3, 10)


@pytest.mark.parametrize("opset", [13, pytest.param(20, marks=pytest.mark.slow)])
def test_other_opsets(tmp_path, opset):
    ckpt, handle = make_ckpt(tmp_path, "attn_vgg11_eca")
    out = tmp_path / f"eca{opset}.onnx"
    manifest = export_artifact(ckpt, "onnx", out, opset=opset)
    model = onnx.load(str(out))
    assert (
        max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))
        == opset
        == manifest.details["opset"]
    )


def test_trained_checkpoint_matches_torch(tmp_path, trained):
    """Trained weights give real logit scales (random-init logits are tiny)."""
    ckpt = trained("attn_vgg11_linear")
    handle = load_checkpoint(ckpt)
    out = tmp_path / "lin.onnx"
    export_artifact(ckpt, "onnx", out, dynamic_batch=(1, 4, 16))
    from edgeattn.data import load_split

    val = load_split("builtin:digits", "val", 32).subset(48)
    x = val.to_model_input(handle.input_spec).numpy()
    ref = torch_logits(handle, x)
    got = ort_logits(out, x)
    assert np.abs(ref).max() > 1.0
    assert np.max(np.abs(got - ref)) <= 1e-4
    assert (got.argmax(1) == ref.argmax(1)).all()


def test_pruned_checkpoint_exports(tmp_path):
    """A model rebuilt from `heads_kept` (what `edgeattn prune` writes) exports with its reduced heads."""
    heads = {"stages.0.attn": [0, 2], "stages.1.attn": [3], "stages.2.attn": [], "stages.3.attn": [0, 1, 2]}
    ckpt, handle = make_ckpt(tmp_path, "attn_vgg11_linear", heads_kept=heads)
    loaded = load_checkpoint(ckpt)
    assert loaded.module.stages[0]["attn"].num_heads == 2 and loaded.module.stages[2]["attn"].num_heads == 0
    out = tmp_path / "pruned.onnx"
    manifest = export_artifact(ckpt, "onnx", out, batch=2)
    assert manifest.model["heads_kept"] == heads
    qkv = [t for t in onnx.load(str(out)).graph.initializer if tuple(t.dims[:2]) == (3 * 2 * 4, 16)]
    assert qkv, "stage 0's qkv conv should have 3 x 2 kept heads x 4 dims output channels"
    x = np.random.default_rng(0).standard_normal((2, 3, 32, 32)).astype(np.float32)
    assert np.max(np.abs(ort_logits(out, x) - torch_logits(loaded, x))) <= 1e-4


@pytest.mark.slow
def test_pruned_mobilevit_exports(tmp_path):
    cfg = tiny_config("mobilevit_xxs")
    from edgeattn.models.heads import heads_per_block

    blocks = heads_per_block(ModelHandle.new(cfg).module)
    first, last = list(blocks)[0], list(blocks)[-1]
    heads = {first: [1, 3], last: [0]}
    ckpt, handle = make_ckpt(tmp_path, "mobilevit_xxs", heads_kept=heads)
    manifest = export_artifact(ckpt, "onnx", tmp_path / "mvp.onnx")
    assert manifest.model["heads_kept"] == heads
    x = np.random.default_rng(0).standard_normal((1, 3, 64, 64)).astype(np.float32)
    assert (
        np.max(np.abs(ort_logits(tmp_path / "mvp.onnx", x) - torch_logits(load_checkpoint(ckpt), x))) <= 1e-4
    )


@pytest.mark.slow
def test_dynamo_exporter_option(tmp_path):
    ckpt, handle = make_ckpt(tmp_path, "attn_vgg11_softmax")
    out = tmp_path / "dyn.onnx"
    manifest = export_artifact(ckpt, "onnx", out, opset=18, exporter="dynamo", dynamic_batch=(1, 2, 4))
    assert manifest.details["exporter"] == "dynamo"
    x = np.random.default_rng(0).standard_normal((3, 3, 32, 32)).astype(np.float32)
    assert np.max(np.abs(ort_logits(out, x) - torch_logits(handle, x))) <= 1e-4
