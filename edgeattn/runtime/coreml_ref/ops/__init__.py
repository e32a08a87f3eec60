"""The MIL ops the reference executor implements, one registry entry per op type.

Each op is a plain function of the op's named inputs. Float tensors arrive in float32 (the executor
widens fp16 inputs), so an op computes in fp32 and the executor rounds each output to the dtype the
program declares for it — that is how an FP16 program is emulated: rounded after every op, as
written. Tensors arrive as torch tensors, strings as `str`, tuple inputs (concat's `values`) as lists.
An op returns one tensor, or a tuple for ops with several outputs (split).
"""

from __future__ import annotations

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
from edgeattn.runtime.coreml_ref.ops.registry import OPS, OpDef, op

__all__ = ["OPS", "OpDef", "implemented_ops", "op"]


def implemented_ops() -> list[str]:
    """Every MIL op type the reference executor runs (plus `const`, which it loads)."""
    return sorted([*OPS.names(), "const"])
