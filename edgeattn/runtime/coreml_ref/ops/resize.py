"""Spatial resampling MIL ops, with the sampling grids of the MIL op reference.

Bilinear resampling is done separably (H, then W) on explicit sample coordinates, so each MIL
sampling mode is computed from its own formula instead of being mapped onto a torch mode.
"""

from __future__ import annotations

import math

import torch

from edgeattn.runtime.coreml_ref.ops.args import flag, integer, num
from edgeattn.runtime.coreml_ref.ops.registry import op


def _lerp(x: torch.Tensor, axis: int, coords: torch.Tensor) -> torch.Tensor:
    """Linear interpolation of x along `axis` at (clamped) fractional positions `coords`."""
    n = x.shape[axis]
    coords = coords.clamp(0, n - 1)
    i0 = coords.floor().long()
    i1 = (i0 + 1).clamp(max=n - 1)
    shape = [1] * x.dim()
    shape[axis] = -1
    w = (coords - i0).reshape(shape).to(x.dtype)
    return x.index_select(axis, i0) * (1 - w) + x.index_select(axis, i1) * w


def _upsample_coords(
    n_in: int, n_out: int, scale: float, align_corners: bool, half_pixel: bool
) -> torch.Tensor:
    i = torch.arange(n_out, dtype=torch.float64)
    if align_corners:
        return i * ((n_in - 1) / (n_out - 1) if n_out > 1 else 0.0)
    if half_pixel:
        return (i + 0.5) / scale - 0.5
    return i / scale


@op("upsample_bilinear")
def upsample_bilinear(
    x, scale_factor_height=None, scale_factor_width=None, align_corners=None, half_pixel_centers=None
) -> torch.Tensor:
    align = flag(align_corners, True)
    half = flag(half_pixel_centers, not align)
    for axis, scale in ((-2, num(scale_factor_height, 1.0)), (-1, num(scale_factor_width, 1.0))):
        n_in = x.shape[axis]
        n_out = math.floor(n_in * scale)
        x = _lerp(x, x.dim() + axis, _upsample_coords(n_in, n_out, scale, align, half))
    return x


@op("upsample_nearest_neighbor")
def upsample_nearest_neighbor(x, scale_factor_height=None, scale_factor_width=None) -> torch.Tensor:
    for axis, scale in ((-2, num(scale_factor_height, 1.0)), (-1, num(scale_factor_width, 1.0))):
        n_in = x.shape[axis]
        n_out = math.floor(n_in * scale)
        src = torch.floor(torch.arange(n_out, dtype=torch.float64) / scale).long().clamp(max=n_in - 1)
        x = x.index_select(x.dim() + axis, src)
    return x


def _resize_coords(n_in: int, n_out: int, mode: str) -> torch.Tensor:
    i = torch.arange(n_out, dtype=torch.float64)
    if mode in ("STRICT_ALIGN_CORNERS", "ALIGN_CORNERS"):
        if n_out == 1:
            return torch.full((1,), (n_in - 1) / 2 if mode == "ALIGN_CORNERS" else 0.0, dtype=torch.float64)
        return i * (n_in - 1) / (n_out - 1)
    if mode == "DEFAULT":
        return i * ((n_in - n_in / n_out) / (n_out - 1) if n_out > 1 else 0.0)
    if mode == "OFFSET_CORNERS":
        delta = max(1, n_in - 1) / n_out
        return 0.5 * delta + i * delta
    if mode == "UNALIGN_CORNERS":
        spacing = n_in / n_out
        return i * spacing + 0.5 * spacing - 0.5
    raise ValueError(f"resize_bilinear sampling_mode {mode!r}")


@op("resize_bilinear")
def resize_bilinear(
    x, target_size_height=None, target_size_width=None, sampling_mode="DEFAULT"
) -> torch.Tensor:
    for axis, size in ((-2, integer(target_size_height, 1)), (-1, integer(target_size_width, 1))):
        x = _lerp(x, x.dim() + axis, _resize_coords(x.shape[axis], size, str(sampling_mode)))
    return x
