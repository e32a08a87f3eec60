"""The TensorRT versions edgeattn builds for (8.6 as on JetPack 6.0, 10.x, 11.x) and what differs between them.

Everything that changes with the version lives in one `TensorRTVersionPolicy` per major version in
`TENSORRT_VERSIONS`: the network-creation and builder flags, whether the network is strongly typed
(8.6: not available; 10.x: opt-in, used for INT8 Q/DQ; 11.x: always, `BuilderFlag.FP16`/`INT8` are gone),
where FP16 comes from (the builder flag, or an FP16 ONNX when the network is strongly typed) and the
`trtexec` flags of the printed command. The facts behind it (trtexec's options, the Python enums, the
ONNX parser's operators and opsets per version) are small data files in `tensorrt_support/`, copied
from NVIDIA's sources with their origin in the first line; the tests check every policy against them.

A `TensorRTTarget` is one concrete version: the one installed here, the one the user names with
`--tensorrt-version` (to lint and print commands for a device without TensorRT here), or else the
newest supported.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from edgeattn.errors import InputError
from edgeattn.registry import Registry

SUPPORT_DIR = Path(__file__).with_name("tensorrt_support")
StrongTyping = Literal["unavailable", "optional", "always"]


def parse_version(text: str) -> tuple[int, ...]:
    """'10.3.0.26' -> (10, 3, 0, 26); anything else is an InputError."""
    parts = str(text).strip().split(".")
    if not parts or not all(p.isdigit() for p in parts):
        raise InputError(
            f"--tensorrt-version {text!r} is not a version number", "write it like 8.6, 10.3 or 11"
        )
    return tuple(int(p) for p in parts)


# ------------------------------------------------------------------------------------------- facts
@dataclass(frozen=True)
class TensorRTFacts:
    """The documented facts of one TensorRT release (see tensorrt_support/README.md)."""

    version: str
    trtexec_options: frozenset[str]  # option names, e.g. "--fp16", "--memPoolSize"
    api_members: frozenset[str]  # e.g. "BuilderFlag.FP16"
    onnx_ops: dict[str, bool]  # operator -> supported by the ONNX parser
    opset_min: int
    opset_max: int
    sources: tuple[str, ...] = field(default=())  # the header line of each file

    def supports_op(self, op_type: str) -> bool:
        return bool(self.onnx_ops.get(op_type, False))


def _read(name: str) -> tuple[str, list[str]]:
    lines = (SUPPORT_DIR / name).read_text(encoding="utf-8").splitlines()
    return lines[0], [ln.strip() for ln in lines[1:] if ln.strip() and not ln.startswith("#")]


@functools.cache
def fact_versions() -> tuple[str, ...]:
    """Versions with their own fact files, oldest first."""
    found = {p.stem.removeprefix("trtexec-") for p in SUPPORT_DIR.glob("trtexec-*.txt")}
    return tuple(sorted(found, key=parse_version))


@functools.cache
def load_facts(version: str) -> TensorRTFacts:
    """The facts of a version that has its own files (one of `fact_versions()`)."""
    trtexec_head, trtexec = _read(f"trtexec-{version}.txt")
    api_head, api = _read(f"python-api-{version}.txt")
    ops_head, ops = _read(f"onnx-ops-{version}.txt")
    opset_line = next(
        ln
        for ln in (SUPPORT_DIR / f"onnx-ops-{version}.txt").read_text().splitlines()
        if ln.startswith("# header:")
    )
    numbers = [int(n) for n in re.findall(r"[Oo]pset (\d+)", opset_line)]
    opset_min, opset_max = (numbers[0], numbers[1]) if len(numbers) >= 2 else (1, numbers[0])
    return TensorRTFacts(
        version=version,
        trtexec_options=frozenset(opt.split("=")[0] for opt in trtexec),
        api_members=frozenset(api),
        onnx_ops={name: flag == "Y" for name, flag in (ln.split() for ln in ops)},
        opset_min=opset_min,
        opset_max=opset_max,
        sources=(trtexec_head, api_head, ops_head),
    )


def facts_for(version: str) -> TensorRTFacts:
    """The facts that hold for `version`: the newest fact files of its major version that are not
    newer than it (10.3 -> 10.0); a bare major version gets the oldest of its files (conservative)."""
    wanted = parse_version(version)
    same_major = [v for v in fact_versions() if parse_version(v)[0] == wanted[0]]
    if not same_major:
        raise InputError(f"no TensorRT {wanted[0]}.x facts are kept", "see tensorrt_support/README.md")
    older = [v for v in same_major if parse_version(v) <= wanted] if len(wanted) > 1 else []
    return load_facts(older[-1] if older else same_major[0])


@functools.cache
def _precision_table() -> list[tuple[tuple[int, int], bool, bool]]:
    _, rows = _read("precision-by-compute-capability.txt")
    table = []
    for row in rows:
        cc, fp16, int8 = row.split()
        major, minor = (int(p) for p in cc.split("."))
        table.append(((major, minor), fp16 == "yes", int8 == "yes"))
    return table


def gpu_runs(precision: str, compute_capability: tuple[int, int]) -> bool:
    """Whether a GPU of this compute capability runs `precision` in TensorRT (fp32: always)."""
    if precision not in ("fp16", "int8"):
        return True
    table = _precision_table()
    for cc, fp16, int8 in table:
        if cc == tuple(compute_capability):
            return fp16 if precision == "fp16" else int8
    return tuple(compute_capability) > table[-1][0]


# ------------------------------------------------------------------------------------------ policy
@dataclass(frozen=True)
class TensorRTVersionPolicy:
    """What one TensorRT major version needs; every method returns names (enum members, flags), so the
    same answers drive the Python build, the printed trtexec command and the tests."""

    major: int
    label: str  # how users name it: "8.6", "10.x", "11.x"
    min_minor: int  # the oldest supported release of this major version
    strong_typing: StrongTyping
    explicit_batch_flag: bool  # 8.x: NetworkDefinitionCreationFlag.EXPLICIT_BATCH must be set
    qdq_types: tuple[str, ...]  # ONNX element types its parser takes in QuantizeLinear/DequantizeLinear
    note: str = ""

    def strongly_typed(self, precision: str, requested: bool | None = None) -> bool:
        """Whether the network is built strongly typed (`requested`: the user's strongly_typed option)."""
        if self.strong_typing == "unavailable":
            if requested:
                raise InputError(
                    f"TensorRT {self.label} has no strongly typed networks (they came with 10.0)",
                    "drop strongly_typed, or build with TensorRT 10 or newer",
                )
            return False
        if self.strong_typing == "always":
            if requested is False:
                raise InputError(
                    f"TensorRT {self.label} builds every network strongly typed (weak typing was removed in 11.0)",
                    "drop strongly_typed: false",
                )
            return True
        return bool(requested) if requested is not None else precision == "int8"

    def onnx_precision(self, precision: str, strongly_typed: bool, fp16_io: bool = False) -> str:
        """The precision of the ONNX the engine is built from. A strongly typed network takes its types
        from the ONNX, so an FP16 engine needs an FP16 ONNX; FP16 I/O also needs FP16 graph inputs."""
        if precision == "fp16" and (strongly_typed or fp16_io):
            return "fp16"
        return precision if precision == "int8" else "fp32"

    def network_flags(self, strongly_typed: bool) -> tuple[str, ...]:
        """`NetworkDefinitionCreationFlag` members to set."""
        flags = ("EXPLICIT_BATCH",) if self.explicit_batch_flag else ()
        return (*flags, "STRONGLY_TYPED") if strongly_typed else flags

    def builder_flags(self, precision: str, strongly_typed: bool) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """(`BuilderFlag` members to set, members to clear). FP32 clears TF32 (on by default on Ampere and
        newer, where it would round FP32 matmuls/convs to 10-bit mantissas); a strongly typed network sets
        no precision flags; weak typing needs FP16 for FP16 and INT8 (+ FP16 for the float layers) for Q/DQ."""
        clear = ("TF32",) if precision == "fp32" else ()
        if strongly_typed:
            return (), clear
        return {"fp32": (), "fp16": ("FP16",), "int8": ("INT8", "FP16")}[precision], clear

    def trtexec_flags(self, precision: str, strongly_typed: bool) -> list[str]:
        """The precision part of the equivalent trtexec command line."""
        flags = ["--noTF32"] if precision == "fp32" else []
        if strongly_typed:
            return flags + (["--stronglyTyped"] if self.strong_typing == "optional" else [])
        return flags + {"fp32": [], "fp16": ["--fp16"], "int8": ["--int8", "--fp16"]}[precision]


TENSORRT_VERSIONS: Registry[TensorRTVersionPolicy] = Registry("TensorRT major version")
TENSORRT_VERSIONS.register(
    "8",
    TensorRTVersionPolicy(
        8,
        "8.6",
        min_minor=6,
        strong_typing="unavailable",
        explicit_batch_flag=True,
        qdq_types=("int8",),
        note="JetPack 6.0 (system TensorRT 8.6.2): weakly typed, BuilderFlag.FP16/INT8",
    ),
)
TENSORRT_VERSIONS.register(
    "10",
    TensorRTVersionPolicy(
        10,
        "10.x",
        min_minor=0,
        strong_typing="optional",
        explicit_batch_flag=False,  # always explicit batch; the flag is deprecated and ignored
        qdq_types=("int8", "float8e4m3fn", "int4"),
        note="JetPack 6.1/6.2 ship 10.3; INT8 Q/DQ strongly typed, FP16 by BuilderFlag.FP16 (deprecated in 10.12)",
    ),
)
TENSORRT_VERSIONS.register(
    "11",
    TensorRTVersionPolicy(
        11,
        "11.x",
        min_minor=0,
        strong_typing="always",
        explicit_batch_flag=False,
        qdq_types=("int8", "float8e4m3fn", "int4"),
        note="strongly typed only: FP16 engines come from an FP16 ONNX; trtexec has no --fp16/--int8",
    ),
)


def policy_for(version: str) -> TensorRTVersionPolicy:
    parts = parse_version(version)
    supported = ", ".join(p.label for _, p in TENSORRT_VERSIONS.items())
    if str(parts[0]) not in TENSORRT_VERSIONS:
        raise InputError(f"TensorRT {version} is not supported", f"edgeattn builds for TensorRT {supported}")
    policy = TENSORRT_VERSIONS.get(str(parts[0]))
    if len(parts) > 1 and parts[1] < policy.min_minor:
        raise InputError(f"TensorRT {version} is not supported", f"edgeattn builds for TensorRT {supported}")
    return policy


@dataclass(frozen=True)
class TensorRTTarget:
    """One TensorRT version to lint for, print commands for and build with."""

    version: str
    source: str  # "installed" | "requested" | "default"
    policy: TensorRTVersionPolicy
    facts: TensorRTFacts

    @property
    def label(self) -> str:
        return self.version if self.source != "default" else f"{self.version} (newest supported)"

    def to_dict(self) -> dict[str, str]:
        return {"version": self.version, "source": self.source, "facts": self.facts.version}


def installed_tensorrt_version() -> str | None:
    """`tensorrt.__version__` of a working installation, else None (the PyPI stubs raise on import)."""
    try:
        import tensorrt as trt  # type: ignore[import-not-found]

        return str(trt.__version__)
    except Exception:  # noqa: BLE001  ImportError, OSError (missing .so), RuntimeError (stub wheel)
        return None


def tensorrt_target(requested: str | None = None) -> TensorRTTarget:
    """The version named by the user, else the installed one, else the newest supported."""
    if requested:
        version, source = str(requested).strip(), "requested"
    else:
        installed = installed_tensorrt_version()
        version, source = (installed, "installed") if installed else (fact_versions()[-1], "default")
    return TensorRTTarget(version, source, policy_for(version), facts_for(version))
