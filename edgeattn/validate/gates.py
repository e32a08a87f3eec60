"""Gates: thresholds on drift metrics that decide whether an export may ship (CI exit code 0 or 1).

Each gate is registered once (`GATES`: which metric it reads, whether the threshold is a maximum or a
minimum, its unit), so flags, recipes, reports and JUnit test cases all name gates the same way.
The defaults pass a correct INT8 export of the zoo's models and fail a broken one (perturbed weights,
wrong normalisation): measured on builtin:digits, see docs/ci.md.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from edgeattn.errors import InputError
from edgeattn.registry import Registry
from edgeattn.validate.metrics import DriftMetrics


@dataclass(frozen=True)
class GateSpec:
    metric: str  # attribute of DriftMetrics
    bound: str  # "max": measured must be <= allowed; "min": measured must be >= allowed
    unit: str
    label: str


GATES: Registry[GateSpec] = Registry("gate")
GATES.register("max_top1_drop", GateSpec("top1_drop", "max", "pp", "top-1 drop"))
GATES.register("min_agreement", GateSpec("agreement", "min", "%", "top-1 agreement"))
GATES.register("max_kl", GateSpec("kl", "max", "nats", "KL divergence"))
GATES.register("min_cosine", GateSpec("cosine", "min", "", "logit cosine similarity"))
GATES.register(
    "max_mean_abs_logit_error", GateSpec("mean_abs_logit_error", "max", "", "mean abs logit error")
)


@dataclass
class Gates:
    """Thresholds; None switches a gate off. Field names are the gate names (and recipe keys)."""

    max_top1_drop: float | None = 1.0
    # Agreement of a low-confidence model moves with tiny logit changes (argmax near-ties): 80 % is a
    # floor for gross breakage; a well-trained model deserves 97-99 (measured numbers: docs/ci.md).
    min_agreement: float | None = 80.0
    max_kl: float | None = 0.01
    min_cosine: float | None = None
    max_mean_abs_logit_error: float | None = None

    def __post_init__(self) -> None:
        for name, value in self.active().items():
            if not math.isfinite(value):
                raise InputError(f"gate {name} = {value} is not a finite number", "give a number")
        if self.min_agreement is not None and not 0 <= self.min_agreement <= 100:
            raise InputError(f"min_agreement {self.min_agreement} is outside 0..100", "give a percentage")
        if self.max_kl is not None and self.max_kl < 0:
            raise InputError(f"max_kl {self.max_kl} is negative", "give a KL bound >= 0")

    def active(self) -> dict[str, float]:
        return {
            f.name: float(getattr(self, f.name))
            for f in dataclasses.fields(self)
            if getattr(self, f.name) is not None
        }

    def to_dict(self) -> dict[str, float | None]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Gates:
        """Gates from a recipe's mapping: unknown keys are an error (a typo must not disable a gate)."""
        data = dict(data or {})
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise InputError(f"unknown gate(s) {', '.join(unknown)}", f"use: {', '.join(sorted(known))}")
        try:
            values = {k: None if v is None else float(v) for k, v in data.items()}
        except (TypeError, ValueError):
            raise InputError(
                f"gate values must be numbers, got {data}", "write e.g. max_top1_drop: 1.0"
            ) from None
        return cls(**values)

    def with_overrides(self, **values: float | None) -> Gates:
        """These gates with the given (non-None) values replaced, e.g. from command-line flags."""
        return dataclasses.replace(self, **{k: v for k, v in values.items() if v is not None})


@dataclass
class GateResult:
    name: str
    label: str
    measured: float
    allowed: float
    bound: str
    unit: str
    passed: bool

    @property
    def message(self) -> str:
        """'max_top1_drop: top-1 drop 2.30 pp > allowed 1.00 pp' — what a JUnit failure and the CLI say."""
        unit = f" {self.unit}" if self.unit else ""
        op = ("<=" if self.passed else ">") if self.bound == "max" else (">=" if self.passed else "<")
        return (
            f"{self.name}: {self.label} {_fmt(self.measured)}{unit} {op} allowed {_fmt(self.allowed)}{unit}"
        )

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "message": self.message}


def _fmt(v: float) -> str:
    return f"{v:.3g}" if abs(v) < 0.1 and v != 0 else f"{v:.2f}"


def check_gates(metrics: DriftMetrics, gates: Gates) -> list[GateResult]:
    results = []
    for name, allowed in gates.active().items():
        spec = GATES.get(name)
        measured = float(getattr(metrics, spec.metric))
        ok = measured <= allowed if spec.bound == "max" else measured >= allowed
        results.append(GateResult(name, spec.label, measured, allowed, spec.bound, spec.unit, bool(ok)))
    return results
