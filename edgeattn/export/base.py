"""The exporter interface, the request every exporter receives, and the `EXPORTERS` registry.

Each target (onnx, tensorrt, coreml) is one `Exporter` registered under the name users type after
`--target`. An exporter declares what it accepts (file suffixes, precisions, its own options) so that
`export_artifact` can reject a bad request in one line before any slow work starts, and no caller
needs an if/elif chain over target names.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgeattn.checkpoint import ModelHandle
from edgeattn.errors import InputError
from edgeattn.manifest import ArtifactManifest, Precision
from edgeattn.registry import Registry

QUANTIZED_KIND = "int8"  # ModelHandle.kind of a checkpoint written by `edgeattn quantize`


@dataclass(frozen=True)
class BatchSpec:
    """The batch sizes an artifact accepts: one fixed size, or a min/opt/max range (dynamic)."""

    min: int = 1
    opt: int = 1
    max: int = 1
    dynamic: bool = False

    @classmethod
    def static(cls, n: int) -> BatchSpec:
        if int(n) < 1:
            raise InputError(f"--batch {n} is not a batch size", "use --batch 1 or more")
        return cls(int(n), int(n), int(n), False)

    @classmethod
    def range(cls, lo: int, opt: int, hi: int) -> BatchSpec:
        if not 1 <= lo <= opt <= hi:
            raise InputError(
                f"--dynamic-batch {lo}:{opt}:{hi} is not an ordered range",
                "give MIN:OPT:MAX with 1 <= MIN <= OPT <= MAX, e.g. 1:8:32",
            )
        return cls(int(lo), int(opt), int(hi), True)

    def to_dict(self) -> dict[str, int]:
        return {"min": self.min, "opt": self.opt, "max": self.max}

    def dim(self) -> int | str:
        """The batch dimension as an ONNX/manifest shape entry."""
        return "batch" if self.dynamic else self.opt


def parse_dynamic_batch(text: str) -> tuple[int, int, int]:
    """'1:8:32' -> (1, 8, 32), with a one-line error for anything else."""
    parts = text.split(":")
    try:
        lo, opt, hi = (int(p) for p in parts)
    except ValueError:
        raise InputError(f"--dynamic-batch {text!r} is not MIN:OPT:MAX", "write it like 1:8:32") from None
    BatchSpec.range(lo, opt, hi)
    return lo, opt, hi


@dataclass
class ExportRequest:
    """Everything an exporter needs, already validated by `export_artifact`."""

    handle: ModelHandle
    target: str
    out: Path
    precision: Precision
    batch: BatchSpec
    opset: int | None  # None until `export_artifact` fills in the target's default (`default_opset`)
    data: str | None = None
    source: str = ""  # the checkpoint file, for the manifest ("" when a handle was passed in)
    options: dict[str, Any] = field(default_factory=dict)  # target options, defaults filled in
    overwrite: bool = True

    @property
    def quantized(self) -> bool:
        return self.handle.kind == QUANTIZED_KIND


@dataclass(frozen=True)
class TargetOption:
    """One target-specific option of an exporter: its key (`export_artifact(**{key: ...})`, recipe
    `options:`), default, help text and, when users set it on the command line, its flag."""

    key: str
    default: Any
    help: str
    flag: str | None = None  # e.g. "--workspace-mib"; "--fp16-io/--fp32-io" for a switch
    type: type = str  # the CLI's value type (bool for switches)


class Exporter:
    """One deployment target. Subclasses fill in the attributes and implement `export`.

    Everything other modules need to know about a target is declared here, so adding a target is
    adding one module: the recipe schema reads `precisions`, the quantize stage `placement`, the CLI
    builds its flags from `options`, and validation/bench open what it writes with `runner`.
    """

    name: str = ""
    suffixes: tuple[str, ...] = ()  # "" = a folder name without a suffix
    writes_folder: bool = False  # the artifact is a folder (replaced as a whole on --overwrite)
    precisions: tuple[Precision, ...] = ()
    default_precision: Precision = "fp32"
    options: tuple[TargetOption, ...] = ()
    runner: str = ""  # the RUNNERS kind that runs what this exporter writes
    placement: str = "onnxruntime"  # the Q/DQ placement its int8 artifacts are quantized for
    typical_precisions: tuple[Precision, ...] = ()  # what `edgeattn recipe new` exports by default
    note: str = ""  # one line on what the artifact is and where it runs

    @property
    def option_defaults(self) -> dict[str, Any]:
        """Target-specific keyword options of `export_artifact` and their defaults."""
        return {o.key: o.default for o in self.options}

    def int8_placement(self, options: dict[str, Any]) -> str:
        """The Q/DQ placement an int8 artifact made with `options` needs."""
        return self.placement

    def int8_runtime(self, req: ExportRequest) -> str:
        """The runtime an int8 artifact of `req` is placed for (its Q/DQ passes and opset follow it)."""
        return self.int8_placement(req.options)

    def default_opset(self, req: ExportRequest) -> int:
        """The ONNX opset when none is asked for: an INT8 graph's runtime's (`INT8_OPSET`), else 17; the
        dynamo exporter writes 18 at least."""
        from edgeattn.onnx.graph import DEFAULT_OPSET, int8_opset
        from edgeattn.onnx.torch_export import DYNAMO_MIN_OPSET

        opset = int8_opset(self.int8_runtime(req)) if req.precision == "int8" else DEFAULT_OPSET
        return max(opset, DYNAMO_MIN_OPSET) if req.options.get("exporter") == "dynamo" else opset

    def check(self, req: ExportRequest) -> None:
        """Reject a request this target cannot serve, before any slow work (raise InputError)."""

    def outputs(self, req: ExportRequest) -> list[Path]:
        """Every path this export writes (checked for --overwrite and writability up front)."""
        return [req.out]

    def export(self, req: ExportRequest) -> ArtifactManifest:
        raise NotImplementedError


EXPORTERS: Registry[Exporter] = Registry("export target")
