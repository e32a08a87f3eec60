"""Normalisation MIL ops: batch_norm, layer_norm, instance_norm, l2_norm, local_response_norm.

Statistics use the biased variance (divide by N), as the MIL reference does; epsilon is added to
the variance before the square root.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from edgeattn.runtime.coreml_ref.ops.args import axes_of, integer, num
from edgeattn.runtime.coreml_ref.ops.registry import op


def _channel(param: torch.Tensor | None, x: torch.Tensor) -> torch.Tensor | None:
    return None if param is None else param.to(x.dtype).reshape(1, -1, *([1] * (x.dim() - 2)))


@op("batch_norm")
def batch_norm(x, mean, variance, gamma=None, beta=None, epsilon=None) -> torch.Tensor:
    y = (x - _channel(mean, x)) / torch.sqrt(_channel(variance, x) + num(epsilon, 1e-5))
    if gamma is not None:
        y = y * _channel(gamma, x)
    if beta is not None:
        y = y + _channel(beta, x)
    return y


@op("layer_norm")
def layer_norm(x, axes=None, gamma=None, beta=None, epsilon=None) -> torch.Tensor:
    axes = axes_of(axes, x.dim())
    axes = list(range(x.dim())) if axes is None else sorted(axes)
    mean = x.mean(dim=axes, keepdim=True)
    var = ((x - mean) ** 2).mean(dim=axes, keepdim=True)
    y = (x - mean) / torch.sqrt(var + num(epsilon, 1e-5))
    # gamma/beta have the shape of x over `axes`: place them on those axes.
    shape = [x.shape[d] if d in axes else 1 for d in range(x.dim())]
    if gamma is not None:
        y = y * gamma.to(x.dtype).reshape(shape)
    if beta is not None:
        y = y + beta.to(x.dtype).reshape(shape)
    return y


@op("instance_norm")
def instance_norm(x, gamma=None, beta=None, epsilon=None) -> torch.Tensor:
    dims = list(range(2, x.dim()))
    mean = x.mean(dim=dims, keepdim=True)
    var = ((x - mean) ** 2).mean(dim=dims, keepdim=True)
    y = (x - mean) / torch.sqrt(var + num(epsilon, 1e-5))
    if gamma is not None:
        y = y * _channel(gamma, x)
    if beta is not None:
        y = y + _channel(beta, x)
    return y


@op("l2_norm")
def l2_norm(x, epsilon=None) -> torch.Tensor:
    """x / sqrt(sum(x^2) + eps) over the last three dims; leading dims are batch."""
    dims = list(range(max(0, x.dim() - 3), x.dim()))
    return x / torch.sqrt((x * x).sum(dim=dims, keepdim=True) + num(epsilon, 1e-6))


@op("local_response_norm")
def local_response_norm(x, size, alpha=None, beta=None, k=None) -> torch.Tensor:
    return F.local_response_norm(
        x, integer(size), alpha=num(alpha, 1e-4), beta=num(beta, 0.75), k=num(k, 1.0)
    )
