"""Compressed weights (constexpr_* ops, decompressed once at load) and activation quantize/dequantize.

- INT8 weights: `constexpr_affine_dequantize` (iOS16/17) and `constexpr_blockwise_shift_scale` (iOS18):
  w = scale * (q - zero_point), scale per tensor, per channel (`axis`) or per block.
- Palettized weights: `constexpr_lut_to_dense` — iOS16: a packed-bit index vector into one LUT;
  iOS18: an index tensor into per-block LUTs, optionally of vectors.
- Sparse weights: `constexpr_sparse_to_dense` (bit mask + non-zero values).
- Activations: `quantize` (round half to even, add zero point, saturate) and `dequantize`.
"""

from __future__ import annotations

import numpy as np
import torch

from edgeattn.runtime.coreml_ref.ops.args import axis_of, integer, ints
from edgeattn.runtime.coreml_ref.ops.registry import op
from edgeattn.runtime.coreml_ref.values import INT_RANGES, STORAGE


def _along(param: torch.Tensor, rank: int, axis: int | None) -> torch.Tensor:
    """A scalar or a vector on `axis`, shaped to broadcast against a rank-`rank` tensor."""
    if param.dim() == rank:
        return param
    if param.dim() == 0 or param.numel() == 1:
        return param.reshape([1] * rank)
    if axis is None:
        raise ValueError("a per-channel scale/zero_point needs an axis")
    shape = [1] * rank
    shape[axis_of(axis, rank)] = -1
    return param.reshape(shape)


def _unpack_bits(packed: torch.Tensor, nbits: int, count: int) -> torch.Tensor:
    """Unsigned `nbits`-bit fields packed LSB-first into bytes (the MIL packing), as int64."""
    bits = np.unpackbits(packed.numpy().astype(np.uint8), bitorder="little")[: count * nbits]
    fields = bits.reshape(count, nbits).astype(np.int64)
    return torch.from_numpy((fields << np.arange(nbits, dtype=np.int64)).sum(axis=1))


def _upcast(x: torch.Tensor) -> torch.Tensor:
    return x if x.dtype.is_floating_point else x.to(torch.float32)


@op("constexpr_affine_dequantize", const=True)
def constexpr_affine_dequantize(quantized_data, zero_point, scale, axis) -> torch.Tensor:
    ax = integer(axis)
    rank = quantized_data.dim()
    q = quantized_data.to(torch.float32)
    return (q - _along(_upcast(zero_point), rank, ax)) * _along(scale, rank, ax)


@op("constexpr_cast", const=True)
def constexpr_cast(source_val, output_dtype) -> torch.Tensor:
    return source_val.to(STORAGE[str(output_dtype)])


def _repeat_blocks(param: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    """Repeat each entry of a per-block parameter over its block (block size = data dim / param dim)."""
    for d, (size, psize) in enumerate(zip(shape, param.shape, strict=True)):
        if psize != size:
            if size % psize:
                raise ValueError(
                    f"a block parameter of shape {list(param.shape)} does not tile data {list(shape)}"
                )
            param = param.repeat_interleave(size // psize, dim=d)
    return param


@op("constexpr_blockwise_shift_scale", const=True)
def constexpr_blockwise_shift_scale(data, scale, offset=None) -> torch.Tensor:
    x = data.to(torch.float32)
    if offset is not None:
        x = x - _repeat_blocks(_upcast(offset), data.shape)
    return x * _repeat_blocks(scale, data.shape)


@op("constexpr_lut_to_dense", const=True)
def constexpr_lut_to_dense(indices, lut, shape=None, vector_axis=None) -> torch.Tensor:
    if shape is not None:  # iOS16: packed-bit index vector into one LUT
        out_shape = ints(shape)
        nbits = int(round(np.log2(lut.numel())))
        idx = _unpack_bits(indices, nbits, int(np.prod(out_shape)))
        return lut.reshape(-1)[idx].reshape(out_shape)
    # iOS18: lut is [*block_grid, palettes, vector_size]; indices has the (compressed) output shape.
    k = indices.dim()
    grid, palettes, vsize = list(lut.shape[:k]), lut.shape[k], lut.shape[k + 1]
    block_id = torch.zeros(indices.shape, dtype=torch.long)
    stride = 1
    for d in reversed(range(k)):
        coord = torch.arange(indices.shape[d]) // (indices.shape[d] // grid[d])
        view = [1] * k
        view[d] = -1
        block_id = block_id + coord.reshape(view) * stride
        stride *= grid[d]
    table = lut.reshape(-1, palettes, vsize)
    out = table[block_id, indices.long()]  # indices.shape + [vsize]
    if vsize == 1:
        return out.squeeze(-1)
    ax = axis_of(integer(vector_axis), k)
    out = out.movedim(-1, ax + 1)
    new_shape = list(indices.shape)
    new_shape[ax] *= vsize
    return out.reshape(new_shape)


@op("constexpr_sparse_to_dense", const=True)
def constexpr_sparse_to_dense(nonzero_data, mask, shape=None) -> torch.Tensor:
    if shape is not None:  # iOS16: packed bit mask
        out_shape = ints(shape)
        bits = _unpack_bits(mask, 1, int(np.prod(out_shape))).bool()
    else:  # iOS18: a uint1 mask tensor of the output shape
        out_shape = list(mask.shape)
        bits = mask.reshape(-1).bool()
    dense = torch.zeros(bits.numel(), dtype=nonzero_data.dtype)
    dense[bits] = nonzero_data.reshape(-1)
    return dense.reshape(out_shape)


@op("quantize")
def quantize(input, scale, output_dtype, zero_point=None, axis=None) -> torch.Tensor:
    dtype = str(output_dtype)
    if dtype not in INT_RANGES:
        raise ValueError(f"quantize to {dtype!r}")
    rank = input.dim()
    ax = None if axis is None else integer(axis)
    q = torch.round(input / _along(scale, rank, ax))
    if zero_point is not None:
        q = q + _along(zero_point.to(torch.float32), rank, ax)
    low, high = INT_RANGES[dtype]
    return q.clamp(low, high).to(STORAGE[dtype])


@op("dequantize")
def dequantize(input, scale, zero_point=None, axis=None) -> torch.Tensor:
    rank = input.dim()
    ax = None if axis is None else integer(axis)
    x = input.to(torch.float32)
    if zero_point is not None:
        x = x - _along(zero_point.to(torch.float32), rank, ax)
    return x * _along(scale, rank, ax)
