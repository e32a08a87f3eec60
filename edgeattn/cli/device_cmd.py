"""`edgeattn device check URL`: what a device is and what it can run (exit 2 when it cannot serve)."""

from __future__ import annotations

import json

import typer

from edgeattn.cli.common import out, print_table
from edgeattn.cli.options import with_config
from edgeattn.device.config import DeviceConfig

device_app = typer.Typer(
    help="Devices that run and time artifacts (ssh://user@host, local).", no_args_is_help=True
)


def register(app: typer.Typer) -> None:
    app.add_typer(device_app, name="device")


@device_app.command("check")
@with_config(DeviceConfig, flags={"timeout": "--device-timeout"}, exclude=("url",), param="device")
def check(
    url: str = typer.Argument(..., help="local, or ssh://[user@]host[:port][?python=PATH]."),
    json_stdout: bool = typer.Option(
        False, "--json", help="Print the facts as JSON (for machines) instead of tables."
    ),
    device: DeviceConfig | None = None,
) -> None:
    """Reach a device and print what it is: CPU, cores, SIMD and int8 dot-product support, memory, OS,
    Python, and which runtimes import there (onnxruntime and its providers, TensorRT/trtexec, ...).

    Exits 2 with one line when the device cannot be reached or cannot run the agent (no Python, no numpy).

    Example: edgeattn device check ssh://pi@raspberrypi.local?python=/home/pi/venv/bin/python
    """
    from rich.markup import escape

    from edgeattn.device import open_device
    from edgeattn.device.facts import fact_rows, runtime_rows, serves

    assert device is not None
    config = DeviceConfig.build(device, flags={"url": "URL"}, url=url)
    with open_device(config) as dev:
        block = dev.block(busy=True)
        if json_stdout:
            typer.echo(json.dumps(block, indent=2, default=str))
        else:
            print_table(
                escape(f"device {dev.name}"),
                ["", "value"],
                [[escape(c) for c in r] for r in fact_rows(block)],
            )
            print_table(
                "runtimes",
                ["runtime", "version", "details"],
                [[escape(c) for c in r] for r in runtime_rows(block)],
            )
            can = serves(block)
            out.print(escape(f"runs: {', '.join(can) if can else 'nothing yet (install onnxruntime there)'}"))
        dev.require_numpy()
