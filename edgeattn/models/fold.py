"""Exact inference folds, applied to a float model before it is quantized.

A model class that can fold something for inference (a norm into the conv after it, say) defines
`fold_for_inference() -> dict` on its top module: it folds in place and returns the model options that
rebuild the folded structure, so an INT8 checkpoint of it loads (its config names the options). Why
before quantizing: a fold that is exact in float stops being foldable once the quantizer has put a
requantization between the two layers, and the float graph exporters already fold it (onnxslim), so
without it the INT8 graph would carry float ops its own FP32 baseline does not.
"""

from __future__ import annotations

import dataclasses

from edgeattn.checkpoint import ModelHandle


def fold_for_inference(handle: ModelHandle) -> ModelHandle:
    """`handle` with its model folded in place where its class knows how; unchanged otherwise."""
    fold = getattr(handle.module, "fold_for_inference", None)
    if fold is None:
        return handle
    options = fold()
    config = dataclasses.replace(handle.config, options={**handle.config.options, **options})
    return dataclasses.replace(handle, config=config)
