"""The system's Chromium, found and started headless, driven over the DevTools pipe (`cdp.py`).

Which browser: `--browser`/`EDGEATTN_BROWSER` (a path or a command name), else the first of
`chromium-headless-shell`, `chromium`, `chromium-browser`, `chrome-headless-shell`, `google-chrome` on
PATH. None found is an `UnavailableError` saying how to install one (exit 2).

How it starts: headless, with a fresh `--user-data-dir`, and with every background service that
would try to reach the network turned off (on a closed network Chromium otherwise retries connections
to Google's hosts at every start); `--no-sandbox` only as root, where Chromium's sandbox refuses to
start. Every wait is bounded; `close()` ends the browser and removes its profile.
"""

from __future__ import annotations

import base64
import functools
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from edgeattn.errors import UnavailableError
from edgeattn.web.cdp import BrowserError, CdpPipe

BROWSER_ENV = "EDGEATTN_BROWSER"
CANDIDATES = (
    "chromium-headless-shell",
    "chromium",
    "chromium-browser",
    "chrome-headless-shell",
    "google-chrome",
)
INSTALL_HINT = (
    "install Chromium (Debian/Ubuntu: sudo apt-get install chromium-headless-shell) "
    f"or point {BROWSER_ENV} / --browser at a Chromium or Chrome binary"
)
FLAGS = (
    "--headless",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
    "--disable-domain-reliability",
    "--disable-breakpad",
    "--metrics-recording-only",
    "--mute-audio",
    "--remote-debugging-pipe",
)
# WebGPU on Linux is behind these; without a GPU, Chromium offers its software adapter (SwiftShader).
WEBGPU_FLAGS = ("--enable-unsafe-webgpu", "--enable-features=Vulkan")
START_TIMEOUT_S = 30.0


def find_browser(explicit: str | os.PathLike[str] | None = None) -> Path:
    """The browser binary to use (explicit > $EDGEATTN_BROWSER > PATH), or UnavailableError."""
    wanted = str(explicit) if explicit else os.environ.get(BROWSER_ENV, "")
    if wanted:
        found = shutil.which(wanted) or (wanted if Path(wanted).is_file() else None)
        if not found:
            source = "--browser" if explicit else BROWSER_ENV
            raise UnavailableError(f"the browser {wanted!r} ({source}) does not exist", INSTALL_HINT)
        return Path(found)
    for name in CANDIDATES:
        found = shutil.which(name)
        if found:
            return Path(found)
    raise UnavailableError("no Chromium browser was found on PATH", INSTALL_HINT)


def browser_unavailable_reason(explicit: str | None = None) -> str | None:
    """None when a browser can be started here, else why not and how to install one."""
    try:
        browser_version(find_browser(explicit))
    except UnavailableError as exc:
        return exc.one_line()
    return None


@functools.lru_cache(maxsize=8)
def browser_version(path: Path) -> str:
    """`Chromium 150.0.7871.100`, from `BINARY --version` (UnavailableError when it does not run)."""
    try:
        done = subprocess.run(
            [str(path), "--version"], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise UnavailableError(f"the browser {path} does not start ({exc})", INSTALL_HINT) from None
    text = (done.stdout or done.stderr).strip().splitlines()
    if done.returncode != 0 or not text:
        raise UnavailableError(f"the browser {path} does not start (exit {done.returncode})", INSTALL_HINT)
    return text[0].strip()


class Page:
    """One tab: navigate, evaluate JavaScript, pick files, take screenshots."""

    def __init__(self, pipe: CdpPipe, session: str) -> None:
        self.pipe = pipe
        self.session = session

    def send(
        self, method: str, params: dict[str, Any] | None = None, timeout: float = 30.0
    ) -> dict[str, Any]:
        return self.pipe.send(method, params, session=self.session, timeout=timeout)

    def navigate(self, url: str, timeout: float = 30.0) -> None:
        self.send("Page.navigate", {"url": url}, timeout=timeout)
        self.pipe.wait_event("Page.loadEventFired", self.session, timeout)

    def evaluate(self, expression: str, timeout: float = 60.0) -> Any:
        """The JSON value of `expression` (awaited when it is a promise); a thrown error is a BrowserError
        with the page's message."""
        result = self.send(
            "Runtime.evaluate",
            {"expression": expression, "awaitPromise": True, "returnByValue": True},
            timeout=timeout,
        )
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            message = details.get("exception", {}).get("description") or details.get("text", "error")
            raise BrowserError(f"the page failed: {str(message).splitlines()[0][:300]}")
        return result.get("result", {}).get("value")

    def wait_for(self, expression: str, timeout: float, poll_s: float = 0.1) -> Any:
        """Poll `expression` until it is truthy (at most `timeout` s); return its value."""
        deadline = time.monotonic() + timeout
        while True:
            value = self.evaluate(expression, timeout=max(1.0, deadline - time.monotonic()))
            if value:
                return value
            if time.monotonic() >= deadline:
                raise BrowserError(f"the page did not reach `{expression}` within {timeout:g} s")
            time.sleep(poll_s)

    def set_files(self, selector: str, files: list[Path]) -> None:
        """Choose `files` in the `<input type=file>` at `selector`, as a user picking them would."""
        doc = self.send("DOM.getDocument", {"depth": 0})
        node = self.send("DOM.querySelector", {"nodeId": doc["root"]["nodeId"], "selector": selector})
        if not node.get("nodeId"):
            raise BrowserError(f"the page has no element {selector!r}")
        self.send(
            "DOM.setFileInputFiles",
            {"nodeId": node["nodeId"], "files": [str(Path(f).resolve()) for f in files]},
        )

    def screenshot(self, path: Path, width: int = 1000, height: int = 800) -> Path:
        self.send(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
        )
        data = self.send("Page.captureScreenshot", {"format": "png"})["data"]
        Path(path).write_bytes(base64.b64decode(data))
        return Path(path)

    def console(self) -> list[str]:
        """The page's console messages and uncaught errors so far (for error reports)."""
        lines = []
        for event in list(self.pipe.events):
            if event.get("sessionId") != self.session:
                continue
            params = event.get("params", {})
            if event.get("method") == "Runtime.consoleAPICalled":
                args = " ".join(str(a.get("value", a.get("description", ""))) for a in params.get("args", []))
                lines.append(f"{params.get('type')}: {args}")
            elif event.get("method") == "Runtime.exceptionThrown":
                details = params.get("exceptionDetails", {})
                lines.append(
                    f"exception: {details.get('exception', {}).get('description') or details.get('text')}"
                )
        return lines


class Browser:
    """A headless Chromium process with its own temporary profile."""

    def __init__(self, binary: Path | None = None, *, webgpu: bool = False) -> None:
        self.binary = binary or find_browser()
        self.version = browser_version(self.binary)
        self.profile = Path(tempfile.mkdtemp(prefix="edgeattn-chromium-"))
        flags = [*FLAGS, *(WEBGPU_FLAGS if webgpu else ())]
        if webgpu:
            flags.remove("--disable-gpu")
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            flags.append("--no-sandbox")
        # The browser reads commands from its fd 3 and writes to its fd 4: hand it our pipe ends there
        # (posix_spawn's dup2 actions; a shell's `3<&N` cannot name fds above 9 in dash).
        to_browser_r, to_browser_w = os.pipe()
        from_browser_r, from_browser_w = os.pipe()
        self.log = (self.profile / "browser.log").open("wb")  # a file: an unread pipe would block it
        ends = [_fd_above(to_browser_r), _fd_above(from_browser_w)]
        actions = [
            (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
            (os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0),
            (os.POSIX_SPAWN_DUP2, self.log.fileno(), 2),
            (os.POSIX_SPAWN_DUP2, ends[0], 3),
            (os.POSIX_SPAWN_DUP2, ends[1], 4),
        ]
        argv = [str(self.binary), *flags, f"--user-data-dir={self.profile}", "about:blank"]
        try:
            self.pid = os.posix_spawn(
                str(self.binary), argv, dict(os.environ), file_actions=actions, setsid=True
            )
        except OSError as exc:
            for fd in (to_browser_w, from_browser_r):
                os.close(fd)
            self.log.close()
            shutil.rmtree(self.profile, ignore_errors=True)
            raise UnavailableError(f"cannot start the browser {self.binary} ({exc})", INSTALL_HINT) from None
        finally:
            for fd in (to_browser_r, from_browser_w, *ends):
                os.close(fd)
        self.returncode: int | None = None
        self.pipe = CdpPipe(to_browser_w, from_browser_r)
        try:
            self.product = self.pipe.send("Browser.getVersion", timeout=START_TIMEOUT_S).get("product", "")
        except BrowserError:
            err = self._stderr_tail()
            self.close()
            raise UnavailableError(
                f"the browser {self.binary} did not start ({err or 'no answer on its debugging pipe'})",
                INSTALL_HINT,
            ) from None

    def new_page(self) -> Page:
        target = self.pipe.send("Target.createTarget", {"url": "about:blank"}, timeout=START_TIMEOUT_S)
        attached = self.pipe.send(
            "Target.attachToTarget",
            {"targetId": target["targetId"], "flatten": True},
            timeout=START_TIMEOUT_S,
        )
        page = Page(self.pipe, attached["sessionId"])
        for domain in ("Page", "Runtime"):
            page.send(f"{domain}.enable")
        return page

    def poll(self) -> int | None:
        """The browser's exit status, or None while it runs."""
        if self.returncode is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while self.poll() is None:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)
        return True

    def _stderr_tail(self) -> str:
        """The browser's last error line, once it has exited."""
        if not self.wait(2):
            return ""
        text = (self.profile / "browser.log").read_text(errors="replace")
        lines = [ln for ln in text.splitlines() if "ERROR" in ln or "error" in ln] or text.splitlines()
        return lines[-1][:200] if lines else f"exit {self.returncode}"

    def close(self) -> None:
        if self.poll() is None:
            try:
                self.pipe.send("Browser.close", timeout=5)
            except BrowserError:
                pass
            if not self.wait(10):
                os.killpg(self.pid, signal.SIGKILL)  # its own session: renderers and GPU process too
                self.wait(10)
        self.pipe.close()
        self.log.close()
        shutil.rmtree(self.profile, ignore_errors=True)

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _fd_above(fd: int, floor: int = 10) -> int:
    """A close-on-exec duplicate of `fd` numbered >= `floor`, so dup2 onto fds 3 and 4 never meets itself."""
    import fcntl

    return fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, floor)
