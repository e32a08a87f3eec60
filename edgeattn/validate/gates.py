"""Gates: thresholds on drift metrics that decide whether an export may ship (CI exit code 0 or 1).

Each gate is registered once (`GATES`: which metric it reads, whether the threshold is a maximum or a
minimum, its unit), so flags, recipes, reports and JUnit test cases all name gates the same way.
The defaults pass a correct INT8 export of the zoo's models and fail a broken one (perturbed weights,
wrong normalisation): measured on builtin:digits, see docs/ci.md.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from pydantic import Field

from edgeattn.config import StageConfig
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


class Gates(StageConfig):
    """Pass/fail thresholds against the FP32 reference (the gates of `edgeattn validate`; the same
    names in recipes). null switches a gate off."""

    max_top1_drop: float | None = Field(
        1.0, ge=0, le=100, allow_inf_nan=False, description="Top-1 points the artifact may lose."
    )
    # Agreement of a low-confidence model moves with tiny logit changes (argmax near-ties): 80 % is a
    # floor for gross breakage; a well-trained model deserves 97-99 (measured numbers: docs/ci.md).
    min_agreement: float | None = Field(
        80.0, ge=0, le=100, allow_inf_nan=False, description="% of images with the same top-1 class."
    )
    max_kl: float | None = Field(
        0.01,
        ge=0,
        allow_inf_nan=False,
        description="Mean KL(reference || artifact) of the softmax, nats.",
    )
    min_cosine: float | None = Field(
        None, ge=-1, le=1, allow_inf_nan=False, description="Mean per-image cosine similarity of the logits."
    )
    max_mean_abs_logit_error: float | None = Field(
        None, ge=0, allow_inf_nan=False, description="Mean absolute logit error."
    )

    def active(self) -> dict[str, float]:
        return {name: float(v) for name, v in self.model_dump().items() if v is not None}

    def to_dict(self) -> dict[str, float | None]:
        return self.model_dump()

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Gates:
        """Gates from a recipe's mapping: unknown keys are an error (a typo must not disable a gate)."""
        data = dict(data or {})
        unknown = sorted(set(data) - set(cls.model_fields))
        if unknown:
            raise InputError(
                f"unknown gate(s) {', '.join(unknown)}", f"use: {', '.join(sorted(cls.model_fields))}"
            )
        return cls.build(**data)

    def with_overrides(self, **values: float | None) -> Gates:
        """These gates with the given (non-None) values replaced, e.g. from command-line flags."""
        return Gates.build(self, **{k: v for k, v in values.items() if v is not None})


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
