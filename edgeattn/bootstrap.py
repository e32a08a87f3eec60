"""The percentile bootstrap over timing rounds, shared by the standing benchmark's ratios and the
measured placement's decisions, so both draw their intervals the same way (seeded, reproducible)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def bootstrap_interval(
    values: np.ndarray,
    statistic: Callable[..., np.ndarray],
    *,
    level: float = 0.95,
    resamples: int = 4000,
    seed: int = 0,
) -> tuple[float, float]:
    """(low, high) of `statistic(sample, axis=1)` over `resamples` resamples of the rounds in `values`."""
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, values.size, size=(resamples, values.size))
    alpha = (1.0 - level) / 2
    low, high = np.quantile(statistic(values[idx], axis=1), [alpha, 1.0 - alpha])
    return float(low), float(high)
