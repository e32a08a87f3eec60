"""Reading op parameters (axes, pads, flags) from the tensors a program holds them in."""

from __future__ import annotations

from typing import Any

import torch


def ints(value: Any) -> list[int]:
    """A const int tensor (or list/scalar) as a Python list of ints."""
    if value is None:
        return []
    if isinstance(value, torch.Tensor):
        return [int(v) for v in value.reshape(-1).tolist()]
    if isinstance(value, (list, tuple)):
        return [int(v) for v in value]
    return [int(value)]


def num(value: Any, default: float | None = None) -> float:
    if value is None:
        if default is None:
            raise ValueError("a required scalar parameter is missing")
        return default
    return float(value.reshape(-1)[0]) if isinstance(value, torch.Tensor) else float(value)


def integer(value: Any, default: int | None = None) -> int:
    if value is None:
        if default is None:
            raise ValueError("a required integer parameter is missing")
        return default
    return int(value.reshape(-1)[0]) if isinstance(value, torch.Tensor) else int(value)


def flag(value: Any, default: bool = False) -> bool:
    if value is None:
        return default
    return bool(value.reshape(-1)[0]) if isinstance(value, torch.Tensor) else bool(value)


def flags(value: Any, n: int) -> list[bool]:
    if value is None:
        return [False] * n
    return [bool(v) for v in value.reshape(-1).tolist()]


def axis_of(axis: int, rank: int) -> int:
    return axis + rank if axis < 0 else axis


def axes_of(value: Any, rank: int) -> list[int] | None:
    """Normalised axes, or None when the op's `axes` input is absent (all axes)."""
    if value is None:
        return None
    return [axis_of(a, rank) for a in ints(value)]
