"""INT8 ONNX from a quantized checkpoint: standard QuantizeLinear/DequantizeLinear only.

The NNCF model is exported as it is, with each quantizer switched to NNCF's Q/DQ-pair export mode,
so the Q/DQ nodes sit exactly where the torch model fake-quantizes (the placement was chosen for the
runtime when the checkpoint was quantized, see placement.py). Then `edgeattn.onnx.qdq_passes` rewrites
it into the canonical form the runtime fuses (int8 weight initializers, BN folded, int32 biases for
onnxruntime).
No custom-domain op survives: the file is checked before it is written.
"""

from __future__ import annotations

import copy
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from edgeattn.checkpoint import ModelHandle
from edgeattn.errors import InputError
from edgeattn.fileio import atomic_output
from edgeattn.onnx.graph import QDQ_MIN_OPSET, int8_opset, nonstandard_ops
from edgeattn.onnx.qdq_passes import RUNTIME_PASSES, apply_passes
from edgeattn.onnx.torch_export import torch_to_onnx

if TYPE_CHECKING:
    import onnx


def export_quantized_onnx(
    handle: ModelHandle,
    path: Path,
    *,
    opset: int | None = None,
    dynamic_batch: bool = False,
    batch: int = 1,
    runtime: str = "onnxruntime",
) -> None:
    """Write the INT8 ONNX of a quantized `handle` to `path` (atomically); opset None: the runtime's
    (`int8_opset`)."""
    import onnx

    if handle.kind != "int8":
        raise InputError(
            f"INT8 ONNX needs a quantized checkpoint, got a {handle.kind} one",
            "quantize it first: edgeattn quantize CKPT --data SPEC --out QCKPT",
        )
    opset = int8_opset(runtime, opset)
    if opset < QDQ_MIN_OPSET:
        raise InputError(
            f"opset {opset} cannot express per-channel INT8 weights", f"use --opset {QDQ_MIN_OPSET} or newer"
        )
    if batch < 1:
        raise InputError(f"batch {batch} is not a batch size", "use a batch of 1 or more")
    RUNTIME_PASSES.get(runtime)  # unknown runtime: clear error before any work
    model = quantized_onnx(
        exportable_copy(handle.module),
        handle.input_spec.shape(batch),
        opset=opset,
        dynamic_batch=dynamic_batch,
        runtime=runtime,
    )
    with atomic_output(Path(path)) as tmp:
        onnx.save(model, str(tmp))


def quantized_onnx(
    module: torch.nn.Module,
    input_shape: tuple[int, ...],
    *,
    opset: int | None = None,
    dynamic_batch: bool = False,
    runtime: str = "onnxruntime",
) -> onnx.ModelProto:
    """The checked INT8 ONNX (in memory) of an `exportable_copy` of an NNCF model: what
    `export_quantized_onnx` writes, and what the measured placement times."""
    import onnx

    with tempfile.TemporaryDirectory(prefix="edgeattn-int8-") as tmpdir:
        raw = Path(tmpdir) / "raw.onnx"
        torch_to_onnx(
            module,
            raw,
            input_shape=input_shape,
            opset=int8_opset(runtime, opset),
            dynamic_batch=(1, None) if dynamic_batch else None,
        )
        model = onnx.load(str(raw))
    apply_passes(model, runtime)
    bad = nonstandard_ops(model)
    if bad:  # would be a bug in edgeattn, not a user error
        raise RuntimeError(f"INT8 ONNX export produced non-standard ops: {', '.join(bad)}")
    onnx.checker.check_model(model)
    return model


def exportable_copy(module: torch.nn.Module) -> torch.nn.Module:
    """A copy of the NNCF model whose quantizers export as ONNX Q/DQ pairs (not NNCF FakeQuantize)."""
    from edgeattn.quantize.backend import import_nncf

    import_nncf()
    from nncf.torch.quantization.layers import BaseQuantizer, QuantizerExportMode

    module = copy.deepcopy(module).eval()
    for sub in module.modules():
        if isinstance(sub, BaseQuantizer):
            sub.set_export_mode(QuantizerExportMode.ONNX_QUANTIZE_DEQUANTIZE_PAIRS)
    return module
