"""Interleaved timing of ONNX variants, for the measured placement (`--placement measured`).

Variants are timed in rounds in one process (`edgeattn.interleave.time_interleaved`, the standing
benchmark's timer): each round runs every variant for a short turn (in a shuffled order), so a load
spike on a shared machine hits all of them alike, and ratios are taken per round (paired)
with a bootstrap 95 % interval over rounds. Where the models run is a `PlacementTimer` in
`PLACEMENT_TIMERS` (`local`: onnxruntime CPU in this process); a device runner can register another
timer with the same `time` method and the placement code does not change.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import onnx

from edgeattn.bootstrap import bootstrap_interval
from edgeattn.registry import Registry


class PlacementTimer(Protocol):
    name: str

    def describe(self) -> str:
        """Where and how the variants are timed, for the report."""
        ...

    def time(
        self,
        models: Sequence[onnx.ModelProto],
        seconds: float,
        min_rounds: int = 5,
        max_rounds: int = 40,
        on_round: Callable[[int], None] | None = None,
    ) -> list[list[float]]:
        """Milliseconds per round for each model (`result[model][round]`), all models interleaved."""
        ...


@dataclass
class LocalOrtTimer:
    """onnxruntime CPU sessions in this process (all graph optimizations, as deployed)."""

    threads: int = 2
    warmup: int = 2
    turn_seconds: float = 0.15  # how long each model runs per turn (k runs, k fixed after the warm-up)
    settle_s: float = 0.05  # untimed pause between turns
    name: str = "local"

    def describe(self) -> str:
        import onnxruntime

        return f"onnxruntime {onnxruntime.__version__} CPU here, {self.threads} threads, batch 1"

    def time(
        self,
        models: Sequence[onnx.ModelProto],
        seconds: float,
        min_rounds: int = 5,
        max_rounds: int = 40,
        on_round: Callable[[int], None] | None = None,
    ) -> list[list[float]]:
        """Per-round median milliseconds of each model, from `edgeattn.interleave.time_interleaved`
        (the standing benchmark's timer): each turn runs one model for about `turn_seconds`, in a
        shuffled order, with a pause between turns so the previous session's spinning worker threads
        park first. One call per turn, alternating sessions (this timer's first form) measured
        efficientformer_l1 at 224² 1.8x slower (FP32 47 vs 26 ms), because the sessions' spinning
        thread pools then compete, and the group decisions followed that noise."""
        from edgeattn.interleave import time_interleaved, wallclock_timer
        from edgeattn.onnx.ort import session

        sessions = [session(m, self.threads) for m in models]
        runs = {str(i): (lambda s=s, f=_feed(s): s.run(None, f)) for i, s in enumerate(sessions)}
        one_ms = []
        for fn in runs.values():  # one warm-up run, then one timed run to size the rounds
            fn()
            one_ms.append(wallclock_timer(fn))
        per_round_s = sum(max(self.turn_seconds, ms / 1e3) + self.settle_s for ms in one_ms)
        rounds = int(min(max_rounds, max(min_rounds, seconds // max(per_round_s, 1e-3))))
        result = time_interleaved(
            runs,
            rounds=max(2, rounds),
            turn_seconds=self.turn_seconds,
            warmup=self.warmup,
            settle_s=self.settle_s,
            progress=on_round,
        )
        return [result.round_median_ms[name] for name in runs]


def _feed(sess) -> dict[str, np.ndarray]:
    """One fixed pseudo-random input of the session's shape (dynamic dims as 1)."""
    inp = sess.get_inputs()[0]
    shape = [d if isinstance(d, int) and d > 0 else 1 for d in inp.shape]
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    return {inp.name: x.astype(np.float16) if "float16" in inp.type else x}


@dataclass(frozen=True)
class Ratio:
    """Paired speed ratio `slow / fast` per round: median and bootstrap 95 % interval over rounds."""

    median: float
    low: float
    high: float

    @property
    def above_one(self) -> bool:
        """The interval excludes 1.0 on the side of `fast` being faster."""
        return self.low > 1.0


def paired_ratio(numer: Sequence[float], denom: Sequence[float], resamples: int = 2000) -> Ratio:
    """Median of numer[i] / denom[i] over rounds, with a percentile-bootstrap 95 % interval."""
    r = np.asarray(numer, dtype=np.float64) / np.asarray(denom, dtype=np.float64)
    lo, hi = bootstrap_interval(r, np.median, resamples=resamples)
    return Ratio(float(np.median(r)), lo, hi)


PLACEMENT_TIMERS: Registry[Callable[[], PlacementTimer]] = Registry("placement timer")
PLACEMENT_TIMERS.register("local", LocalOrtTimer)
