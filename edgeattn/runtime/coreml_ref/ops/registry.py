"""The registry of MIL op implementations (`OPS`) and the `@op` decorator that fills it.

This module imports no op module; the `ops` package does, so every op is registered once the package
is imported.
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
