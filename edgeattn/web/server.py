"""A static HTTP server on 127.0.0.1 with the headers ONNX Runtime Web needs (standard library only).

Browsers refuse ES modules and WebAssembly from file:// URLs, so pages are served over http:
`.mjs` as text/javascript, `.wasm` as application/wasm (streaming compilation checks it), and every
response with COOP `same-origin` + COEP `require-corp`, which make the page cross-origin isolated —
without them SharedArrayBuffer is missing and multi-threaded WASM silently runs one thread.

It serves a folder (only files inside it; no listings) plus named routes (a file, or bytes the
caller puts and replaces, e.g. the runner's input tensors). It listens on loopback only.
"""

from __future__ import annotations

import http.server
import shutil
import threading
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

MIME = {
    ".html": "text/html; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".wasm": "application/wasm",
    ".json": "application/json",
    ".onnx": "application/octet-stream",
    ".bin": "application/octet-stream",
    ".css": "text/css; charset=utf-8",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".txt": "text/plain; charset=utf-8",
    ".md": "text/plain; charset=utf-8",
}
ISOLATION_HEADERS = {
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Embedder-Policy": "require-corp",
    "Cross-Origin-Resource-Policy": "same-origin",
}


class LocalServer:
    """Serve `root` (optional) and `routes` (URL path -> file path or bytes) on 127.0.0.1:`port`."""

    def __init__(
        self,
        root: Path | None = None,
        routes: dict[str, Path | bytes] | None = None,
        *,
        port: int = 0,
        isolate: bool = True,
    ) -> None:
        self.root = Path(root).resolve() if root is not None else None
        self.routes: dict[str, Path | bytes] = dict(routes or {})
        self.isolate = isolate
        self._lock = threading.Lock()
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", port), self._handler())
        self.httpd.daemon_threads = True
        self.httpd.timeout = 5
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="edgeattn-http", daemon=True)
        self.thread.start()

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def url(self, path: str) -> str:
        return self.origin + "/" + path.lstrip("/")

    def put(self, path: str, content: Path | bytes) -> str:
        """Serve `content` at `path` (replacing what was there); returns its URL."""
        with self._lock:
            self.routes["/" + path.lstrip("/")] = content
        return self.url(path)

    def discard(self, path: str) -> None:
        with self._lock:
            self.routes.pop("/" + path.lstrip("/"), None)

    def resolve(self, url_path: str) -> Path | bytes | None:
        path = "/" + unquote(urlsplit(url_path).path).lstrip("/")
        with self._lock:
            if path in self.routes:
                return self.routes[path]
        if self.root is None:
            return None
        if path.endswith("/"):
            path += "index.html"
        candidate = (self.root / path.lstrip("/")).resolve()
        if candidate.is_file() and candidate.is_relative_to(self.root):
            return candidate
        return None

    def _handler(self) -> type[http.server.BaseHTTPRequestHandler]:
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body go out as separate writes: no 40 ms ACK wait
            timeout = 60  # a client that stops mid-request frees its thread

            def do_GET(self) -> None:  # noqa: N802  (http.server's naming)
                self._serve(body=True)

            def do_HEAD(self) -> None:  # noqa: N802
                self._serve(body=False)

            def _serve(self, body: bool) -> None:
                content = server.resolve(self.path)
                if content is None:
                    self.send_error(404, "not found")
                    return
                name = self.path.split("?", 1)[0]
                suffix = Path(content).suffix if isinstance(content, Path) else Path(name).suffix
                size = content.stat().st_size if isinstance(content, Path) else len(content)
                self.send_response(200)
                self.send_header("Content-Type", MIME.get(suffix.lower(), "application/octet-stream"))
                self.send_header("Content-Length", str(size))
                self.send_header("Cache-Control", "no-store")
                if server.isolate:
                    for key, value in ISOLATION_HEADERS.items():
                        self.send_header(key, value)
                self.end_headers()
                if not body:
                    return
                try:
                    if isinstance(content, Path):
                        with content.open("rb") as fh:
                            shutil.copyfileobj(fh, self.wfile, 1 << 20)
                    else:
                        self.wfile.write(content)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        return Handler

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)

    def __enter__(self) -> LocalServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
