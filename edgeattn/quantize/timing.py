"""Interleaved timing of ONNX variants, for the measured placement (`--placement measured`).

Variants are timed in rounds in one process (`edgeattn.interleave.time_interleaved`, the standing
benchmark's timer): each round runs every variant for a short turn (in a shuffled order), so a load
spike on a shared machine hits all of them alike, and ratios are taken per round (paired)
with a bootstrap 95 % interval over rounds. Where the models run is a `PlacementTimer` in
`PLACEMENT_TIMERS`, made from the opened `--device` (or None): `local` is onnxruntime CPU in this
process; `device` ships the candidate graphs to the device (by content hash) and has its agent time
them there with the same sessions and the same interleaved rounds. The placement code does not change.
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import onnx

from edgeattn.bootstrap import bootstrap_interval
from edgeattn.errors import InputError
from edgeattn.registry import Registry

if TYPE_CHECKING:
    from edgeattn.device.device import Device
    from edgeattn.device.session import AgentSession


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
class OrtTimingSettings:
    """How the onnxruntime timers run the variants, here and on a device alike."""

    threads: int = 2
    warmup: int = 2
    turn_seconds: float = 0.15  # how long each model runs per turn (k runs, k fixed after the warm-up)
    settle_s: float = 0.05  # untimed pause between turns

    def rounds_for(self, one_ms: Sequence[float], seconds: float, min_rounds: int, max_rounds: int) -> int:
        """Rounds that fit in `seconds`, from one timed run of each variant (at least 2)."""
        per_round_s = sum(max(self.turn_seconds, ms / 1e3) + self.settle_s for ms in one_ms)
        return max(2, int(min(max_rounds, max(min_rounds, seconds // max(per_round_s, 1e-3)))))


@dataclass
class LocalOrtTimer(OrtTimingSettings):
    """onnxruntime CPU sessions in this process (all graph optimizations, as deployed)."""

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
        result = time_interleaved(
            runs,
            rounds=self.rounds_for(one_ms, seconds, min_rounds, max_rounds),
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

    def report_fields(self) -> dict[str, Any]:
        """`speedup` and `interval` as the placement report records them (3 decimals)."""
        return {"speedup": round(self.median, 3), "interval": [round(self.low, 3), round(self.high, 3)]}

    @property
    def above_one(self) -> bool:
        """The interval excludes 1.0 on the side of `fast` being faster."""
        return self.low > 1.0


def paired_ratio(numer: Sequence[float], denom: Sequence[float], resamples: int = 2000) -> Ratio:
    """Median of numer[i] / denom[i] over rounds, with a percentile-bootstrap 95 % interval."""
    r = np.asarray(numer, dtype=np.float64) / np.asarray(denom, dtype=np.float64)
    lo, hi = bootstrap_interval(r, np.median, resamples=resamples)
    return Ratio(float(np.median(r)), lo, hi)


@dataclass
class DevicePlacementTimer(OrtTimingSettings):
    """onnxruntime CPU sessions on a device, timed by its agent (`agent.py::time_placement`, which
    re-states `time_interleaved` because nothing of edgeattn is importable there). Each candidate is
    written to a temporary folder here, shipped once by its sha256 (`Device.ship`) and removed from
    the device by `close` (candidates are throwaway; the device's artifact cache keeps real exports).
    One agent process serves every call, so its start is paid once."""

    device: Device | None = None
    name: str = "device"
    _session: AgentSession | None = field(default=None, init=False, repr=False)
    _shipped: dict[str, str] = field(default_factory=dict, init=False, repr=False)

    def describe(self) -> str:
        assert self.device is not None
        ort = self.device.facts().get("runtimes", {}).get("onnxruntime", {})
        return f"onnxruntime {ort.get('version', '?')} CPU on device {self.device.name}, {self.threads} threads, batch 1"

    def time(
        self,
        models: Sequence[onnx.ModelProto],
        seconds: float,
        min_rounds: int = 5,
        max_rounds: int = 40,
        on_round: Callable[[int], None] | None = None,
    ) -> list[list[float]]:
        """Per-round median milliseconds of each model, measured on the device (see the class)."""
        assert self.device is not None
        settings: dict[str, Any] = {
            "threads": self.threads, "warmup": self.warmup, "turn_seconds": self.turn_seconds,
            "settle_s": self.settle_s, "seconds": float(seconds), "min_rounds": int(min_rounds),
            "max_rounds": int(max_rounds), "seed": 0,
        }  # fmt: skip
        shipped = [self._ship(m) for m in models]
        if self._session is None:
            self._session = self.device.session(threads=self.threads)
        answer, _ = self._session.request(
            {"op": "time_placement", "models": shipped, "settings": settings},
            what=f"timing {len(models)} placement candidates",
        )
        if on_round is not None:
            on_round(int(answer["rounds"]))
        return [[float(v) for v in per] for per in answer["round_median_ms"]]

    def _ship(self, model: onnx.ModelProto) -> dict[str, str]:
        data = model.SerializeToString()
        digest = hashlib.sha256(data).hexdigest()
        if digest not in self._shipped:
            assert self.device is not None
            with tempfile.TemporaryDirectory(prefix="edgeattn-placement-") as tmp:
                path = Path(tmp) / f"placement-candidate-{digest[:12]}.onnx"
                path.write_bytes(data)
                self._shipped[digest] = self.device.ship(path, digest)
        return {"path": self._shipped[digest], "sha256": digest}

    def close(self) -> None:
        """Stop the agent process and remove the shipped candidates from the device."""
        session, self._session = self._session, None
        if session is not None:
            session.close()
        if self._shipped and self.device is not None:
            from edgeattn.device.transport import q

            remotes = list(self._shipped.values())
            self._shipped.clear()
            folders = " ".join(q(r.rsplit("/", 1)[0]) for r in remotes)
            script = f"rm -f {' '.join(q(r) for r in remotes)}; rmdir {folders} 2>/dev/null; true"
            self.device.transport.run(script, timeout=120, what="removing the placement candidates")


def local_timer(device: Device | None) -> PlacementTimer:
    """`local`: this process (whatever `--device` says; the default with no device)."""
    return LocalOrtTimer()


def device_timer(device: Device | None) -> PlacementTimer:
    """`device`: the agent of `--device` (the default when one is given)."""
    if device is None or device.in_process:
        raise InputError(
            "--placement-timer device times on a device, but no --device was given",
            "add --device URL (e.g. ssh://pi@raspberrypi.local), or use --placement-timer local",
        )
    return DevicePlacementTimer(device=device)


def timer_name(choice: str, on_device: bool) -> str:
    """`auto` -> `device` when a device (other than this process) is given, else `local`."""
    if choice != "auto":
        return choice
    return "device" if on_device else "local"


# A timer factory takes the opened `--device` (None without one) and returns the timer.
PLACEMENT_TIMERS: Registry[Callable[[Device | None], PlacementTimer]] = Registry("placement timer")
PLACEMENT_TIMERS.register("local", local_timer)
PLACEMENT_TIMERS.register("device", device_timer)
