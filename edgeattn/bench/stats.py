"""Speed ratios with their spread: a bootstrap interval over interleaved rounds, and the verdict it allows.

Each round of an interleaved run (interleave.py) times every variant once, close together in time, so
the two variants of a ratio saw the same machine load. The ratio of one round is the reference's
median latency over the variant's (above 1: the variant is faster); over R rounds the point estimate is
the geometric mean of the per-round ratios and the 95 % interval is the percentile bootstrap of that
mean over rounds (rounds resampled with replacement, seeded). A ratio is called "faster" or "slower"
only when its interval excludes 1.0, else "no measurable difference".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from edgeattn.bootstrap import bootstrap_interval

FASTER, SLOWER, SAME = "faster", "slower", "no measurable difference"


@dataclass(frozen=True)
class RatioInterval:
    point: float  # geometric mean over rounds of reference_ms / variant_ms (above 1 = variant faster)
    low: float
    high: float
    rounds: int
    level: float = 0.95

    @property
    def verdict(self) -> str:
        return FASTER if self.low > 1.0 else SLOWER if self.high < 1.0 else SAME

    def text(self) -> str:
        """`1.23× (1.18–1.29)`."""
        return f"{self.point:.2f}× ({self.low:.2f}–{self.high:.2f})"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "verdict": self.verdict}


def speed_ratio_interval(
    reference_ms: Sequence[float],
    variant_ms: Sequence[float],
    *,
    level: float = 0.95,
    resamples: int = 4000,
    seed: int = 0,
) -> RatioInterval:
    """Paired per-round speed ratio reference/variant with a percentile-bootstrap interval over rounds."""
    ref = np.asarray(reference_ms, dtype=np.float64)
    var = np.asarray(variant_ms, dtype=np.float64)
    if ref.shape != var.shape or ref.ndim != 1 or ref.size < 2:
        raise ValueError("need the same number (≥ 2) of rounds for both variants")
    if (ref <= 0).any() or (var <= 0).any():
        raise ValueError("latencies must be positive")
    logs = np.log(ref) - np.log(var)
    low, high = bootstrap_interval(logs, np.mean, level=level, resamples=resamples, seed=seed)
    return RatioInterval(
        point=float(np.exp(logs.mean())), low=float(np.exp(low)), high=float(np.exp(high)),
        rounds=int(logs.size), level=level,
    )  # fmt: skip
