"""The standing benchmark's use of `edgeattn.interleave`: every artifact opened on its runner in this
process and timed in interleaved rounds."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from edgeattn.interleave import InterleavedResult, time_interleaved


def time_artifacts_interleaved(
    artifacts: Mapping[str, Any], *, threads: int, batch: int = 1, seed: int = 0, **options: Any
) -> InterleavedResult:
    """Open every artifact (name -> path) on its default runner in this process, with `threads`
    threads, and time one batch of random images through each in interleaved rounds (`options`: those
    of `time_interleaved`)."""
    import torch

    from edgeattn.bench.harness import random_images
    from edgeattn.runtime import open_runner

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    runners = {}
    try:
        runs = {}
        for name, path in artifacts.items():
            runner = runners[name] = open_runner(path, threads=threads)
            h, w = runner.input_spec.size
            x = runner.prepare(random_images(batch, h, w, seed + batch))
            runs[name] = lambda runner=runner, x=x: runner.run(x)
        return time_interleaved(runs, seed=seed, **options)
    finally:
        for runner in runners.values():
            runner.close()
        torch.set_num_threads(before)
