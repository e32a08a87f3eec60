"""What the web target needs besides the ONNX model: the pinned ONNX Runtime Web files (`ortfiles`), the
static site's layout (`site`) and page (`assets/`), a loopback HTTP server with the cross-origin
isolation headers (`server`), and the system's Chromium driven over the DevTools pipe (`browser`, `cdp`).

Imports nothing from export or runtime: `edgeattn.export.web` and `edgeattn.runtime.ortweb_runner` build
on it.
"""
