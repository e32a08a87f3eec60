"""Tensor-shaping MIL ops: reshape, transpose, concat, split, slices, gathers, squeeze/expand, pad, ..."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from edgeattn.runtime.coreml_ref.ops.args import axes_of, axis_of, flag, flags, integer, ints, num
from edgeattn.runtime.coreml_ref.ops.registry import op


@op("reshape")
def reshape(x: torch.Tensor, shape) -> torch.Tensor:
    target = ints(shape)
    # A 0 copies the matching dim of x, matched from the right (iOS17 rule; the same as iOS15/16 when
    # len(shape) == rank(x)); a 0 with no matching dim means 1.
    offset = x.dim() - len(target)
    target = [
        (x.shape[i + offset] if 0 <= i + offset < x.dim() else 1) if d == 0 else d
        for i, d in enumerate(target)
    ]
    return x.reshape(target)


@op("transpose")
def transpose(x: torch.Tensor, perm) -> torch.Tensor:
    return x.permute([axis_of(p, x.dim()) for p in ints(perm)])


@op("concat", tuple_inputs=("values",))
def concat(values: list[torch.Tensor], axis, interleave=None) -> torch.Tensor:
    ax = axis_of(integer(axis), values[0].dim())
    if flag(interleave):
        stacked = torch.stack(values, dim=ax + 1)
        shape = list(values[0].shape)
        shape[ax] = shape[ax] * len(values)
        return stacked.reshape(shape)
    return torch.cat(values, dim=ax)


@op("stack", tuple_inputs=("values",))
def stack(values: list[torch.Tensor], axis) -> torch.Tensor:
    return torch.stack(values, dim=axis_of(integer(axis), values[0].dim() + 1))


@op("split")
def split(x: torch.Tensor, axis, num_splits=None, split_sizes=None) -> tuple[torch.Tensor, ...]:
    ax = axis_of(integer(axis), x.dim())
    if split_sizes is not None:
        return tuple(torch.split(x, ints(split_sizes), dim=ax))
    n = integer(num_splits)
    if x.shape[ax] % n:
        raise ValueError(f"split of a dim of size {x.shape[ax]} into {n} equal parts")
    return tuple(torch.split(x, x.shape[ax] // n, dim=ax))


@op("slice_by_index")
def slice_by_index(
    x, begin, end, stride=None, begin_mask=None, end_mask=None, squeeze_mask=None
) -> torch.Tensor:
    """numpy slicing x[b0:e0:s0, ...]; masks drop a begin/end, squeeze_mask indexes at begin."""
    rank = x.dim()
    begin, end = ints(begin), ints(end)
    stride = ints(stride) or [1] * rank
    bmask, emask, smask = flags(begin_mask, rank), flags(end_mask, rank), flags(squeeze_mask, rank)
    out = x
    squeeze = []
    for d in range(rank):
        size = x.shape[d]
        if smask[d]:
            i = begin[d] + size if begin[d] < 0 else begin[d]
            out = out.narrow(d, i, 1)
            squeeze.append(d)
            continue
        sl = slice(None if bmask[d] else begin[d], None if emask[d] else end[d], stride[d])
        idx = range(*sl.indices(size))
        if stride[d] == 1:
            out = out.narrow(d, idx.start, len(idx)) if len(idx) else out.narrow(d, 0, 0)
        else:
            out = out.index_select(d, torch.tensor(list(idx), dtype=torch.long))
    return out.squeeze(squeeze) if squeeze else out


@op("slice_by_size")
def slice_by_size(x: torch.Tensor, begin, size) -> torch.Tensor:
    out = x
    for d, (b, s) in enumerate(zip(ints(begin), ints(size), strict=True)):
        b = b + x.shape[d] if b < 0 else b
        out = out.narrow(d, b, x.shape[d] - b if s == -1 else s)
    return out


def _positive(indices: torch.Tensor, size: int) -> torch.Tensor:
    indices = indices.long()
    return torch.where(indices < 0, indices + size, indices)


def _take(x: torch.Tensor, indices: torch.Tensor, axis: int) -> torch.Tensor:
    idx = _positive(indices, x.shape[axis])
    picked = x.index_select(axis, idx.reshape(-1))
    return picked.reshape(*x.shape[:axis], *idx.shape, *x.shape[axis + 1 :])


@op("gather")
def gather(
    x: torch.Tensor, indices: torch.Tensor, axis=None, batch_dims=None, validate_indices=None
) -> torch.Tensor:
    ax = axis_of(integer(axis, 0), x.dim())
    bd = integer(batch_dims, 0)
    if bd == 0:
        return _take(x, indices, ax)
    # batch_dims > 0: gather independently for each index of the leading batch dims.
    return torch.stack([gather(x[i], indices[i], ax - 1, bd - 1) for i in range(x.shape[0])])


@op("gather_along_axis")
def gather_along_axis(
    x: torch.Tensor, indices: torch.Tensor, axis=None, validate_indices=None
) -> torch.Tensor:
    ax = axis_of(integer(axis, 0), x.dim())
    return torch.gather(x, ax, _positive(indices, x.shape[ax]))


@op("gather_nd")
def gather_nd(x: torch.Tensor, indices: torch.Tensor, batch_dims=None, validate_indices=None) -> torch.Tensor:
    if integer(batch_dims, 0):
        raise ValueError("gather_nd with batch_dims > 0")
    idx = indices.long()
    parts = tuple(_positive(idx[..., i], x.shape[i]) for i in range(idx.shape[-1]))
    return x[parts]


@op("squeeze")
def squeeze(x: torch.Tensor, axes=None) -> torch.Tensor:
    dims = axes_of(axes, x.dim())
    if dims is None:
        dims = [d for d in range(x.dim()) if x.shape[d] == 1]
    return x.squeeze(dims) if dims else x


@op("expand_dims")
def expand_dims(x: torch.Tensor, axes) -> torch.Tensor:
    out_rank = x.dim() + len(ints(axes))
    for a in sorted(axis_of(a, out_rank) for a in ints(axes)):
        x = x.unsqueeze(a)
    return x


@op("flatten2d")
def flatten2d(x: torch.Tensor, axis=None) -> torch.Tensor:
    ax = axis_of(integer(axis, 1), x.dim())
    return x.reshape(math.prod(x.shape[:ax]), math.prod(x.shape[ax:]))


@op("tile")
def tile(x: torch.Tensor, reps) -> torch.Tensor:
    return x.repeat(ints(reps))


@op("reverse")
def reverse(x: torch.Tensor, axes=None) -> torch.Tensor:
    dims = axes_of(axes, x.dim())
    return x.flip(list(range(x.dim())) if dims is None else dims)


@op("pad")
def pad(x: torch.Tensor, pad, mode="constant", constant_val=None) -> torch.Tensor:
    p = ints(pad)
    n = len(p) // 2
    flat = [v for i in reversed(range(n)) for v in (p[2 * i], p[2 * i + 1])]  # F.pad: last dim first
    mode = str(mode)
    if mode == "constant":
        return F.pad(x, flat, value=num(constant_val, 0.0))
    if mode not in ("reflect", "replicate"):
        raise ValueError(f"pad mode {mode!r}")
    # torch pads the last 1-3 dims of a (N, C, *D) tensor in these modes: fold the leading dims into C.
    lead, last = list(x.shape[: x.dim() - n]), list(x.shape[x.dim() - n :])
    y = F.pad(x.reshape(1, math.prod(lead), *last), flat, mode=mode)
    return y.reshape(*lead, *y.shape[2:])


@op("shape")
def shape(x: torch.Tensor) -> torch.Tensor:
    return torch.tensor(list(x.shape), dtype=torch.int32)


@op("fill")
def fill(shape, value=None) -> torch.Tensor:
    return torch.full(ints(shape), num(value, 0.0))


@op("range_1d")
def range_1d(end, start, step) -> torch.Tensor:
    vals = [end, start, step]
    if all(not v.dtype.is_floating_point for v in vals):
        return torch.arange(integer(start), integer(end), integer(step), dtype=torch.int32)
    return torch.arange(num(start), num(end), num(step), dtype=torch.float32)


@op("pixel_shuffle")
def pixel_shuffle(x: torch.Tensor, upscale_factor) -> torch.Tensor:
    return F.pixel_shuffle(x, integer(upscale_factor))


@op("depth_to_space")
def depth_to_space(x: torch.Tensor, block_size) -> torch.Tensor:
    """TensorFlow's depth_to_space (DCR order) on NCHW."""
    b = integer(block_size)
    n, c, h, w = x.shape
    y = x.reshape(n, b, b, c // (b * b), h, w).permute(0, 3, 4, 1, 5, 2)
    return y.reshape(n, c // (b * b), h * b, w * b)


@op("space_to_depth")
def space_to_depth(x: torch.Tensor, block_size) -> torch.Tensor:
    b = integer(block_size)
    n, c, h, w = x.shape
    y = x.reshape(n, c, h // b, b, w // b, b).permute(0, 3, 5, 1, 2, 4)
    return y.reshape(n, c * b * b, h // b, w // b)


@op("cumsum")
def cumsum(x: torch.Tensor, axis=None, exclusive=None, reverse=None) -> torch.Tensor:
    ax = axis_of(integer(axis, 0), x.dim())
    y = x.flip(ax) if flag(reverse) else x
    out = torch.cumsum(y, dim=ax)
    if flag(exclusive):
        out = out - y
    return out.flip(ax) if flag(reverse) else out


@op("one_hot")
def one_hot(indices, one_hot_vector_size, axis=None, on_value=None, off_value=None) -> torch.Tensor:
    size = integer(one_hot_vector_size)
    hot = F.one_hot(indices.long().clamp(min=0), size).bool() & (indices.long() >= 0).unsqueeze(-1)
    on, off = num(on_value, 1.0), num(off_value, 0.0)
    out = torch.where(hot, torch.tensor(on), torch.tensor(off))
    return out.movedim(-1, axis_of(integer(axis, -1), out.dim()))


@op("topk")
def topk(
    x: torch.Tensor,
    k=None,
    axis=None,
    ascending=None,
    sort=None,
    return_indices=None,
    output_indices_dtype=None,
):
    ax = axis_of(integer(axis, -1), x.dim())
    values, idx = torch.topk(x, integer(k, 1), dim=ax, largest=not flag(ascending), sorted=True)
    return values, idx.int()


@op("argsort")
def argsort(x: torch.Tensor, axis=None, ascending=None) -> torch.Tensor:
    ax = axis_of(integer(axis, -1), x.dim())
    return torch.argsort(x, dim=ax, descending=not flag(ascending), stable=True).int()


@op("band_part")
def band_part(x: torch.Tensor, lower=None, upper=None) -> torch.Tensor:
    lo, up = integer(lower, -1), integer(upper, -1)
    m, n = x.shape[-2:]
    i = torch.arange(m).unsqueeze(1)
    j = torch.arange(n).unsqueeze(0)
    keep = ((lo < 0) | (i - j <= lo)) & ((up < 0) | (j - i <= up))
    return torch.where(keep, x, torch.zeros_like(x))
