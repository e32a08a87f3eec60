"""The MIL ops the reference executor implements, one registry entry per op type.

Each op is a plain function of the op's named inputs. Float tensors arrive in float32 (the executor
widens fp16 inputs), so an op computes in fp32 and the executor rounds each output to the dtype the
program declares for it — that is how an FP16 program is emulated: rounded after every op, as
written. Tensors arrive as torch tensors, strings as `str`, tuple inputs (concat's `values`) as lists.
An op returns one tensor, or a tuple for ops with several outputs (split).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from edgeattn.registry import Registry

OpFn = Callable[..., Any]


@dataclass(frozen=True)
class OpDef:
    fn: OpFn
    tuple_inputs: frozenset[str] = field(default_factory=frozenset)  # inputs that are always lists
    const: bool = False  # a constexpr op: evaluated once, when the program loads

    @cached_property
    def inputs(self) -> frozenset[str]:
        """The input names the implementation accepts (an op using any other is refused at load)."""
        return frozenset(inspect.signature(self.fn).parameters)


OPS: Registry[OpDef] = Registry("Core ML op")


def op(*names: str, tuple_inputs: tuple[str, ...] = (), const: bool = False) -> Callable[[OpFn], OpFn]:
    """Register `fn` as the implementation of the MIL op types `names`."""

    def add(fn: OpFn) -> OpFn:
        for name in names:
            OPS.register(name, OpDef(fn, frozenset(tuple_inputs), const))
        return fn

    return add


def implemented_ops() -> list[str]:
    """Every MIL op type the reference executor runs (plus `const`, which it loads)."""
    _load_all()
    return sorted([*OPS.names(), "const"])


_LOADED = False


def _load_all() -> None:
    global _LOADED
    if not _LOADED:
        _LOADED = True
        from edgeattn.runtime.coreml_ref.ops import (  # noqa: F401  (each module registers its ops)
            activation,
            compression,
            conv_pool,
            elementwise,
            linear,
            normalization,
            reduction,
            resize,
            tensor,
        )
