"""Runs a web export (or any .onnx) on ONNX Runtime Web inside headless Chromium.

Python onnxruntime is not what a web page runs: the browser runs onnxruntime-web's WebAssembly build
(SIMD; threads only when the page is cross-origin isolated) or its WebGPU backend. This runner serves
the model, the onnxruntime-web files and a small harness page on 127.0.0.1 (with COOP/COEP, so WASM
may use threads), opens the page in the system's Chromium over the DevTools pipe, creates one
inference session, and then per `run` lets the page fetch the prepared input, run it, and hand back
the logits and its own `performance.now()` latency (`run_ms`, which `bench` times with).

A web export folder uses its own model and onnxruntime-web files (checked against the sha256 in its
`edgeattn-web.json`); a plain .onnx (`--runtime ort-web`) uses the files `edgeattn web setup` cached.
Each run reports the onnxruntime-web and browser versions, cross-origin isolation, the effective
thread count and the session-creation time (in `runtime` and `info()["web"]`).
"""

from __future__ import annotations

import base64
import functools
import hashlib
from pathlib import Path
from typing import Any

import numpy as np

from edgeattn.errors import InputError, UnavailableError
from edgeattn.manifest import read_manifest
from edgeattn.runtime.base import RUNNERS, Runner
from edgeattn.runtime.ort_runner import check_onnx_readable
from edgeattn.web import ortfiles
from edgeattn.web.browser import Browser, BrowserError, browser_unavailable_reason, find_browser
from edgeattn.web.server import LocalServer
from edgeattn.web.site import ASSETS, HARNESS_FILES, is_site, read_site

OPEN_TIMEOUT_S = 120.0
RUN_TIMEOUT_S = 600.0
ONNX_TYPES = {1: "float32", 10: "float16"}


def graph_io(path: Path) -> tuple[str, list[Any], str]:
    """(input element type, input dims, output element type) of an ONNX file, read without its weights'
    external data."""
    import onnx

    model = onnx.load_model(str(path), load_external_data=False)
    inp, out = model.graph.input[0], model.graph.output[0]
    types = []
    for value in (inp, out):
        elem = value.type.tensor_type.elem_type
        if elem not in ONNX_TYPES:
            raise InputError(
                f"{path.name} has a {onnx.TensorProto.DataType.Name(elem)} {value.name!r}; the ort-web runner feeds float32/float16",
                "export the model with float inputs and outputs",
            )
        types.append(ONNX_TYPES[elem])
    dims = [d.dim_value if d.HasField("dim_value") else d.dim_param for d in inp.type.tensor_type.shape.dim]
    return types[0], dims, types[1]


class OrtWebRunner(Runner):
    kind = "ort-web"
    suffixes = ()  # its own artifacts are folders (see `recognises`); .onnx runs with --runtime ort-web
    serves = ("ort-web", "onnxruntime")
    backend = "wasm"
    run_clock = "page clock (performance.now() around session.run)"

    @classmethod
    def recognises(cls, path: Path) -> bool:
        return is_site(path)

    @classmethod
    def unavailable_reason(cls) -> str | None:
        return browser_unavailable_reason()

    @classmethod
    def preflight(cls, path: Path) -> None:
        path = Path(path)
        if is_site(path):
            site = read_site(path)
            read_manifest(site.model)
            check_onnx_readable(site.model)
        else:
            read_manifest(path)
            check_onnx_readable(path)
            graph_io(path)

    def __init__(
        self, path: Path, threads: int | None = None, browser: str | None = None, **_: object
    ) -> None:
        path = Path(path)
        self.preflight(path)
        if is_site(path):
            site = read_site(path, verify=False)  # verified by preflight
            if self.backend not in site.backends:
                raise UnavailableError(
                    f"{path} was exported without the {self.backend} backend (it has {', '.join(site.backends)})",
                    "re-export it with --webgpu" if self.backend == "webgpu" else "re-export it",
                )
            model, ort_dir = site.model, site.ort_dir
            ort_names = list(site.data["ort_web"]["backends"][self.backend])
        else:
            model = path
            ort_dir = ortfiles.ort_web_dir(None, (self.backend,))
            ort_names = list(ortfiles.BACKEND_FILES[self.backend])
        self.manifest = read_manifest(model, verify_hash=False)
        self.input_spec = self.manifest.spec
        self.num_classes = self.manifest.num_classes
        self.precision = self.manifest.precision
        self.image_input = self.manifest.image_input
        self.input_type, dims, self.output_type = graph_io(model)
        self.max_batch = dims[0] if dims and isinstance(dims[0], int) and dims[0] > 0 else None
        binary = find_browser(browser)
        routes: dict[str, Path | bytes] = {f"/{name}": ASSETS / name for name in HARNESS_FILES}
        routes.update({f"/ort/{name}": ort_dir / name for name in ort_names})
        routes["/model.onnx"] = model
        self._last_input: str | None = None
        self._calls = 0
        self.server = LocalServer(routes=routes)
        self.browser: Browser | None = None
        try:
            self.browser = Browser(binary, webgpu=self.backend == "webgpu")
            self.page = self.browser.new_page()
            self.page.navigate(self.server.url("harness.html"))
            self.page.wait_for("globalThis.edgeattnHarnessReady === true", OPEN_TIMEOUT_S)
            info = self.page.evaluate(
                f"edgeattnHarness.open('/ort/', '/model.onnx', '{self.backend}', {int(threads or 0)})",
                timeout=OPEN_TIMEOUT_S,
            )
        except BrowserError as exc:
            detail = self._page_trouble(exc)
            self.close()
            raise InputError(
                f"onnxruntime-web could not open {model.name} in {binary.name} ({detail})",
                "check that the model runs on onnxruntime (edgeattn eval), then report it",
            ) from None
        except BaseException:
            self.close()
            raise
        self.web = {
            **info,
            "browser": self.browser.product or self.browser.version,
            "browser_binary": str(binary),
            "requested_threads": threads,
        }
        self.runtime = describe(self.web)

    def _page_trouble(self, exc: BrowserError) -> str:
        console = self.page.console() if getattr(self, "page", None) is not None else []
        errors = [line for line in console if line.startswith(("error", "exception"))]
        return (errors[-1] if errors else str(exc))[:300]

    def run(self, x: np.ndarray) -> np.ndarray:
        data = np.ascontiguousarray(x, dtype=np.float16 if self.input_type == "float16" else np.float32)
        raw = data.tobytes()
        digest = hashlib.blake2b(raw, digest_size=16).hexdigest() + str(data.shape)
        try:
            if digest == self._last_input:  # the same input again (benchmark loops): no transfer
                result = self.page.evaluate("edgeattnHarness.rerun()", timeout=RUN_TIMEOUT_S)
            else:
                self._calls += 1
                name = f"io/in-{self._calls}.bin"
                url = self.server.put(name, raw)
                result = self.page.evaluate(
                    f"edgeattnHarness.run('{url}', '{self.input_type}', {list(data.shape)})",
                    timeout=RUN_TIMEOUT_S,
                )
                self.server.discard(name)  # the page has it; do not keep every input in memory
                self._last_input = digest
        except BrowserError as exc:
            raise InputError(
                f"onnxruntime-web failed to run {self.manifest.artifact} on a {list(data.shape)} input ({self._page_trouble(exc)})",
                "check the input shape against the model's batch size",
            ) from None
        out_dtype = np.float16 if result["type"] == "float16" else np.float32
        out = np.frombuffer(base64.b64decode(result["data"]), dtype=out_dtype).reshape(result["dims"])
        self.run_ms = float(result["ms"])
        return out.astype(np.float32)

    def info(self) -> dict[str, Any]:
        return {**super().info(), "web": dict(self.web)}

    def close(self) -> None:
        if getattr(self, "browser", None) is not None:
            self.browser.close()
            self.browser = None
        if getattr(self, "server", None) is not None:
            self.server.close()
            self.server = None

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # noqa: BLE001  best-effort cleanup at interpreter exit
            pass


class OrtWebGpuRunner(OrtWebRunner):
    """The same page on onnxruntime-web's WebGPU backend (needs a browser with a WebGPU adapter)."""

    kind = "ort-webgpu"
    backend = "webgpu"

    @classmethod
    def recognises(cls, path: Path) -> bool:
        return False  # web export folders open on ort-web (WASM) unless asked for

    @classmethod
    def unavailable_reason(cls) -> str | None:
        return browser_unavailable_reason() or webgpu_adapter()[1]

    @classmethod
    def speed_unavailable_reason(cls) -> str | None:
        reason = cls.unavailable_reason()
        if reason:
            return reason
        adapter = webgpu_adapter()[0]
        if "swiftshader" in adapter.lower() or "cpu" in adapter.lower():
            return (
                f"the browser's only WebGPU adapter is a software one ({adapter}): its latency is not a GPU's"
            )
        return None


@functools.lru_cache(maxsize=1)
def webgpu_adapter() -> tuple[str, str | None]:
    """(adapter description, None) when this browser has a WebGPU adapter, else ("", why not)."""
    try:
        # navigator.gpu exists only in secure contexts: a page on 127.0.0.1 is one, about:blank is not.
        with (
            LocalServer(routes={"/probe.html": b"<!doctype html><title>probe</title>"}) as server,
            Browser(find_browser(), webgpu=True) as browser,
        ):
            page = browser.new_page()
            page.navigate(server.url("probe.html"))
            found = page.evaluate(
                "(async () => { if (!navigator.gpu) return null; const a = await navigator.gpu.requestAdapter();"
                " if (!a) return null; const i = a.info || {};"
                " return [i.vendor, i.architecture, i.device, i.description].filter(Boolean).join(' ') || 'unnamed'; })()",
                timeout=30,
            )
    except (BrowserError, UnavailableError) as exc:
        return "", f"cannot ask the browser for a WebGPU adapter ({exc})"
    if not found:
        return "", "this browser has no WebGPU adapter (no GPU, or WebGPU disabled)"
    return str(found), None


def describe(web: dict[str, Any]) -> str:
    """One line for tables: versions, backend, effective threads, SIMD, isolation, session time."""
    if web.get("backend") == "wasm":
        isolated = "cross-origin isolated" if web.get("cross_origin_isolated") else "not isolated"
        simd = "SIMD" if web.get("simd") else "no SIMD"
        how = f"wasm, {web.get('threads')} thread(s), {simd}, {isolated}"
    else:
        how = f"webgpu{', ' + web['adapter'] if web.get('adapter') else ''}"
    return (
        f"onnxruntime-web {web.get('ort_web')} ({how}) in {web.get('browser')}; "
        f"session {float(web.get('session_ms', 0)):.0f} ms"
    )


RUNNERS.register("ort-web", OrtWebRunner)
RUNNERS.register("ort-webgpu", OrtWebGpuRunner)
