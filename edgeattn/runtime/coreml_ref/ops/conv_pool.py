"""Convolution and pooling MIL ops (1-D, 2-D and 3-D), with MIL's pad types.

MIL pads are given per spatial dim as [before_0, after_0, before_1, after_1, ...]; `same` puts the
odd extra row/column after, `same_lower` before. Pads are applied explicitly (F.pad) so asymmetric
pads compute exactly; torch then runs the unpadded kernel.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from edgeattn.runtime.coreml_ref.ops.args import flag, integer, ints
from edgeattn.runtime.coreml_ref.ops.registry import op

_CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
_CONV_T = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}
_AVG = {1: F.avg_pool1d, 2: F.avg_pool2d, 3: F.avg_pool3d}
_MAX = {1: F.max_pool1d, 2: F.max_pool2d, 3: F.max_pool3d}


def _spatial_pads(
    pad_type: str,
    pad: list[int],
    in_sizes: list[int],
    kernel: list[int],
    strides: list[int],
    dilations: list[int],
) -> list[tuple[int, int]]:
    n = len(in_sizes)
    if pad_type == "valid":
        return [(0, 0)] * n
    if pad_type == "custom":
        pad = pad or [0] * (2 * n)
        if len(pad) != 2 * n:
            raise ValueError(f"custom pad has {len(pad)} values, expected {2 * n}")
        return [(pad[2 * i], pad[2 * i + 1]) for i in range(n)]
    if pad_type in ("same", "same_lower"):
        pads = []
        for size, k, s, d in zip(in_sizes, kernel, strides, dilations, strict=True):
            out = math.ceil(size / s)
            total = max((out - 1) * s + (k - 1) * d + 1 - size, 0)
            small, big = total // 2, total - total // 2
            pads.append((small, big) if pad_type == "same" else (big, small))
        return pads
    raise ValueError(f"pad_type {pad_type!r} is not one of valid, custom, same, same_lower")


def _pad_spatial(x: torch.Tensor, pads: list[tuple[int, int]], value: float = 0.0) -> torch.Tensor:
    if not any(b or e for b, e in pads):
        return x
    flat = [v for b, e in reversed(pads) for v in (b, e)]  # F.pad wants the last dim first
    return F.pad(x, flat, value=value)


@op("conv")
def conv(
    x, weight, bias=None, strides=None, pad_type="valid", pad=None, dilations=None, groups=None
) -> torch.Tensor:
    n = x.dim() - 2
    if n not in _CONV:
        raise ValueError(f"conv on a rank-{x.dim()} input (only 1-D to 3-D convolutions exist)")
    strides = ints(strides) or [1] * n
    dilations = ints(dilations) or [1] * n
    kernel = list(weight.shape[2:])
    pads = _spatial_pads(str(pad_type), ints(pad), list(x.shape[2:]), kernel, strides, dilations)
    w = weight.to(x.dtype)
    b = None if bias is None else bias.to(x.dtype)
    return _CONV[n](
        _pad_spatial(x, pads), w, b, stride=strides, dilation=dilations, groups=integer(groups, 1)
    )


@op("conv_transpose")
def conv_transpose(
    x,
    weight,
    bias=None,
    pad=None,
    output_shape=None,
    pad_type="valid",
    strides=None,
    dilations=None,
    groups=None,
) -> torch.Tensor:
    n = x.dim() - 2
    if n not in _CONV_T:
        raise ValueError(f"conv_transpose on a rank-{x.dim()} input")
    if str(pad_type) not in ("valid", "custom"):
        raise ValueError(f"conv_transpose with pad_type {pad_type!r} (only valid and custom are implemented)")
    strides = ints(strides) or [1] * n
    dilations = ints(dilations) or [1] * n
    b = None if bias is None else bias.to(x.dtype)
    y = _CONV_T[n](x, weight.to(x.dtype), b, stride=strides, dilation=dilations, groups=integer(groups, 1))
    crops = ints(pad) if str(pad_type) == "custom" else []
    if crops:
        index = [slice(None), slice(None)]
        for i in range(n):
            size = y.shape[2 + i]
            index.append(slice(crops[2 * i], size - crops[2 * i + 1]))
        y = y[tuple(index)]
    if output_shape is not None:
        want = ints(output_shape)
        if list(y.shape[-n:]) != want[-n:]:
            raise ValueError(f"conv_transpose output {list(y.shape)} does not match output_shape {want}")
    return y


def _pool_args(x, kernel_sizes, strides, pad_type, pad):
    n = x.dim() - 2
    if n not in _AVG:
        raise ValueError(f"pooling on a rank-{x.dim()} input")
    kernel = ints(kernel_sizes)
    strides = ints(strides) or [1] * n
    pads = _spatial_pads(str(pad_type), ints(pad), list(x.shape[2:]), kernel, strides, [1] * n)
    return n, kernel, strides, pads


@op("max_pool")
def max_pool(x, kernel_sizes, strides=None, pad_type="valid", pad=None, ceil_mode=None) -> torch.Tensor:
    n, kernel, strides, pads = _pool_args(x, kernel_sizes, strides, pad_type, pad)
    xp = _pad_spatial(x, pads, value=-math.inf)
    return _MAX[n](xp, kernel, strides, padding=0, ceil_mode=flag(ceil_mode))


@op("avg_pool")
def avg_pool(
    x,
    kernel_sizes,
    strides=None,
    pad_type="valid",
    pad=None,
    exclude_padding_from_average=None,
    ceil_mode=None,
) -> torch.Tensor:
    n, kernel, strides, pads = _pool_args(x, kernel_sizes, strides, pad_type, pad)
    ceil = flag(ceil_mode)
    include_pad = not flag(exclude_padding_from_average)
    symmetric = all(b == e and 2 * b <= k for (b, e), k in zip(pads, kernel, strict=True))
    if symmetric:  # torch's own padding handles both counting modes, and ceil_mode, exactly
        return _AVG[n](
            x, kernel, strides, padding=[b for b, _ in pads], ceil_mode=ceil, count_include_pad=include_pad
        )
    if ceil:
        raise ValueError("avg_pool with asymmetric padding and ceil_mode")
    window = math.prod(kernel)
    total = _AVG[n](_pad_spatial(x, pads), kernel, strides) * window
    if include_pad:
        return total / window
    count = _AVG[n](_pad_spatial(torch.ones_like(x[:1, :1]), pads), kernel, strides) * window
    return total / count


@op("l2_pool")
def l2_pool(x, kernel_sizes, strides=None, pad_type="valid", pad=None, ceil_mode=None) -> torch.Tensor:
    n, kernel, strides, pads = _pool_args(x, kernel_sizes, strides, pad_type, pad)
    sq = _AVG[n](_pad_spatial(x * x, pads), kernel, strides, ceil_mode=flag(ceil_mode)) * math.prod(kernel)
    return torch.sqrt(sq)
