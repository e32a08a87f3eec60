"""Rich progress bars for long work, silenced when output is not a terminal or in quiet mode."""

from __future__ import annotations

import os
import sys

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

console = Console(stderr=True)


def progress_enabled() -> bool:
    return os.environ.get("EDGEATTN_QUIET", "") == "" and (
        sys.stderr.isatty() or os.environ.get("EDGEATTN_PROGRESS") == "1"
    )


def make_progress() -> Progress:
    """A progress display; it renders nothing when progress is disabled (tests, CI logs)."""
    return Progress(
        TextColumn("[bold blue]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[status]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        disable=not progress_enabled(),
        transient=False,
    )
