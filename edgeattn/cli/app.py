"""The `edgeattn` command: assembles the command modules and maps failures to exit codes.

Exit codes: 0 ok, 1 a gate or check failed, 2 bad input or usage. Errors print as one line; the
traceback only with `--debug` (or EDGEATTN_DEBUG=1).
"""

from __future__ import annotations

import importlib
import os
import sys

import click
import typer

from edgeattn import __version__
from edgeattn.errors import EdgeAttnError

app = typer.Typer(
    name="edgeattn",
    help="Prune, quantize, export, validate and benchmark attention vision models for edge targets.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

# Each module defines `register(app)`; order is the order of `edgeattn --help`.
COMMAND_MODULES = [
    "edgeattn.cli.models_cmd",
    "edgeattn.cli.data_cmd",
    "edgeattn.cli.train_cmd",
    "edgeattn.cli.eval_cmd",
    "edgeattn.cli.import_cmd",
]

_DEBUG = {"on": os.environ.get("EDGEATTN_DEBUG") == "1"}


def _version(value: bool) -> None:
    if value:
        typer.echo(f"edgeattn {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    debug: bool = typer.Option(False, "--debug", help="Show full tracebacks on errors."),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
) -> None:
    if debug:
        _DEBUG["on"] = True


for _module in COMMAND_MODULES:
    importlib.import_module(_module).register(app)


def _fail(message: str, code: int) -> None:
    from edgeattn.progress import console

    console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    sys.exit(code)


def main(argv: list[str] | None = None) -> None:
    try:
        result = app(args=argv, standalone_mode=False, prog_name="edgeattn")
        sys.exit(result if isinstance(result, int) else 0)
    except EdgeAttnError as exc:
        if _DEBUG["on"]:
            raise
        _fail(exc.one_line(), exc.exit_code)
    except click.exceptions.Abort:
        _fail("aborted", 130)
    except click.ClickException as exc:  # usage errors: unknown option, missing argument, bad value
        if _DEBUG["on"]:
            raise
        hint = " (see --help)" if isinstance(exc, click.UsageError) else ""
        _fail(f"{exc.format_message()}{hint}", 2)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        _fail("interrupted", 130)
    except Exception as exc:  # noqa: BLE001  an unexpected failure: one line unless --debug
        if _DEBUG["on"]:
            raise
        if hasattr(exc, "format_message") and isinstance(getattr(exc, "exit_code", None), int):
            # typer's own (vendored) click usage errors: unknown option, missing argument, bad value
            _fail(f"{exc.format_message()} (see --help)", 2)
        first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else ""
        _fail(f"internal error: {type(exc).__name__}: {first} (rerun with --debug for the traceback)", 1)
