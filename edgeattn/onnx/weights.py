"""The original FP32 values of a Q/DQ graph's quantized weights, found in a reference.

A quantized weight's FP32 original is a reference tensor (from the FP32 ONNX or the checkpoint's state
dict) that rounds to exactly its int8 values; without one, the dequantized values stand in for it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from edgeattn.onnx.graph import load_model
from edgeattn.onnx.qdq_graph import QdqGraph


def _rounds_to(w: np.ndarray, deq: np.ndarray, step: np.ndarray) -> float | None:
    """Mean abs difference when `w` quantizes to exactly `deq` (within half a step), else None."""
    if w.shape != deq.shape:
        return None
    diff = np.abs(w.astype(np.float64) - deq)
    if np.mean(diff <= 0.5 * step * 1.001 + 1e-12) < 0.999:
        return None
    return float(diff.mean())


def _candidate_weights(reference: Mapping[str, Any] | None) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    for name, value in (reference or {}).items():
        arr = value.detach().cpu().numpy() if hasattr(value, "detach") else np.asarray(value)
        if arr.dtype.kind != "f" or arr.size == 0:
            continue
        out[name] = arr.astype(np.float32)
        if arr.ndim == 2:  # Linear weights appear transposed as MatMul initializers
            out[name + ".T"] = np.ascontiguousarray(arr.T).astype(np.float32)
    return out


def reference_weights(
    fp32_onnx: onnx.ModelProto | Path | str | None = None, state_dict: Mapping[str, Any] | None = None
) -> dict[str, np.ndarray]:
    """Candidate FP32 weights to recover the originals of quantized weights (from an ONNX and/or a state dict)."""
    found: dict[str, Any] = {}
    if fp32_onnx is not None:
        g = QdqGraph(load_model(fp32_onnx))
        found.update({name: g.constant(name) for name in g.constant_names()})
    if state_dict:
        found.update({f"state_dict:{k}": v for k, v in state_dict.items()})
    return _candidate_weights(found)


def restore_weights(
    graph: QdqGraph, candidates: Mapping[str, np.ndarray]
) -> tuple[dict[str, np.ndarray], int]:
    """FP32 value for every weight DequantizeLinear output, and how many were original (not dequantized)."""
    by_shape: dict[tuple[int, ...], list[str]] = {}
    for name, arr in candidates.items():
        by_shape.setdefault(tuple(arr.shape), []).append(name)
    values, restored = {}, 0
    for out, (kind, _, _) in graph.dq.items():
        if kind != "weight":
            continue
        deq, step = graph.dequantized(out)
        source = graph.dq_nodes[out].input[0]
        preferred = [n for n in (source.removesuffix("_quantized"), out) if n in candidates]
        best, best_err = None, math.inf
        for name in preferred + [n for n in by_shape.get(tuple(deq.shape), []) if n not in preferred]:
            err = _rounds_to(candidates[name], deq, step)
            if err is not None and err < best_err:
                best, best_err = name, err
                if name in preferred:
                    break
        if best is not None:
            values[out], restored = candidates[best].astype(np.float32), restored + 1
        else:
            values[out] = deq
    return values, restored
