"""A Chrome DevTools Protocol client over `--remote-debugging-pipe` (standard library only).

Why the pipe and not a driver package: Chromium started with `--remote-debugging-pipe` reads
NUL-terminated JSON commands from its fd 3 and writes replies and events to its fd 4, so Python's
`subprocess` and `json` are a complete driver (no websocket client, no Playwright/Selenium, no browser
download). One reader thread matches replies to commands by id; every wait is bounded, and a browser
that exits or stops answering becomes a `BrowserError`, never a hang.
"""

from __future__ import annotations

import collections
import json
import os
import threading
import time
from typing import Any


class BrowserError(RuntimeError):
    """The browser exited, stopped answering, or a page command failed."""


class CdpPipe:
    """Commands and events over the two pipe ends connected to the browser's fds 3 (in) and 4 (out)."""

    def __init__(self, to_browser: int, from_browser: int) -> None:
        self._out = to_browser
        self._in = from_browser
        self._next_id = 0
        self._lock = threading.Lock()
        self._replies: dict[int, dict[str, Any]] = {}
        self._waiting = threading.Condition()
        self._closed: str | None = None
        self.events: collections.deque[dict[str, Any]] = collections.deque(maxlen=500)
        self._reader = threading.Thread(target=self._read, name="cdp-reader", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        buf = b""
        try:
            while True:
                chunk = os.read(self._in, 1 << 20)
                if not chunk:
                    break
                buf += chunk
                *messages, buf = buf.split(b"\0")
                for raw in messages:
                    self._dispatch(json.loads(raw))
        except (OSError, ValueError) as exc:
            self._close(f"the browser's debugging pipe failed ({exc})")
        self._close("the browser closed its debugging pipe (it exited)")

    def _dispatch(self, message: dict[str, Any]) -> None:
        with self._waiting:
            if "id" in message:
                self._replies[int(message["id"])] = message
            else:
                self.events.append(message)
            self._waiting.notify_all()

    def _close(self, why: str) -> None:
        with self._waiting:
            if self._closed is None:
                self._closed = why
            self._waiting.notify_all()

    def send(
        self, method: str, params: dict[str, Any] | None = None, *, session: str | None = None, timeout: float
    ) -> dict[str, Any]:
        """Send one command and wait (at most `timeout` s) for its result."""
        with self._lock:
            self._next_id += 1
            ident = self._next_id
            message: dict[str, Any] = {"id": ident, "method": method, "params": params or {}}
            if session:
                message["sessionId"] = session
            data = json.dumps(message).encode() + b"\0"
            try:
                while data:
                    data = data[os.write(self._out, data) :]
            except OSError as exc:
                raise BrowserError(f"cannot send {method} to the browser ({exc})") from None
        deadline = time.monotonic() + timeout
        with self._waiting:
            while ident not in self._replies:
                if self._closed is not None:
                    raise BrowserError(f"{self._closed} while waiting for {method}")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise BrowserError(f"the browser did not answer {method} within {timeout:g} s")
                self._waiting.wait(left)
            reply = self._replies.pop(ident)
        if "error" in reply:
            error = reply["error"]
            raise BrowserError(f"{method} failed: {error.get('message', error)}")
        return dict(reply.get("result", {}))

    def wait_event(self, method: str, session: str | None, timeout: float) -> dict[str, Any]:
        """The first queued event `method` (of `session`), waiting at most `timeout` s for it."""
        deadline = time.monotonic() + timeout
        with self._waiting:
            while True:
                for event in list(self.events):
                    if event.get("method") == method and (
                        session is None or event.get("sessionId") == session
                    ):
                        self.events.remove(event)
                        return dict(event.get("params", {}))
                if self._closed is not None:
                    raise BrowserError(f"{self._closed} while waiting for {method}")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise BrowserError(f"no {method} from the browser within {timeout:g} s")
                self._waiting.wait(left)

    def close(self) -> None:
        for fd in (self._out, self._in):
            try:
                os.close(fd)
            except OSError:
                pass
        self._reader.join(timeout=2)
