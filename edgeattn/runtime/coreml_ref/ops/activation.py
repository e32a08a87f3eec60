"""Activation MIL ops, with the formulas of the MIL op reference (iOS15–iOS18 opsets)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from edgeattn.runtime.coreml_ref.ops.args import axis_of, integer, num
from edgeattn.runtime.coreml_ref.ops.registry import op


@op("relu")
def relu(x: torch.Tensor) -> torch.Tensor:
    return torch.relu(x)


@op("relu6")
def relu6(x: torch.Tensor) -> torch.Tensor:
    return torch.clamp(x, 0.0, 6.0)


@op("sigmoid")
def sigmoid(x: torch.Tensor) -> torch.Tensor:
    return torch.sigmoid(x)


@op("silu")
def silu(x: torch.Tensor) -> torch.Tensor:
    return x * torch.sigmoid(x)


@op("softplus")
def softplus(x: torch.Tensor) -> torch.Tensor:
    return F.softplus(x)


@op("softsign")
def softsign(x: torch.Tensor) -> torch.Tensor:
    return x / (1.0 + x.abs())


_GELU = {
    "EXACT": lambda x: 0.5 * x * (1.0 + torch.erf(x / math.sqrt(2.0))),
    "TANH_APPROXIMATION": lambda x: (
        0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)))
    ),
    "SIGMOID_APPROXIMATION": lambda x: x * torch.sigmoid(1.702 * x),
}


@op("gelu")
def gelu(x: torch.Tensor, mode: str = "EXACT") -> torch.Tensor:
    if mode not in _GELU:
        raise ValueError(f"gelu mode {mode!r} is not one of {sorted(_GELU)}")
    return _GELU[mode](x)


@op("elu")
def elu(x: torch.Tensor, alpha=None) -> torch.Tensor:
    a = num(alpha, 1.0)
    return torch.where(x > 0, x, a * (torch.exp(x) - 1.0))


@op("leaky_relu")
def leaky_relu(x: torch.Tensor, alpha=None) -> torch.Tensor:
    a = num(alpha, 0.01)
    return torch.where(x >= 0, x, a * x)


def _per_channel(param: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """A [C] parameter broadcast over an x of shape [B, C, *D]."""
    return param.reshape(1, -1, *([1] * (x.dim() - 2)))


@op("prelu")
def prelu(x: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    a = _per_channel(alpha, x)
    return torch.where(x >= 0, x, a * x)


@op("clamped_relu")
def clamped_relu(x: torch.Tensor, alpha, beta) -> torch.Tensor:
    return torch.clamp(torch.where(x >= 0, x, num(alpha) * x), max=num(beta))


@op("linear_activation")
def linear_activation(x: torch.Tensor, alpha, beta=None) -> torch.Tensor:
    return num(alpha) * x + num(beta, 0.0)


@op("scaled_tanh")
def scaled_tanh(x: torch.Tensor, alpha=None, beta=None) -> torch.Tensor:
    return num(alpha, 1.0) * torch.tanh(num(beta, 1.0) * x)


@op("sigmoid_hard")
def sigmoid_hard(x: torch.Tensor, alpha=None, beta=None) -> torch.Tensor:
    return torch.clamp(num(alpha, 0.2) * x + num(beta, 0.5), 0.0, 1.0)


@op("softplus_parametric")
def softplus_parametric(x: torch.Tensor, alpha: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:
    return _per_channel(alpha, x) * torch.log1p(torch.exp(_per_channel(beta, x) * x))


@op("thresholded_relu")
def thresholded_relu(x: torch.Tensor, alpha=None) -> torch.Tensor:
    return torch.where(x > num(alpha, 1.0), x, torch.zeros_like(x))


@op("softmax")
def softmax(x: torch.Tensor, axis=None) -> torch.Tensor:
    return torch.softmax(x, dim=axis_of(integer(axis, -1), x.dim()))
