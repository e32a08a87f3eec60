"""Timing several variants in interleaved rounds, in one process, for trustworthy ratios: the standing
benchmark's artifacts (`edgeattn.bench.interleave`) and the measured placement's candidate graphs
(`edgeattn.quantize.timing`) are timed by this one function.

Timed one after another, two artifacts see different machine load (another process starts, the CPU
clocks change), and their ratio carries that drift. Here every round runs every variant for its `k`
timed iterations, in an order shuffled per round (seeded, and recorded), so each ratio can be taken
per round between measurements made seconds apart; stats.py turns the rounds into an interval. `k`
per variant is fixed after the warm-up so that one variant's turn lasts about `turn_seconds`. Between
turns the process sleeps briefly (`settle_s`, untimed) so the previous runtime's spinning worker
threads (onnxruntime's pool, torch's OpenMP) park before the next one starts.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np


def wallclock_timer(fn: Callable[[], Any]) -> float:
    """Milliseconds of one call on the monotonic clock (CPU runtimes return when the work is done)."""
    start = time.perf_counter_ns()
    fn()
    return (time.perf_counter_ns() - start) / 1e6


@dataclass
class InterleavedResult:
    rounds: int
    iterations: dict[str, int]  # timed runs per round, per variant
    orders: list[list[str]]  # the order the variants ran in, per round
    round_median_ms: dict[str, list[float]]  # per variant: its median latency in each round
    samples_ms: dict[str, list[float]] = field(default_factory=dict)  # every timed run, in order
    first_run_ms: dict[str, float] = field(default_factory=dict)  # each variant's first (warm-up) run

    def median_ms(self, name: str) -> float:
        return float(np.median(self.samples_ms[name]))

    def p90_ms(self, name: str) -> float:
        return float(np.percentile(self.samples_ms[name], 90))

    def to_dict(self) -> dict[str, Any]:
        return {
            "rounds": self.rounds, "iterations": self.iterations, "orders": self.orders,
            "round_median_ms": self.round_median_ms, "first_run_ms": self.first_run_ms,
            "median_ms": {k: self.median_ms(k) for k in self.samples_ms},
            "p90_ms": {k: self.p90_ms(k) for k in self.samples_ms},
        }  # fmt: skip


def time_interleaved(
    runs: Mapping[str, Callable[[], Any]],
    *,
    rounds: int = 20,
    turn_seconds: float = 0.3,
    warmup: int = 3,
    max_iterations: int = 50,
    settle_s: float = 0.05,
    seed: int = 0,
    timer: Callable[[Callable[[], Any]], float] = wallclock_timer,
    progress: Callable[[int], None] | None = None,
) -> InterleavedResult:
    """Run every callable in `runs` in `rounds` shuffled rounds of k timed calls each."""
    if len(runs) < 1 or rounds < 2:
        raise ValueError("need at least one variant and two rounds")
    names = list(runs)
    iterations, first = {}, {}
    for name in names:  # warm up each, and size its turn from the warm-up's last run
        fn = runs[name]
        last = first[name] = timer(fn)
        for _ in range(max(1, warmup) - 1):
            last = timer(fn)
        iterations[name] = int(min(max_iterations, max(1, round(turn_seconds * 1000 / max(last, 1e-3)))))
    rng = random.Random(seed)
    orders: list[list[str]] = []
    per_round: dict[str, list[float]] = {n: [] for n in names}
    samples: dict[str, list[float]] = {n: [] for n in names}
    for r in range(rounds):
        order = names[:]
        rng.shuffle(order)
        orders.append(order)
        for name in order:
            time.sleep(settle_s)
            fn = runs[name]
            got = [timer(fn) for _ in range(iterations[name])]
            samples[name] += got
            per_round[name].append(float(np.median(got)))
        if progress is not None:
            progress(r + 1)
    return InterleavedResult(rounds, iterations, orders, per_round, samples, first)
