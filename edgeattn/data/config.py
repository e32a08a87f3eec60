"""`DataConfig`: how images are read — loader workers, a fixed class map, bad-file policy.

One config for every command that reads a data set (eval, validate, quantize, train), so `--workers`,
`--classes` and `--skip-bad-images` mean the same everywhere. It changes how images are read, never
which pixels a model sees.
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import Field

from edgeattn.config import StageConfig


def default_workers() -> int:
    """The cores this process may use (the affinity mask, not the machine's total)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not Linux
        return max(1, os.cpu_count() or 1)


class DataConfig(StageConfig):
    workers: int | None = Field(
        default=None,
        ge=0,
        description="Image-decoding worker processes (default: the cores; 0 decodes in this process).",
    )
    classes: Path | None = Field(
        default=None,
        description="Class names, one a line, in label order, or imagenet-1k (default: the class folders of train/, sorted).",
    )
    skip_bad_images: bool = Field(
        default=False,
        description="Skip images that cannot be decoded (and report how many) instead of stopping.",
    )

    def worker_count(self) -> int:
        return default_workers() if self.workers is None else int(self.workers)
