"""ONNX export: FP32, FP16 and INT8 (standard Q/DQ from a quantized checkpoint), checked and simplified.

Which torch exporter: the TorchScript-based one (`dynamo=False`) by default. Measured on every tiny zoo
model (torch 2.14.1, onnxslim 0.1.98): after onnxslim its graphs are as small as or smaller than the
dynamo exporter's (mobilevit_xxs 448 vs 469 nodes, efficientformer_l1 213 vs 227, attn_vgg11 linear 154
vs 164, softmax 109 vs 119), it honours the requested opset (the dynamo exporter only writes opset 18+
and its down-conversion to 17 fails on these graphs), and it is ~10x faster (2-14 s vs 23-77 s per
model on this 2-core machine). The dynamo exporter stays selectable (`exporter="dynamo"`, opset >= 18).

Every graph is checked with `onnx.checker` (full check), shape-inferred, and compared numerically: the
exported graph against torch (FP32: max abs <= 1e-4 on onnxruntime), the simplified graph against the
unsimplified one (a simplification that changes outputs is dropped, and the manifest says so).
INT8 graphs come from the quantize stage (`edgeattn.quantize.onnx_export.export_quantized_onnx`) and are
not re-simplified: constant folding would turn the int8 weights' DequantizeLinear into float weights
and undo the explicit quantization TensorRT and OpenVINO rely on.
"""

from __future__ import annotations

import json
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from edgeattn import __version__
from edgeattn.errors import GateFailure, InputError, UnavailableError
from edgeattn.export.base import EXPORTERS, QUANTIZED_KIND, Exporter, ExportRequest, TargetOption
from edgeattn.export.common import (
    check_batches,
    compare,
    make_manifest,
    publish_manifest,
    reference_inputs,
    torch_logits,
)
from edgeattn.fileio import atomic_output
from edgeattn.manifest import ArtifactManifest
from edgeattn.onnx.checks import check_and_infer, check_io_names, check_qdq_graph
from edgeattn.onnx.graph import QDQ_MIN_OPSET, op_histogram, opset_of
from edgeattn.onnx.ort import run_session, session
from edgeattn.onnx.torch_export import DYNAMO_MIN_OPSET, ONNX_GRAPH_EXPORTERS, torch_to_onnx

MIN_OPSET = 11
MAX_OPSET = 20  # torch's TorchScript exporter writes opsets up to 20
FP32_ATOL = 1e-4
FP16_RTOL = 5e-2  # FP16 logits within 5 % of the logit scale (FP16 has ~3 decimal digits)
SLIM_RTOL = 1e-5


def simplify(model: Any) -> tuple[Any | None, str]:
    """onnxslim's simplification (constant folding, dead-code removal, fusions) or why it failed."""
    import onnxslim

    try:
        return onnxslim.slim(model, model_check=False), ""
    except Exception as exc:  # noqa: BLE001  onnxslim raises assorted errors on graphs it cannot handle
        return (
            None,
            f"onnxslim failed: {type(exc).__name__}: {str(exc).splitlines()[0][:160] if str(exc) else ''}",
        )


def to_fp16(model: Any, keep_io_types: bool) -> Any:
    """Weights and activations to FP16 (onnxruntime's converter keeps numerically fragile ops in FP32)."""
    from onnxruntime.transformers.float16 import convert_float_to_float16

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        half = convert_float_to_float16(model, keep_io_types=keep_io_types, disable_shape_infer=False)
    # The converter appends its Cast nodes at the end of the node list; onnxslim re-sorts the graph
    # topologically and folds redundant Cast pairs.
    slim, why = simplify(half)
    if slim is None:
        raise GateFailure(f"the FP16 graph could not be sorted ({why})", "export --precision fp32 instead")
    return slim


def stamp_metadata(model: Any, req: ExportRequest, precision: str) -> None:
    """Record what a user of the bare .onnx needs (preprocessing, classes) in the model's metadata."""
    model.producer_name = "edgeattn"
    model.producer_version = __version__
    model.doc_string = f"{req.handle.config.name} ({precision}) exported by edgeattn {__version__}"
    props = {
        "edgeattn.model": json.dumps(req.handle.config.to_dict()),
        "edgeattn.input_spec": json.dumps(req.handle.input_spec.to_dict()),
        "edgeattn.precision": precision,
        "edgeattn.num_classes": str(req.handle.config.num_classes),
    }
    del model.metadata_props[:]
    for key, value in props.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value


# ---------------------------------------------------------------------------------------------------
# Building the graph for each precision
# ---------------------------------------------------------------------------------------------------


def _float_graph(req: ExportRequest) -> tuple[Any, dict[str, Any]]:
    import onnx

    spec = req.handle.input_spec
    module = req.handle.module.eval()
    exporter = str(req.options["exporter"])
    with tempfile.TemporaryDirectory(prefix="edgeattn-onnx-") as tmp:
        raw_path = Path(tmp) / "raw.onnx"
        torch_to_onnx(
            module,
            raw_path,
            input_shape=spec.shape(req.batch.opt),
            opset=req.opset,
            dynamic_batch=(req.batch.min, req.batch.max) if req.batch.dynamic else None,
            exporter=exporter,
        )
        raw = onnx.load(str(raw_path))
    raw = check_and_infer(raw)
    inputs = {b: reference_inputs(req, b, seed=b) for b in check_batches(req)}
    reference = {b: torch_logits(module, x) for b, x in inputs.items()}
    raw_sess = session(raw)
    raw_out = {b: run_session(raw_sess, x) for b, x in inputs.items()}
    atol = float(req.options["atol"])
    worst = max(compare(reference[b], raw_out[b])["max_abs_diff"] for b in inputs)
    if worst > atol:
        raise GateFailure(
            f"the exported ONNX differs from torch by {worst:.2e} (more than {atol:g})",
            "report this model; try --onnx-exporter dynamo --opset 18",
        )
    details: dict[str, Any] = {"exporter": exporter, "nodes_exported": len(raw.graph.node)}

    slim, why = simplify(raw)
    model = raw
    if slim is not None:
        slim = check_and_infer(slim)
        slim_sess = session(slim)
        drift = max(float(np.max(np.abs(run_session(slim_sess, x) - raw_out[b]))) for b, x in inputs.items())
        scale = max(1.0, max(float(np.max(np.abs(v))) for v in raw_out.values()))
        if drift <= SLIM_RTOL * scale:
            model = slim
            details.update(simplified=True, simplify_max_abs_change=drift)
        else:
            why = f"onnxslim changed outputs by {drift:.2e}; kept the unsimplified graph"
    if model is raw:
        details.update(simplified=False, simplify_note=why)

    if req.precision == "fp16":
        model = check_and_infer(to_fp16(model, keep_io_types=not bool(req.options["fp16_io"])))
        details["fp16_io"] = bool(req.options["fp16_io"])
    return model, {**details, "_inputs": inputs, "_reference": reference}


def _int8_graph(req: ExportRequest, runtime: str) -> tuple[Any, dict[str, Any]]:
    import onnx

    try:
        from edgeattn.quantize.onnx_export import export_quantized_onnx
    except ModuleNotFoundError as exc:
        if exc.name and not "edgeattn.quantize.onnx_export".startswith(exc.name):
            raise
        raise UnavailableError(
            "INT8 ONNX export needs edgeattn.quantize.onnx_export, which this installation lacks",
            "update edgeattn (the quantize stage writes the Q/DQ graph)",
        ) from None
    with tempfile.TemporaryDirectory(prefix="edgeattn-qdq-") as tmp:
        raw_path = Path(tmp) / "qdq.onnx"
        export_quantized_onnx(
            req.handle,
            raw_path,
            opset=req.opset,
            dynamic_batch=req.batch.dynamic,
            batch=req.batch.opt,
            runtime=runtime,
        )
        model = onnx.load(str(raw_path))
    model = check_and_infer(model)
    details: dict[str, Any] = {
        "qdq": check_qdq_graph(model, "the INT8 graph"),
        "qdq_runtime": runtime,
        "simplified": False,
    }
    details["simplify_note"] = (
        "Q/DQ graphs are kept as the quantizer placed them (folding would drop the int8 weights)"
    )
    inputs = {b: reference_inputs(req, b, seed=b) for b in check_batches(req)}
    reference = {b: torch_logits(req.handle.module, x) for b, x in inputs.items()}
    return model, {**details, "_inputs": inputs, "_reference": reference}


def placed_runtime(req: ExportRequest) -> str:
    """The runtime an int8 graph is placed for: --qdq-runtime, else the placement the checkpoint was
    quantized for (its Q/DQ passes must match it)."""
    return str(req.options.get("runtime") or req.handle.extra.get("placement") or "onnxruntime")


def build_onnx(req: ExportRequest, path: Path, *, qdq_runtime: str | None = None) -> dict[str, Any]:
    """Write the checked, verified ONNX for `req` to `path`; return what the manifest records about it."""
    import onnx

    if req.precision == "int8":
        # default: the placement the checkpoint was quantized for (its Q/DQ passes must match it)
        model, details = _int8_graph(req, qdq_runtime or placed_runtime(req))
    else:
        model, details = _float_graph(req)
    inputs, reference = details.pop("_inputs"), details.pop("_reference")
    stamp_metadata(model, req, req.precision)
    model = check_and_infer(model)
    check_io_names(model, "the exported graph")

    sess = session(model)
    checks = {}
    for b, x in inputs.items():
        out = run_session(sess, x)
        if out.shape != (b, req.handle.config.num_classes) or not np.all(np.isfinite(out)):
            raise GateFailure(
                f"the {req.precision} ONNX gives {out.shape} outputs (or non-finite values) at batch {b}",
                "re-export it",
            )
        checks[str(b)] = compare(reference[b], out)
    _gate(req, checks)
    details.update(
        opset=opset_of(model),
        nodes=len(model.graph.node),
        op_histogram=op_histogram(model),
        checks_vs_torch=checks,
    )
    onnx.save(model, str(path))
    return details


def _gate(req: ExportRequest, checks: dict[str, dict[str, float]]) -> None:
    """FP32 must match torch to `atol`; FP16 to a few % of the logit scale; INT8 is judged by `validate`."""
    worst = max(c["max_abs_diff"] for c in checks.values())
    scale = max(1.0, max(c["logit_scale"] for c in checks.values()))
    if req.precision == "fp32" and worst > float(req.options["atol"]):
        raise GateFailure(f"the final ONNX differs from torch by {worst:.2e}", "report this model")
    if req.precision == "fp16" and worst > FP16_RTOL * scale:
        raise GateFailure(
            f"the FP16 ONNX differs from torch by {worst:.3g} (logit scale {scale:.3g})",
            "export --precision fp32",
        )


# ---------------------------------------------------------------------------------------------------
# The exporter
# ---------------------------------------------------------------------------------------------------


def check_onnx_request(req: ExportRequest) -> None:
    """Checks shared by the onnx and tensorrt targets (both start from the same graph)."""
    if req.precision == "int8":
        if req.opset < QDQ_MIN_OPSET:
            raise InputError(
                f"opset {req.opset} is too old for INT8 Q/DQ (per-channel QuantizeLinear/DequantizeLinear needs opset {QDQ_MIN_OPSET})",
                f"use --opset {QDQ_MIN_OPSET} or newer (default: 17; 20 for INT8 graphs for onnxruntime)",
            )
        if req.handle.kind != QUANTIZED_KIND:
            raise InputError(
                f"--precision int8 needs a quantized checkpoint, but this one is {req.handle.kind}",
                "quantize it first (edgeattn quantize CKPT --data DATA --out q.pt) and export q.pt",
            )
    elif req.handle.kind == QUANTIZED_KIND:
        raise InputError(
            f"this checkpoint is quantized; it exports only as --precision int8, not {req.precision}",
            "use --precision int8, or export the FP32 checkpoint it was quantized from",
        )
    if not MIN_OPSET <= req.opset <= MAX_OPSET:
        raise InputError(
            f"opset {req.opset} is not supported",
            f"use an opset from {MIN_OPSET} to {MAX_OPSET} (default: 17; 20 for INT8 graphs for onnxruntime)",
        )
    exporter = str(req.options.get("exporter", "torchscript"))
    ONNX_GRAPH_EXPORTERS.get(exporter)
    if exporter == "dynamo" and req.opset < DYNAMO_MIN_OPSET:
        raise InputError(
            f"the dynamo exporter writes opset {DYNAMO_MIN_OPSET} or newer, not {req.opset}",
            f"use --opset {DYNAMO_MIN_OPSET} or the default torchscript exporter",
        )


# Options the tensorrt exporter shares (it builds its engine from this exporter's ONNX).
EXPORTER_OPTION = TargetOption(
    "exporter",
    "torchscript",
    "torch exporter: torchscript (default) or dynamo (opset 18+).",
    "--onnx-exporter",
)
ATOL_OPTION = TargetOption("atol", FP32_ATOL, "Largest FP32 logit difference from torch the check accepts.")
FP16_IO_OPTION = TargetOption(
    "fp16_io",
    False,
    "onnx/tensorrt fp16: FP16 inputs/outputs too (default FP32 I/O).",
    "--fp16-io/--fp32-io",
    bool,
)


class OnnxExporter(Exporter):
    name = "onnx"
    suffixes = (".onnx",)
    precisions = ("fp32", "fp16", "int8")
    default_precision = "fp32"
    runner = "onnxruntime"
    typical_precisions = ("fp32", "int8")
    note = "onnxruntime; int8 = standard QuantizeLinear/DequantizeLinear from the quantized checkpoint"
    options = (
        EXPORTER_OPTION,
        FP16_IO_OPTION,
        TargetOption(
            "runtime",
            None,
            "onnx int8: runtime the Q/DQ graph is made for (default: the one the checkpoint was quantized for).",
            "--qdq-runtime",
        ),
        ATOL_OPTION,
    )

    def int8_placement(self, options: dict[str, Any]) -> str:
        return str(options.get("runtime") or self.placement)

    def int8_runtime(self, req: ExportRequest) -> str:
        return placed_runtime(req)

    def check(self, req: ExportRequest) -> None:
        check_onnx_request(req)

    def export(self, req: ExportRequest) -> ArtifactManifest:
        with atomic_output(req.out) as tmp:
            details = build_onnx(req, tmp)
        manifest = make_manifest(req, versions=("onnxslim",), details=details)
        return publish_manifest(req.out, manifest)


EXPORTERS.register("onnx", OnnxExporter())
