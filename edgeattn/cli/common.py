"""Small helpers shared by the command modules: output, JSON, loading inputs the same way everywhere."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from edgeattn.cli.options import with_config
from edgeattn.device.config import DeviceConfig
from edgeattn.fileio import write_json

out = Console(highlight=False)


def print_table(title: str, columns: list[str], rows: list[list[Any]]) -> None:
    table = Table(title=title, title_justify="left")
    for c in columns:
        table.add_column(c, justify="left" if c == columns[0] else "right")
    for r in rows:
        table.add_row(*[str(v) for v in r])
    out.print(table)


def emit_json(data: Any, json_out: Path | None, stdout: bool = False) -> None:
    """Write `data` to `--json FILE` (atomically); with `stdout`, print it instead of tables."""
    if json_out is not None:
        write_json(json_out, data)
    if stdout:
        typer.echo(json.dumps(data, indent=2, default=str))


JSON_OPTION = typer.Option(None, "--json", help="Also write the result as JSON to this file.", dir_okay=False)
OUT_HELP = "Where to write the result (written atomically: nothing half-written is left on failure)."

# `--device URL`, `--ssh-config FILE`, `--device-timeout S` on every command that runs artifacts: the
# command receives them as `device: DeviceConfig`.
DEVICE_FLAGS = {"url": "--device", "timeout": "--device-timeout"}
with_device = with_config(DeviceConfig, flags=DEVICE_FLAGS, param="device")
