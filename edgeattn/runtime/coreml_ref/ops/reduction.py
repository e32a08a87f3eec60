"""Reduction MIL ops. `axes` absent means every axis; `keep_dims` defaults to False."""

from __future__ import annotations

import torch

from edgeattn.runtime.coreml_ref.ops.args import axes_of, axis_of, flag, integer
from edgeattn.runtime.coreml_ref.ops.registry import op


def _reduce(fn):
    def run(x: torch.Tensor, axes=None, keep_dims=None) -> torch.Tensor:
        dims = axes_of(axes, x.dim())
        if dims == []:  # an explicit empty axes list reduces nothing
            return x
        dims = list(range(x.dim())) if dims is None else dims
        return fn(x, dims, flag(keep_dims))

    return run


_REDUCTIONS = {
    "reduce_sum": lambda x, d, k: x.sum(dim=d, keepdim=k),
    "reduce_mean": lambda x, d, k: x.mean(dim=d, keepdim=k),
    "reduce_max": lambda x, d, k: x.amax(dim=d, keepdim=k),
    "reduce_min": lambda x, d, k: x.amin(dim=d, keepdim=k),
    "reduce_prod": lambda x, d, k: _prod(x, d, k),
    "reduce_l1_norm": lambda x, d, k: x.abs().sum(dim=d, keepdim=k),
    "reduce_l2_norm": lambda x, d, k: torch.sqrt((x * x).sum(dim=d, keepdim=k)),
    "reduce_log_sum": lambda x, d, k: torch.log(x.sum(dim=d, keepdim=k)),
    "reduce_log_sum_exp": lambda x, d, k: torch.logsumexp(x, dim=d, keepdim=k),
    "reduce_sum_square": lambda x, d, k: (x * x).sum(dim=d, keepdim=k),
}


def _prod(x: torch.Tensor, dims: list[int], keep: bool) -> torch.Tensor:
    for d in sorted(dims, reverse=True):
        x = x.prod(dim=d, keepdim=keep)
    return x


for _name, _fn in _REDUCTIONS.items():
    op(_name)(_reduce(_fn))


@op("reduce_argmax")
def reduce_argmax(x: torch.Tensor, axis=None, keep_dims=None, output_dtype=None) -> torch.Tensor:
    # output_dtype (iOS17: int32/uint16/...) is the declared output dtype the executor casts to.
    return torch.argmax(x, dim=axis_of(integer(axis, -1), x.dim()), keepdim=flag(keep_dims))


@op("reduce_argmin")
def reduce_argmin(x: torch.Tensor, axis=None, keep_dims=None, output_dtype=None) -> torch.Tensor:
    return torch.argmin(x, dim=axis_of(integer(axis, -1), x.dim()), keepdim=flag(keep_dims))
