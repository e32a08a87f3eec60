"""Interleaved timing of ONNX variants, for the measured placement (`--placement measured`).

Variants are timed in rounds in one process: each round runs every variant once (in a rotating order),
so a load spike on a shared machine hits all of them alike, and ratios are taken per round (paired)
with a bootstrap 95 % interval over rounds. Where the models run is a `PlacementTimer` in
`PLACEMENT_TIMERS` (`local`: onnxruntime CPU in this process); a device runner can register another
timer with the same `time` method and the placement code does not change.
"""

from __future__ import annotations

import time
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
        from edgeattn.onnx.ort import session

        sessions = [session(m, self.threads) for m in models]
        feeds = [_feed(s) for s in sessions]
        for s, f in zip(sessions, feeds, strict=True):
            for _ in range(self.warmup):
                s.run(None, f)
        times: list[list[float]] = [[] for _ in models]
        start = time.perf_counter()
        for r in range(max_rounds):
            order = list(range(len(models)))
            order = order[r % len(order) :] + order[: r % len(order)]
            for i in order:
                t0 = time.perf_counter()
                sessions[i].run(None, feeds[i])
                times[i].append((time.perf_counter() - t0) * 1e3)
            if on_round is not None:
                on_round(r + 1)
            if r + 1 >= min_rounds and time.perf_counter() - start >= seconds:
                break
        return times


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
