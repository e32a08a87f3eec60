"""The one torch -> ONNX call: `torch_to_onnx`, with the TorchScript or the dynamo exporter.

Every stage that writes an ONNX from a torch module (export, the INT8 Q/DQ export, the validation's
traced reference, the benchmark's fallback) goes through it, so the exporter flags and the silencing
of the exporters' warnings (the legacy exporter's DeprecationWarning, tracer warnings) live here once.

The TorchScript exporter is the default (see `edgeattn.export.onnx` for the measurements behind that
choice); the dynamo exporter writes opset `DYNAMO_MIN_OPSET` or newer only.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from edgeattn.onnx.graph import INPUT_NAME, OUTPUT_NAME
from edgeattn.registry import Registry

if TYPE_CHECKING:
    import torch

DYNAMO_MIN_OPSET = 18
# (min, max) of a dynamic batch axis; None bounds are open (the TorchScript exporter ignores bounds).
DynamicBatch = tuple[int | None, int | None]
GraphExporter = Callable[
    ["torch.nn.Module", "torch.Tensor", Path, int, DynamicBatch | None, str | None, str | None, bool], None
]
ONNX_GRAPH_EXPORTERS: Registry[GraphExporter] = Registry("ONNX graph exporter")


@ONNX_GRAPH_EXPORTERS.register("torchscript")
def _torchscript(
    module: torch.nn.Module,
    x: torch.Tensor,
    path: Path,
    opset: int,
    dynamic_batch: DynamicBatch | None,
    input_name: str | None,
    output_name: str | None,
    constant_folding: bool,
) -> None:
    import torch

    axes = None
    if dynamic_batch is not None:
        axes = {name: {0: "batch"} for name in (input_name, output_name) if name}
    with torch.no_grad():  # tracing records no autograd state
        torch.onnx.export(
            module,
            (x,),
            str(path),
            input_names=[input_name] if input_name else None,
            output_names=[output_name] if output_name else None,
            opset_version=opset,
            dynamic_axes=axes,
            do_constant_folding=constant_folding,
            dynamo=False,
        )


@ONNX_GRAPH_EXPORTERS.register("dynamo")
def _dynamo(
    module: torch.nn.Module,
    x: torch.Tensor,
    path: Path,
    opset: int,
    dynamic_batch: DynamicBatch | None,
    input_name: str | None,
    output_name: str | None,
    constant_folding: bool,  # unused: the dynamo exporter's optimizer folds constants itself
) -> None:
    import torch

    shapes = None
    if dynamic_batch is not None:
        shapes = ({0: torch.export.Dim("batch", min=dynamic_batch[0], max=dynamic_batch[1])},)
    torch.onnx.export(
        module,
        (x,),
        str(path),
        input_names=[input_name] if input_name else None,
        output_names=[output_name] if output_name else None,
        opset_version=opset,
        dynamic_shapes=shapes,
        dynamo=True,
        external_data=False,
        optimize=True,
        verbose=False,
    )


def torch_to_onnx(
    module: torch.nn.Module,
    path: Path | str,
    *,
    input_shape: Sequence[int],
    opset: int,
    dynamic_batch: DynamicBatch | None = None,
    input_name: str | None = INPUT_NAME,
    output_name: str | None = OUTPUT_NAME,
    exporter: str = "torchscript",
    constant_folding: bool = True,
) -> None:
    """Export `module` (put in eval mode) for one zero input of `input_shape` (NCHW) to `path`.

    `dynamic_batch`: (min, max) makes the batch axis of the input and output dynamic; None keeps the
    batch of `input_shape`. A None name leaves the exporter's default. `constant_folding` applies to
    the TorchScript exporter. An unknown `exporter` is an InputError that lists the known ones.
    """
    import torch

    export = ONNX_GRAPH_EXPORTERS.get(exporter)
    if dynamic_batch is not None and not input_name:
        raise ValueError("a dynamic batch axis needs a named input")
    x = torch.zeros(*input_shape)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the legacy-exporter DeprecationWarning and tracer warnings
        export(module.eval(), x, Path(path), opset, dynamic_batch, input_name, output_name, constant_folding)
