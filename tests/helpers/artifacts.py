"""Artifacts the validation tests run on: FP32 ONNX from `export_artifact`, INT8 QDQ ONNX from
onnxruntime's static quantizer (until the quantize stage's INT8 export is used), and deliberately
broken variants. Built once per code version and cached beside the trained checkpoints.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

from helpers.models import CACHE, trained_checkpoint

# One tiny model per family (the trained tiny checkpoints from helpers.models).
FAMILIES = ["attn_vgg11_linear", "mobilevit_xxs", "efficientformer_l1"]


# Bump when the artifacts below must be rebuilt. The checkpoint's name already changes with the model
# code; exporter changes do not invalidate these artifacts for validation purposes.
ARTIFACT_VERSION = 1


def _cached(name: str, build) -> Path:
    """`build(path)` writes an artifact (and its manifest) once; later calls reuse it."""
    from filelock import FileLock

    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / "validate" / f"v{ARTIFACT_VERSION}" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(path) + ".lock"):
        if not path.exists() or not Path(str(path) + ".json").exists():
            build(path)
    return path


def fp32_onnx(key: str) -> Path:
    from edgeattn.export import export_artifact

    ckpt = trained_checkpoint(key)
    return _cached(
        f"{ckpt.stem}-fp32.onnx", lambda p: export_artifact(ckpt, "onnx", p, dynamic_batch=(1, 16, 64))
    )


def calibration_inputs(onnx_path: Path, n: int = 64, split: str = "calib") -> np.ndarray:
    """Prepared inputs (the manifest's preprocessing) from a split of builtin:digits."""
    from edgeattn.data import load_split
    from edgeattn.runtime import open_runner

    runner = open_runner(onnx_path)
    images = load_split("builtin:digits", split, runner.input_spec.size[0]).subset(n, seed=3).images
    return runner.prepare(images)


def quantize_qdq(fp32: Path, out: Path, inputs: np.ndarray, **options) -> Path:
    """INT8 QDQ ONNX of `fp32` (onnxruntime static quantization, per-channel weights) + its manifest."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    from edgeattn.manifest import read_manifest, write_manifest

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.batches = iter([{"input": inputs[i : i + 1]} for i in range(len(inputs))])

        def get_next(self):
            return next(self.batches, None)

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp.onnx")
    quantize_static(
        str(fp32),
        str(tmp),
        Reader(),
        quant_format=QuantFormat.QDQ,
        per_channel=True,
        activation_type=QuantType.QInt8,
        weight_type=QuantType.QInt8,
        **options,
    )
    shutil.move(tmp, out)
    manifest = read_manifest(fp32)
    manifest.precision = "int8"
    manifest.details = {"quantizer": "onnxruntime.quantization.quantize_static (tests)"}
    write_manifest(out, manifest)
    return out


def int8_onnx(key: str) -> Path:
    fp32 = fp32_onnx(key)
    return _cached(
        fp32.name.replace("-fp32", "-int8"), lambda p: quantize_qdq(fp32, p, calibration_inputs(fp32))
    )


def copy_artifact(src: Path, dst: Path, **manifest_changes) -> Path:
    """Copy an artifact with its manifest, changing manifest fields (e.g. input_spec) on the way."""
    from edgeattn.manifest import read_manifest, write_manifest

    shutil.copy(src, dst)
    manifest = read_manifest(src)
    for k, v in manifest_changes.items():
        setattr(manifest, k, v)
    write_manifest(dst, manifest)
    return dst


def perturbed_onnx(src: Path, dst: Path, scale: float = 0.1, seed: int = 0) -> Path:
    """`src` with every float weight tensor perturbed by Gaussian noise of `scale` x its std."""
    import onnx
    import onnx.numpy_helper as nh

    from edgeattn.manifest import read_manifest, write_manifest

    model = onnx.load(str(src))
    rng = np.random.default_rng(seed)
    for init in model.graph.initializer:
        w = nh.to_array(init)
        if w.dtype == np.float32 and w.ndim >= 2:
            noisy = w + rng.standard_normal(w.shape).astype(np.float32) * scale * float(w.std())
            init.CopyFrom(nh.from_array(noisy, init.name))
    onnx.save(model, str(dst))
    write_manifest(dst, read_manifest(src, verify_hash=False))
    return dst


def manifest_of(path: Path) -> dict:
    return json.loads(Path(str(path) + ".json").read_text())
