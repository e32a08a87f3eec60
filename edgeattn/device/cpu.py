"""Which int8 arithmetic a CPU has, from its flags: what INT8 placement and formats are fast there.

The flags come from the device agent's `cpu_facts` (this machine's /proc/cpuinfo or sysctl), or from
the facts a device reported (`edgeattn device check`, `--device`): one parser, here and on devices.
x86 CPUs with VNNI / AMX and ARM CPUs with dotprod / i8mm multiply int8 and add into int32 in one
instruction; AVX2 without VNNI adds pairs of u8*s8 products in int16 first, which saturates with
full-range 8-bit weights (so onnxruntime's placement uses 7-bit weights there, see
quantize/placement.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from edgeattn.device import agent

# Kinds of int8 arithmetic, as `--cpu-int8` names them.
CPU_INT8_KINDS: dict[str, str] = {
    "vnni": "x86 int8 dot products (AVX-512 VNNI, AVX-VNNI or AMX)",
    "arm-dotprod": "ARM int8 dot products (dotprod / i8mm)",
    "avx2": "x86 AVX2 without VNNI (pairs of int8 products summed in saturating int16)",
    "none": "neither int8 dot products nor AVX2",
}
# The first flag (in this order) the CPU has decides its kind.
KIND_OF_FLAG: tuple[tuple[str, str], ...] = (
    ("amx_int8", "vnni"),
    ("avx512_vnni", "vnni"),
    ("avx_vnni", "vnni"),
    ("i8mm", "arm-dotprod"),
    ("asimddp", "arm-dotprod"),
    ("avx2", "avx2"),
)
INT8_DOT_FLAGS = agent.INT8_DOT_FLAGS


@dataclass(frozen=True)
class CpuInt8:
    kind: str  # a key of CPU_INT8_KINDS
    flags: tuple[str, ...]  # the CPU's flags that decided it (every int8 dot-product flag, or avx2)
    model: str = ""

    def evidence(self) -> str:
        """`has avx512_vnni` / `has avx2 but no int8 dot-product instructions`."""
        if self.kind in ("vnni", "arm-dotprod"):
            return f"has {', '.join(self.flags)}"
        if self.kind == "avx2":
            return "has avx2 but no VNNI/AMX int8 dot-product instructions"
        return "has neither int8 dot-product instructions nor avx2"


def int8_dot_flags(cpu: Mapping[str, Any]) -> list[str]:
    """The int8 dot-product flags in a facts block (older blocks carry only `simd_flags`)."""
    have = set(cpu.get("int8_dot_flags") or []) | set(cpu.get("simd_flags") or [])
    return [f for f in INT8_DOT_FLAGS if f in have]


def cpu_int8(cpu: Mapping[str, Any] | None = None) -> CpuInt8:
    """The int8 kind of a CPU from its facts (`agent.cpu_facts()` shape, e.g. a device's recorded
    `cpu` block); this machine's when `cpu` is None."""
    cpu = agent.cpu_facts() if cpu is None else cpu
    have = set(cpu.get("simd_flags") or []) | set(int8_dot_flags(cpu))
    model = str(cpu.get("model") or "")
    for flag, kind in KIND_OF_FLAG:
        if flag in have:
            decided = [f for f, k in KIND_OF_FLAG if k == kind and f in have]
            return CpuInt8(kind, tuple(decided), model)
    return CpuInt8("none", (), model)
