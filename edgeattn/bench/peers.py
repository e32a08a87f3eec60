"""The best-configured peer tools the standing benchmark compares edgeattn's INT8 with.

Both quantize the same FP32 ONNX edgeattn exports, on the same calibration images as edgeattn:

- `ort_quantize_static_documented`: onnxruntime's `quantize_static` set up as its own documentation
  advises for CPU inference ("Choosing parameters for CPU inference" in the docstring of
  `onnxruntime.quantization.quantize_static`, onnxruntime 1.32, and
  https://onnxruntime.ai/docs/performance/model-optimizations/quantization.html): pre-process first
  (`onnxruntime.quantization.shape_inference.quant_pre_process`: symbolic shape inference, model
  optimisation, ONNX shape inference), QDQ format, then per CPU kind: x86 with VNNI uint8 activations,
  int8 weights, no range reduction; x86 without VNNI the same with `reduce_range=True` (7-bit weights,
  against u8s8 saturation); ARM int8 activations and weights. Weights per channel, as the docs suggest
  for convolutions whose channels differ in range (they note per-tensor is a little faster).
- `nncf_quantize_onnx`: NNCF's own ONNX post-training quantization, `nncf.quantize(model,
  nncf.Dataset(...))` with `model_type=nncf.ModelType.TRANSFORMER` for transformer models (NNCF's
  docstring: "needed to specify additional patterns in the model"), its documented preset default
  (`mixed` for transformers, `performance` otherwise) and calibration samples of batch 1 (NNCF's PTQ
  usage guide: batches larger than 1 are not supported for transformer models).
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from edgeattn.bench.artifacts import calibration_batches, calibration_reader
from edgeattn.fileio import atomic_output
from edgeattn.manifest import ArtifactManifest, library_versions, read_manifest, write_manifest

ORT_DOCS = (
    "onnxruntime.quantization.quantize_static docstring, 'Choosing parameters for CPU inference' "
    "(onnxruntime 1.32); https://onnxruntime.ai/docs/performance/model-optimizations/quantization.html"
)
NNCF_DOCS = (
    "nncf.quantize docstring (nncf 3.4: preset None = mixed for model_type transformer, else performance); "
    "https://github.com/openvinotoolkit/nncf/blob/develop/docs/usage/post_training_compression/"
    "post_training_quantization/Usage.md"
)


@dataclass(frozen=True)
class OrtCpuSettings:
    """`quantize_static` options the onnxruntime docs give for one CPU kind."""

    activation_type: str  # QuantType member name
    weight_type: str
    reduce_range: bool
    per_channel: bool = True
    quant_format: str = "QDQ"
    pre_process: bool = True

    def describe(self) -> str:
        return (
            f"quant_pre_process, then quantize_static(quant_format=QuantFormat.{self.quant_format}, "
            f"activation_type=QuantType.{self.activation_type}, weight_type=QuantType.{self.weight_type}, "
            f"per_channel={self.per_channel}, reduce_range={self.reduce_range}, calibrate_method=MinMax)"
        )


# CPU kind (edgeattn.device.cpu.CPU_INT8_KINDS) -> what the onnxruntime docs advise there.
ORT_CPU_SETTINGS: dict[str, OrtCpuSettings] = {
    "vnni": OrtCpuSettings("QUInt8", "QInt8", reduce_range=False),
    "avx2": OrtCpuSettings("QUInt8", "QInt8", reduce_range=True),
    "none": OrtCpuSettings("QUInt8", "QInt8", reduce_range=True),
    "arm-dotprod": OrtCpuSettings("QInt8", "QInt8", reduce_range=False),
}


def ort_settings_for(cpu_kind: str | None = None) -> tuple[str, OrtCpuSettings]:
    """(cpu kind, settings) for `cpu_kind`, this machine's when None."""
    if cpu_kind is None:
        from edgeattn.device.cpu import cpu_int8

        cpu_kind = cpu_int8().kind
    return cpu_kind, ORT_CPU_SETTINGS[cpu_kind]


def _peer_manifest(
    fp32_onnx: Path, out: Path, n_images: int, step: dict[str, Any], details: dict[str, Any]
) -> None:
    src = read_manifest(fp32_onnx)
    manifest = ArtifactManifest(
        **{**src.to_dict(), "precision": "int8", "metrics": {}, "versions": library_versions("nncf")}
    )
    manifest.history = [
        *src.history,
        {"step": "quantize", "calibration_images": n_images, "from": fp32_onnx.name, **step},
    ]
    manifest.details = {**src.details, **details}
    write_manifest(out, manifest)


def ort_quantize_static_documented(
    fp32_onnx: Path, out: Path, calib_images: Any, *, cpu_kind: str | None = None, note: str = ""
) -> Path:
    """INT8 ONNX from `quantize_static` with the settings onnxruntime's docs give for `cpu_kind`."""
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    fp32_onnx, out = Path(fp32_onnx), Path(out)
    kind, s = ort_settings_for(cpu_kind)
    src = read_manifest(fp32_onnx)
    reader = calibration_reader(src.input_name, calibration_batches(calib_images, fp32_onnx))
    with tempfile.TemporaryDirectory(prefix="edgeattn-peer-") as tmp, atomic_output(out) as dst:
        model = fp32_onnx
        if s.pre_process:
            model = Path(tmp) / "preprocessed.onnx"
            quant_pre_process(str(fp32_onnx), str(model))
        logging.disable(
            logging.WARNING
        )  # one "Axis 1 is out-of-range" per 1-D norm weight: per-channel skips them
        try:
            quantize_static(
                str(model), str(dst), reader,
            quant_format=getattr(QuantFormat, s.quant_format), activation_type=getattr(QuantType, s.activation_type),
                weight_type=getattr(QuantType, s.weight_type), per_channel=s.per_channel, reduce_range=s.reduce_range,
            )  # fmt: skip
        finally:
            logging.disable(logging.NOTSET)
    _peer_manifest(
        fp32_onnx, out, len(calib_images),
        {"tool": "onnxruntime.quantization.quantize_static", "options": asdict(s), "cpu_kind": kind},
        {"quantizer": f"{s.describe()} for CPU kind {kind}", "docs": ORT_DOCS, "note": note},
    )  # fmt: skip
    return out


def nncf_quantize_onnx(
    fp32_onnx: Path, out: Path, calib_images: Any, *, transformer: bool, note: str = ""
) -> Path:
    """INT8 ONNX from NNCF's ONNX post-training quantization with its documented options."""
    import nncf
    import onnx

    fp32_onnx, out = Path(fp32_onnx), Path(out)
    src = read_manifest(fp32_onnx)
    samples = calibration_batches(calib_images, fp32_onnx, batch=1)
    model_type = nncf.ModelType.TRANSFORMER if transformer else None
    quantized = nncf.quantize(
        onnx.load(str(fp32_onnx)),
        nncf.Dataset(samples, lambda x: {src.input_name: x}),
        model_type=model_type,
        subset_size=len(samples),
    )
    with atomic_output(out) as dst:
        onnx.save(quantized, str(dst))
    preset = "mixed" if transformer else "performance"
    options = {"model_type": "transformer" if transformer else None, "preset": f"default ({preset})",
               "subset_size": len(samples), "fast_bias_correction": True, "target_device": "ANY"}  # fmt: skip
    _peer_manifest(
        fp32_onnx, out, len(calib_images), {"tool": "nncf.quantize (ONNX backend)", "options": options},
        {"quantizer": f"nncf.quantize(onnx_model, nncf.Dataset(...), model_type={'nncf.ModelType.TRANSFORMER' if transformer else 'None'}) "
                      f"(preset default: {preset}; calibration batch 1)", "docs": NNCF_DOCS, "note": note},
    )  # fmt: skip
    return out
