"""Core ML export: an ML Program `.mlpackage` converted by coremltools from the `torch.export` program.

Why `torch.export`: `coremltools.convert(torch.jit.trace(mobilevit_xxs))` fails with coremltools 9.0 and
torch 2.14 ("only 0-dimensional arrays can be converted to Python scalars"); the exported program
converts for every zoo family (measured with coremltools 9.0, torch 2.14.1).

- Input: `image` (a Core ML ImageType, RGB 0..255, the model's per-channel mean/std folded into the
  graph as one multiply-add, because ImageType's own scale is a single scalar) or `tensor` (a float
  NCHW MultiArray, normalised like the ONNX input unless `fold_normalization=True`). The manifest's
  `image_input` says whether the artifact takes 0..255 pixels.
- Precision: `fp16` compute (default), `fp32`, `int8-weights` (coremltools' per-channel symmetric
  `linear_quantize_weights`, FP16 compute) and `int8` (from a quantized checkpoint: weights plus
  activations, with the quantize/dequantize passes of coremltools' `linear_quantize_activations`
  fed with min/max statistics of every intermediate tensor on the calib split). coremltools gathers
  those statistics with Core ML predictions, which exist only on macOS; elsewhere the same statistics
  come from running the saved program in edgeattn's Core ML reference executor
  (`ACTIVATION_CALIBRATORS`: "coreml" | "reference", "auto" picks by platform).
  (Calibration lives in `coreml_calibration.py`.)
- Deployment target selectable (`iOS15` .. `iOS18`, `macOS12` .. `macOS15`, ...); a precision that
  needs a newer one (int8 weights: iOS16, activations: iOS17) is refused up front.

Every package is inspected after it is saved (ops listed from the saved file's spec) and its
predictions compared with torch: with a real `MLModel.predict` on macOS, with edgeattn's Core ML
reference executor elsewhere (Core ML itself exists only on Apple platforms).
"""

from __future__ import annotations

import platform
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from edgeattn.errors import GateFailure, InputError, UnavailableError
from edgeattn.export.base import EXPORTERS, QUANTIZED_KIND, Exporter, ExportRequest, TargetOption
from edgeattn.export.common import compare, make_manifest, publish_manifest, reference_inputs, torch_logits
from edgeattn.export.coreml_calibration import (
    ACTIVATION_CALIBRATORS,
    folds_normalization,
    muted,
    on_macos,
    quantize_activations,
)
from edgeattn.export.coreml_program import FoldedPreprocess, export_program
from edgeattn.fileio import atomic_output
from edgeattn.manifest import ArtifactManifest
from edgeattn.progress import make_progress

# Core ML specification generation per deployment target: ML Programs need 6 (iOS15); constexpr int8
# weights need 7 (iOS16); quantize/dequantize of activations needs 8 (iOS17).
DEPLOYMENT_TARGETS = {
    **{name: 6 for name in ("iOS15", "macOS12", "tvOS15", "watchOS8")},
    **{name: 7 for name in ("iOS16", "macOS13", "tvOS16", "watchOS9")},
    **{name: 8 for name in ("iOS17", "macOS14", "tvOS17", "watchOS10")},
    **{name: 9 for name in ("iOS18", "macOS15", "tvOS18", "watchOS11")},
}
NEEDS_TARGET = {"int8-weights": ("iOS16", 7), "int8": ("iOS17", 8)}
INPUT_KINDS = ("image", "tensor")
FP16_RTOL = 5e-2


def float_module(handle: Any) -> nn.Module:
    """The float torch module Core ML converts. For a quantized checkpoint: the architecture rebuilt
    from its config with the float weights of the quantized model (after QAT / bias correction),
    without NNCF's quantizer hooks, which torch.export cannot trace into Core ML ops."""
    if handle.kind != QUANTIZED_KIND:
        return handle.module
    from edgeattn.models import build_model

    module = build_model(handle.config)
    own = module.state_dict()
    quantized = handle.module.state_dict()
    missing = [k for k in own if k not in quantized]
    if missing:
        raise InputError(
            f"the quantized checkpoint lacks float weights {', '.join(missing[:3])}",
            "re-create it with `edgeattn quantize`",
        )
    module.load_state_dict({k: quantized[k] for k in own}, strict=True)
    return module.eval()


def _convert(req: ExportRequest, module: nn.Module, ct: Any) -> Any:
    """torch.export the (wrapped) model and convert the program to an ML Program."""
    spec = req.handle.input_spec
    image = req.options["input"] == "image"
    fold = folds_normalization(req)
    wrapped = FoldedPreprocess(module, spec.mean, spec.std) if fold else module
    wrapped = wrapped.eval()
    shape = (req.batch.opt, spec.channels, *spec.size)
    example = torch.rand(*shape) * 255.0 if fold else torch.randn(*shape)
    dynamic = None
    ct_shape: Any = shape
    if req.batch.dynamic:
        dynamic = ({0: torch.export.Dim("batch", min=req.batch.min, max=req.batch.max)},)
        ct_shape = ct.Shape(
            shape=(
                ct.RangeDim(lower_bound=req.batch.min, upper_bound=req.batch.max, default=req.batch.opt),
                *shape[1:],
            )
        )
    with muted(), torch.no_grad():
        program = export_program(wrapped, example, dynamic)
        if image:
            inputs = [
                ct.ImageType(
                    name="input",
                    shape=ct_shape,
                    color_layout=ct.colorlayout.RGB,
                    scale=1.0,
                    bias=[0.0, 0.0, 0.0],
                )
            ]
        else:
            inputs = [ct.TensorType(name="input", shape=ct_shape, dtype=np.float32)]
        precision = ct.precision.FLOAT32 if req.precision == "fp32" else ct.precision.FLOAT16
        return ct.convert(
            program,
            inputs=inputs,
            outputs=[ct.TensorType(name="logits")],
            convert_to="mlprogram",
            compute_precision=precision,
            minimum_deployment_target=getattr(ct.target, req.options["deployment_target"]),
            skip_model_load=not on_macos(),
        )


def _quantize_weights(ml: Any, req: ExportRequest) -> Any:
    import coremltools.optimize as cto

    config = cto.coreml.OptimizationConfig(
        global_config=cto.coreml.OpLinearQuantizerConfig(
            mode="linear_symmetric",
            dtype="int8",
            granularity="per_channel",
            weight_threshold=int(req.options["weight_threshold"]),
        )
    )
    with muted():
        return cto.coreml.linear_quantize_weights(ml, config)


def inspect_package(path: Path) -> dict[str, Any]:
    """What the saved package holds, read back from its spec: ops of the main function, I/O, version."""
    import coremltools as ct

    spec = ct.utils.load_spec(str(path))
    if spec.WhichOneof("Type") != "mlProgram":
        raise GateFailure(f"{path.name} is not an ML Program", "re-export it")
    ops: Counter[str] = Counter()

    def walk(block: Any) -> None:
        for op in block.operations:
            ops[op.type] += 1
            for inner in op.blocks:
                walk(inner)

    for function in spec.mlProgram.functions.values():
        for block in function.block_specializations.values():
            walk(block)
    inputs = [i.name for i in spec.description.input]
    outputs = [o.name for o in spec.description.output]
    kinds = {i.name: i.type.WhichOneof("Type") for i in spec.description.input}
    return {
        "specification_version": int(spec.specificationVersion),
        "inputs": inputs,
        "input_types": kinds,
        "outputs": outputs,
        "n_ops": int(sum(ops.values())),
        "ops": dict(ops.most_common()),
        "int8_weight_ops": int(sum(n for op, n in ops.items() if op.startswith("constexpr"))),
        "activation_quantize_ops": int(ops.get("quantize", 0)),
    }


def _check_program(info: dict[str, Any], req: ExportRequest) -> None:
    if info["inputs"] != ["input"] or info["outputs"] != ["logits"]:
        raise GateFailure(
            f"the Core ML program has inputs {info['inputs']} / outputs {info['outputs']}", "re-export it"
        )
    want = "imageType" if req.options["input"] == "image" else "multiArrayType"
    if info["input_types"]["input"] != want:
        raise GateFailure(
            f"the Core ML input is a {info['input_types']['input']}, not {want}", "re-export it"
        )
    if req.precision in ("int8-weights", "int8") and info["int8_weight_ops"] == 0:
        raise GateFailure(
            "no weight was quantized (every weight is under weight_threshold)",
            "lower weight_threshold or export --precision fp16",
        )
    if req.precision == "int8" and info["activation_quantize_ops"] == 0:
        raise GateFailure("no activation was quantized", "export --precision int8-weights")


def _predictor(path: Path, image: bool) -> tuple[Callable[[np.ndarray], np.ndarray], str]:
    """One-sample predictions of the saved package: Core ML itself on macOS, edgeattn's Core ML
    reference executor elsewhere (the program run op by op, in its declared precisions)."""
    if on_macos():
        import coremltools as ct
        from PIL import Image

        ml = ct.models.MLModel(str(path))

        def predict(x: np.ndarray) -> np.ndarray:
            feed: Any = Image.fromarray(x[0].transpose(1, 2, 0).astype(np.uint8)) if image else x
            return np.asarray(ml.predict({"input": feed})["logits"], np.float32)

        return predict, "Core ML (macOS)"
    from edgeattn.runtime.coreml_ref import load_program

    program = load_program(path)

    def run(x: np.ndarray) -> np.ndarray:
        return np.asarray(program.run({"input": x})["logits"], np.float32)

    return run, f"Core ML reference executor ({platform.system()})"


def _predict_check(path: Path, req: ExportRequest, module: nn.Module) -> dict[str, Any]:
    """The saved package against torch on a few inputs. FP16/FP32 programs must match within a few %
    of the logit scale; INT8 ones are only recorded (their drift is `edgeattn validate`'s job)."""
    spec = req.handle.input_spec
    x = reference_inputs(req, 2, seed=1)
    mean = np.asarray(spec.mean, np.float32).reshape(1, -1, 1, 1)
    std = np.asarray(spec.std, np.float32).reshape(1, -1, 1, 1)
    pixels = np.clip(np.round((x * std + mean) * 255.0), 0, 255).astype(np.float32)
    normalised = ((pixels / 255.0 - mean) / std).astype(np.float32)
    reference = torch_logits(module, normalised)
    predict, runtime = _predictor(path, req.options["input"] == "image")
    feeds = pixels if folds_normalization(req) else normalised
    outs = []
    need = req.batch.min if req.batch.dynamic else req.batch.opt
    for i in range(len(feeds)):
        feed = feeds[i : i + 1]
        if need > 1:  # a tensor input whose batch cannot be 1: fill it with copies
            feed = np.repeat(feed, need, axis=0)
        outs.append(predict(feed).reshape(-1, req.handle.config.num_classes)[:1])
    result = compare(reference, np.concatenate(outs))
    if req.precision in ("fp16", "fp32") and result["max_abs_diff"] > FP16_RTOL * max(
        1.0, result["logit_scale"]
    ):
        raise GateFailure(
            f"the Core ML program's predictions ({runtime}) differ from torch by {result['max_abs_diff']:.3g}",
            "export --precision fp32 or report this model",
        )
    # Keyed by the batch size checked, like the ONNX exporter's checks.
    return {"predict_check": runtime, "checks_vs_torch": {str(max(1, need)): result}}


class CoreMLExporter(Exporter):
    name = "coreml"
    suffixes = (".mlpackage",)
    writes_folder = True
    precisions = ("fp16", "fp32", "int8-weights", "int8")
    default_precision = "fp16"
    runner = "coreml"
    # Core ML converts the quantized model's float weights and quantizes them itself: any placement does.
    placement = "onnxruntime"
    typical_precisions = ("fp16", "int8-weights")
    note = ".mlpackage; predictions need macOS (or the reference executor on Linux)"
    options = (
        TargetOption(
            "input",
            "image",
            "coreml: image (RGB 0..255, normalisation folded in; default) or tensor.",
            "--coreml-input",
        ),
        TargetOption("fold_normalization", None, "None: fold for image input, not for tensor input."),
        TargetOption(
            "deployment_target",
            "iOS16",
            "coreml: minimum deployment target, e.g. iOS16 (default), iOS17, macOS14.",
            "--deployment-target",
        ),
        TargetOption("weight_threshold", 2048, "coremltools' default: smaller weights stay in float."),
        TargetOption("calib_size", 64, "Calibration images for int8 activations."),
        TargetOption(
            "calibrator",
            "auto",
            "coreml int8: activation statistics from Core ML predictions (coreml, macOS) or the reference executor (reference); default auto.",
            "--coreml-calibrator",
        ),
        TargetOption(
            "verify",
            True,
            "Compare predictions with torch (Core ML on macOS, the reference executor elsewhere).",
        ),
    )

    def check(self, req: ExportRequest) -> None:
        opts = req.options
        if opts["input"] not in INPUT_KINDS:
            raise InputError(
                f"Core ML input {opts['input']!r} is unknown", f"choose one of: {', '.join(INPUT_KINDS)}"
            )
        target = str(opts["deployment_target"])
        if target not in DEPLOYMENT_TARGETS:
            raise InputError(
                f"deployment target {target!r} is unknown", f"choose one of: {', '.join(DEPLOYMENT_TARGETS)}"
            )
        if opts["input"] == "image" and (req.batch.dynamic or req.batch.opt != 1):
            raise InputError(
                "a Core ML image input takes one image per prediction",
                "use --batch 1, or --coreml-input tensor for batches",
            )
        if opts["input"] == "image" and opts.get("fold_normalization") is False:
            raise InputError(
                "an image input cannot leave the per-channel normalisation out (ImageType scales all channels alike)",
                "drop fold_normalization=False or use --coreml-input tensor",
            )
        if req.precision == "int8":
            if req.handle.kind != QUANTIZED_KIND:
                raise InputError(
                    f"--precision int8 (weights + activations) needs a quantized checkpoint, but this one is {req.handle.kind}",
                    "quantize it first (edgeattn quantize), or use --precision int8-weights for weight-only INT8",
                )
            if not req.data:
                raise InputError(
                    "Core ML activation quantization needs calibration images",
                    "pass --data (its calib split is used)",
                )
            if opts["calibrator"] != "auto":
                ACTIVATION_CALIBRATORS.get(str(opts["calibrator"]))
            if opts["calibrator"] == "coreml" and not on_macos():
                raise UnavailableError(
                    "the coreml calibrator runs Core ML predictions, which exist only on macOS",
                    "use --coreml-calibrator reference (the default off macOS: edgeattn's Core ML reference executor)",
                )
        need = NEEDS_TARGET.get(req.precision)
        if need and DEPLOYMENT_TARGETS[target] < need[1]:
            raise InputError(
                f"--precision {req.precision} needs deployment target {need[0]} or newer, not {target}",
                f"use --deployment-target {need[0]}",
            )
        if req.handle.kind == QUANTIZED_KIND and req.precision in ("fp16", "fp32"):
            raise InputError(
                f"this checkpoint is quantized; Core ML exports it as --precision int8 or int8-weights, not {req.precision}",
                "use --precision int8-weights, or export the FP32 checkpoint it came from",
            )

    def export(self, req: ExportRequest) -> ArtifactManifest:
        with muted():
            import coremltools as ct
        module = float_module(req.handle).eval()
        steps = ["convert"] + (["quantize activations"] if req.precision == "int8" else [])
        steps += ["quantize weights"] if req.precision in ("int8-weights", "int8") else []
        with make_progress() as progress:
            task = progress.add_task(f"Core ML {req.precision}", total=len(steps) + 1, status="")
            progress.update(task, status="converting")
            ml = _convert(req, module, ct)
            progress.advance(task)
            calibrator = None
            if req.precision == "int8":
                progress.update(task, status="calibrating activations")
                ml, calibrator = quantize_activations(ml, req)
                progress.advance(task)
            if req.precision in ("int8-weights", "int8"):
                progress.update(task, status="quantizing weights")
                ml = _quantize_weights(ml, req)
                progress.advance(task)
            ml.short_description = f"{req.handle.config.name} ({req.precision}) exported by edgeattn"
            ml.author = "edgeattn"
            ml.user_defined_metadata["edgeattn.model"] = req.handle.config.name
            ml.user_defined_metadata["edgeattn.precision"] = req.precision
            ml.user_defined_metadata["edgeattn.num_classes"] = str(req.handle.config.num_classes)
            progress.update(task, status="saving + inspecting")
            with atomic_output(req.out) as tmp:
                with muted():
                    ml.save(str(tmp))
                info = inspect_package(tmp)
                _check_program(info, req)
                checked = (
                    _predict_check(tmp, req, module)
                    if req.options["verify"]
                    else {"predict_check": "skipped"}
                )
            progress.advance(task)
        details = {
            "coreml_input": req.options["input"],
            "normalization_folded": folds_normalization(req),
            "deployment_target": req.options["deployment_target"],
            "compute_precision": "fp32" if req.precision == "fp32" else "fp16",
            "weights": "int8 per-channel symmetric"
            if req.precision in ("int8-weights", "int8")
            else ("fp32" if req.precision == "fp32" else "fp16"),
            "activations": f"int8 (calibrated on {req.data} calib split, {calibrator} calibrator)"
            if calibrator
            else "float",
            "converted_from": "torch.export",
            "program": info,
            **checked,
        }
        if req.options["input"] == "image":
            details["image"] = {"color_layout": "RGB", "scale": 1.0, "bias": [0.0, 0.0, 0.0]}
        manifest = make_manifest(
            req, image_input=folds_normalization(req), versions=("coremltools",), details=details
        )
        return publish_manifest(req.out, manifest)


EXPORTERS.register("coreml", CoreMLExporter())
