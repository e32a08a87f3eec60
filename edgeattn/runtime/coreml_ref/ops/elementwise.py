"""Elementwise MIL ops (numpy-style broadcasting), comparisons, logic, casts."""

from __future__ import annotations

import torch

from edgeattn.runtime.coreml_ref.ops.args import num
from edgeattn.runtime.coreml_ref.ops.registry import op
from edgeattn.runtime.coreml_ref.values import STORAGE

_BINARY = {
    "add": torch.add,
    "sub": torch.sub,
    "mul": torch.mul,
    "real_div": torch.true_divide,
    "floor_div": lambda x, y: torch.div(x, y, rounding_mode="floor"),
    "pow": torch.pow,
    "maximum": torch.maximum,
    "minimum": torch.minimum,
    "mod": torch.remainder,
    "equal": torch.eq,
    "not_equal": torch.ne,
    "less": torch.lt,
    "less_equal": torch.le,
    "greater": torch.gt,
    "greater_equal": torch.ge,
    "logical_and": torch.logical_and,
    "logical_or": torch.logical_or,
    "logical_xor": torch.logical_xor,
}


def _binary(fn):
    def run(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return fn(x, y)

    return run


for _name, _fn in _BINARY.items():
    op(_name)(_binary(_fn))


_UNARY = {
    "abs": torch.abs,
    "acos": torch.acos,
    "asin": torch.asin,
    "atan": torch.atan,
    "atanh": torch.atanh,
    "ceil": torch.ceil,
    "cos": torch.cos,
    "cosh": torch.cosh,
    "erf": torch.erf,
    "exp": torch.exp,
    "exp2": torch.exp2,
    "floor": torch.floor,
    "logical_not": torch.logical_not,
    "round": torch.round,  # ties to even, as numpy (and MIL's reference) do
    "sign": torch.sign,
    "sin": torch.sin,
    "sinh": torch.sinh,
    "sqrt": torch.sqrt,
    "square": torch.square,
    "tan": torch.tan,
    "tanh": torch.tanh,
    "identity": lambda x: x,
}


def _unary(fn):
    def run(x: torch.Tensor) -> torch.Tensor:
        return fn(x)

    return run


for _name, _fn in _UNARY.items():
    op(_name)(_unary(_fn))


@op("inverse")
def inverse(x: torch.Tensor, epsilon=None) -> torch.Tensor:
    return 1.0 / (x + num(epsilon, 1e-4))


@op("log")
def log(x: torch.Tensor, epsilon=None) -> torch.Tensor:
    return torch.log(x + num(epsilon, 1e-45))


@op("rsqrt")
def rsqrt(x: torch.Tensor, epsilon=None) -> torch.Tensor:
    return torch.rsqrt(x + num(epsilon, 1e-12))


@op("clip")
def clip(x: torch.Tensor, alpha, beta) -> torch.Tensor:
    return torch.clamp(x, num(alpha), num(beta))


@op("threshold")
def threshold(x: torch.Tensor, alpha) -> torch.Tensor:
    return torch.clamp(x, min=num(alpha))


@op("cast")
def cast(x: torch.Tensor, dtype: str) -> torch.Tensor:
    # Float -> int truncates toward zero (numpy astype, MIL's reference); the executor then checks the
    # result against the dtype the program declares.
    target = STORAGE[str(dtype)]
    if x.dtype.is_floating_point and not target.is_floating_point and target != torch.bool:
        x = torch.trunc(x)
    return x.to(target)


@op("select")
def select(cond: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return torch.where(cond.bool(), a, b)
