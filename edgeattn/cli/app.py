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

try:  # typer >= 0.2x vendors its own click: its usage errors, Abort and Exit are not click's classes
    from typer._click import exceptions as _typer_click

    _CLICK_ERRORS: tuple[type[Exception], ...] = (click.ClickException, _typer_click.ClickException)
    _USAGE_ERRORS: tuple[type[Exception], ...] = (click.UsageError, _typer_click.UsageError)
except ImportError:
    _CLICK_ERRORS, _USAGE_ERRORS = (click.ClickException,), (click.UsageError,)
_ABORTS = (click.exceptions.Abort, typer.Abort)
_EXITS = (click.exceptions.Exit, typer.Exit)

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
    "edgeattn.cli.prune_cmd",
    "edgeattn.cli.quantize_cmd",
    "edgeattn.cli.validate_cmd",
    "edgeattn.cli.explain_cmd",
    "edgeattn.cli.import_cmd",
    "edgeattn.cli.export_cmd",
    "edgeattn.cli.check_cmd",
    "edgeattn.cli.web_cmd",
    "edgeattn.cli.bench_cmd",
    "edgeattn.cli.device_cmd",
    "edgeattn.cli.run_cmd",
    "edgeattn.cli.recipe_cmd",
]

_DEBUG = {"on": os.environ.get("EDGEATTN_DEBUG") == "1"}


def _version(value: bool) -> None:
    if value:
        typer.echo(f"edgeattn {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    debug: bool = typer.Option(False, "--debug", help="Show full tracebacks on errors."),
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version."
    ),
) -> None:
    if debug:
        _DEBUG["on"] = True


for _module in COMMAND_MODULES:
    importlib.import_module(_module).register(app)


def _fail(message: str, code: int) -> None:
    from rich.markup import escape

    from edgeattn.progress import console

    # escape: messages quote user text and commands such as pip install 'edgeattn[tensorrt]'
    console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    sys.exit(code)


def main(argv: list[str] | None = None) -> None:
    try:
        result = app(args=argv, standalone_mode=False, prog_name="edgeattn")
        sys.exit(result if isinstance(result, int) else 0)
    except EdgeAttnError as exc:
        if _DEBUG["on"]:
            raise
        _fail(exc.one_line(), exc.exit_code)
    except _ABORTS:
        _fail("aborted", 130)
    except _CLICK_ERRORS as exc:  # usage errors: unknown option, missing argument, bad value
        if _DEBUG["on"]:
            raise
        hint = " (see --help)" if isinstance(exc, _USAGE_ERRORS) else ""
        _fail(f"{exc.format_message()}{hint}", 2)
    except _EXITS as exc:
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
