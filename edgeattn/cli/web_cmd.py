"""`edgeattn web setup|check|serve`: the onnxruntime-web files, the browser, and a local server for sites."""

from __future__ import annotations

import time
from pathlib import Path

import typer

from edgeattn.cli.common import out, print_table

web_app = typer.Typer(
    help="ONNX Runtime Web: fetch its files, check the browser, serve a web export.", no_args_is_help=True
)


def register(app: typer.Typer) -> None:
    app.add_typer(web_app, name="web")


@web_app.command("setup")
def setup_command(
    from_tarball: Path = typer.Option(
        None,
        "--from-tarball",
        help="Use this onnxruntime-web .tgz (e.g. from `npm pack`) instead of npm.",
        dir_okay=False,
    ),
    dest: Path = typer.Option(None, "--dir", help="Install here instead of the user cache.", file_okay=False),
    force: bool = typer.Option(False, "--force", help="Fetch again even if verified files are present."),
) -> None:
    """Fetch the pinned onnxruntime-web from the npm registry (npm pack), verify it, cache its files.

    The one step that uses the network: `edgeattn export --target web` and the ort-web runner only read
    the cached files (or --ort-web-dir / EDGEATTN_ORT_WEB_DIR), each checked against its pinned sha256.

    Example: edgeattn web setup
    """
    from rich.markup import escape

    from edgeattn.web import ortfiles

    folder, how = ortfiles.setup(from_tarball, dest, force=force)
    rows = [
        [name, f"{(folder / name).stat().st_size / 1e6:.1f} MB", digest[:16] + "…"]
        for name, digest in ortfiles.FILES.items()
    ]
    print_table(
        escape(f"{ortfiles.PACKAGE} {ortfiles.VERSION} in {folder} ({how})"), ["file", "size", "sha256"], rows
    )


@web_app.command("check")
def check_command(
    browser: str = typer.Option(
        None, "--browser", help="Chromium/Chrome binary (default: $EDGEATTN_BROWSER, then PATH)."
    ),
) -> None:
    """Say whether web exports can be made and run here: the browser, the onnxruntime-web files, npm.

    Exit 0 when both the browser and the files are ready, 2 otherwise (with how to install them).

    Example: edgeattn web check
    """
    import shutil

    from rich.markup import escape

    from edgeattn.errors import UnavailableError
    from edgeattn.web import ortfiles
    from edgeattn.web.browser import browser_version, find_browser

    rows, missing = [], []
    try:
        binary = find_browser(browser)
        rows.append(["browser", f"{browser_version(binary)} ({binary})"])
    except UnavailableError as exc:
        rows.append(["browser", "missing"])
        missing.append(exc)
    for backends in (("wasm",), ("webgpu",)):
        try:
            rows.append(
                [
                    f"onnxruntime-web ({backends[0]})",
                    f"{ortfiles.VERSION}, verified, in {ortfiles.ort_web_dir(None, backends)}",
                ]
            )
        except UnavailableError as exc:
            rows.append([f"onnxruntime-web ({backends[0]})", "missing"])
            if backends == ("wasm",):
                missing.append(exc)
    rows.append(["npm (for setup)", shutil.which("npm") or "missing"])
    print_table("web target", ["part", "state"], [[escape(a), escape(b)] for a, b in rows])
    if missing:
        raise missing[0]


@web_app.command("serve")
def serve_command(
    site: Path = typer.Argument(
        ..., help="A folder written by `edgeattn export --target web`.", file_okay=False
    ),
    port: int = typer.Option(8000, "--port", help="Port on 127.0.0.1 (0: any free port)."),
    isolate: bool = typer.Option(
        True,
        "--isolate/--no-isolate",
        help="Send COOP/COEP (multi-threaded WASM); --no-isolate to see a plain host.",
    ),
    seconds: float = typer.Option(None, "--seconds", help="Stop after this many seconds (default: Ctrl-C)."),
) -> None:
    """Serve a web export on 127.0.0.1 with the headers a production host should send.

    Example: edgeattn web serve site/   # then open the printed URL
    """
    from edgeattn.errors import InputError
    from edgeattn.web.server import LocalServer
    from edgeattn.web.site import read_site

    read_site(site)
    try:
        server = LocalServer(root=site, port=port, isolate=isolate)
    except OSError as exc:
        raise InputError(
            f"cannot listen on 127.0.0.1:{port} ({exc.strerror})", "choose another --port"
        ) from None
    with server:
        out.print(f"serving {site} at {server.url('index.html')} (Ctrl-C stops)", soft_wrap=True)
        deadline = time.monotonic() + seconds if seconds else None
        try:
            while deadline is None or time.monotonic() < deadline:
                time.sleep(0.2)
        except KeyboardInterrupt:
            pass
