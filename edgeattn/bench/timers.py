"""How one run is timed, per runner kind: wall clock on CPU, CUDA events on the GPU.

CPU runtimes return when the work is done, so a monotonic clock around `run` is the latency. GPU work
is asynchronous: like trtexec, the TensorRT timer records CUDA events on the runner's stream around one
run (pinned host buffers, host-to-device copy, enqueue, device-to-host copy; the runner synchronises)
and reads the elapsed GPU time, so host-side Python overhead is not counted as GPU latency. A runtime
that runs out of process and times each run itself (ONNX Runtime Web in a browser page) is timed with
its own clock, so the round trip from Python to the page is not counted either.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from edgeattn.interleave import wallclock_timer  # one wall clock for every CPU timing
from edgeattn.registry import Registry

Timer = Callable[[Callable[[], Any]], float]  # runs fn once, returns milliseconds

TimerFactory = Callable[[Any], Timer]
TIMERS: Registry[TimerFactory] = Registry("timer")


@TIMERS.register("tensorrt")
def cuda_event_timer(runner: Any) -> Timer:
    """CUDA events on the TensorRT runner's stream (`runner.cudart`, `runner.stream`: see trt_runner.py; CUDA helpers in runtime/cuda.py)."""
    from edgeattn.runtime.cuda import cuda_call

    cudart, stream = runner.cudart, runner.stream
    start, end = cuda_call(cudart.cudaEventCreate()), cuda_call(cudart.cudaEventCreate())

    def timer(fn: Callable[[], Any]) -> float:
        cuda_call(cudart.cudaEventRecord(start, stream))
        fn()
        cuda_call(cudart.cudaEventRecord(end, stream))
        cuda_call(cudart.cudaEventSynchronize(end))
        return float(cuda_call(cudart.cudaEventElapsedTime(start, end)))

    return timer


def runtime_clock_timer(runner: Any) -> Timer:
    """The latency the runtime measured itself for each run (`runner.run_ms`, see `Runner.run_clock`):
    a browser page's performance.now() around session.run, without the host<->page round trip."""

    def timer(fn: Callable[[], Any]) -> float:
        runner.run_ms = None
        fn()
        if runner.run_ms is None:
            raise RuntimeError(f"the {runner.kind} runner reported no latency for a run")
        return float(runner.run_ms)

    return timer


def timer_for(runner: Any) -> tuple[str, Timer]:
    """(name, timer) for `runner`: its kind's device timer where one is registered, the runtime's own
    clock where it times runs itself, else wall clock."""
    if runner.kind in TIMERS:
        return f"{runner.kind} device timer (CUDA events)", TIMERS.get(runner.kind)(runner)
    if getattr(runner, "run_clock", ""):
        return str(runner.run_clock), runtime_clock_timer(runner)
    return "wall clock (perf_counter)", wallclock_timer
