"""onnxruntime CPU sessions on in-memory models, and running them on prepared inputs.

Two optimization levels are used: "all" (onnxruntime's default, what a deployed model runs with) for
the export checks, and "basic" for comparisons of Q/DQ graphs with their FP32 twin. The basic level
keeps every exposed tensor and does not fuse Q/DQ into integer kernels, so an INT8 graph's
intermediates (and outputs) are the simulated-quantization values the twin is compared with.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from edgeattn.onnx.graph import load_model


def session(model: onnx.ModelProto, threads: int = 2, *, optimization: str = "all") -> Any:
    """An onnxruntime CPU session on an in-memory model (`threads` intra-op threads; the checks and
    comparisons are small, so 2 by default, one inter-op thread)."""
    import onnxruntime as ort

    levels = {
        "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
        "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
    }
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.graph_optimization_level = levels[optimization]
    opts.log_severity_level = 3
    return ort.InferenceSession(
        model.SerializeToString(), sess_options=opts, providers=["CPUExecutionProvider"]
    )


def _input_dtype(inp: Any) -> type:
    return np.float16 if "float16" in inp.type else np.float32


def run_session(sess: Any, x: np.ndarray) -> np.ndarray:
    """The first output for one batch `x`, as float32 (an FP16-input model gets `x` in FP16)."""
    inp = sess.get_inputs()[0]
    return np.asarray(sess.run(None, {inp.name: x.astype(_input_dtype(inp))})[0], dtype=np.float32)


def feed_batches(sess: Any, inputs: np.ndarray) -> Iterable[tuple[dict[str, np.ndarray], int]]:
    """Feed dicts of the session's batch size (static batch: padded, with the real count)."""
    inp = sess.get_inputs()[0]
    static = inp.shape[0] if isinstance(inp.shape[0], int) and inp.shape[0] > 0 else None
    step = static or 1
    dtype = _input_dtype(inp)
    for i in range(0, len(inputs), step):
        x = inputs[i : i + step]
        real = len(x)
        if static and real < static:
            x = np.concatenate([x, np.repeat(x[-1:], static - real, axis=0)])
        yield {inp.name: np.ascontiguousarray(x, dtype=dtype)}, real


def run_outputs(model: onnx.ModelProto | Path | str, inputs: np.ndarray, threads: int = 1) -> np.ndarray:
    """First output of an ONNX model (proto or path) for a batch of prepared inputs, on a basic-level
    session (Q/DQ graphs give their simulated-quantization values, see the module docstring)."""
    sess = session(load_model(model), threads, optimization="basic")
    outs = [
        sess.run([sess.get_outputs()[0].name], feed)[0][:real] for feed, real in feed_batches(sess, inputs)
    ]
    return np.concatenate(outs).astype(np.float32)
