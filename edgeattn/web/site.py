"""The layout of a web export (a static site folder) and the checks before anything opens one.

    site/
      index.html, app.mjs, edgeattn-web.mjs   the page (drop an image, see top-5, latency, backend)
      DEPLOY.md, _headers, .htaccess           hosting notes and COOP/COEP header files for common hosts
      edgeattn-web.json                        what the page and the ort-web runner read: model file,
                                               classes, input spec, onnxruntime-web version and files,
                                               sha256 of every file
      model.onnx, model.onnx.json              the checked ONNX model and its artifact manifest
      ort/                                     the onnxruntime-web bundle(s) and WebAssembly binaries

A folder is a web export when it holds `edgeattn-web.json`; `read_site` refuses one whose model, its
manifest or the onnxruntime-web files changed after export (their sha256), in one line. The page files
are hashed too, for the record, but may be edited (branding, layout) without breaking the export.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgeattn.errors import InputError
from edgeattn.fileio import sha256_of, write_json

SITE_FILE = "edgeattn-web.json"
SITE_FORMAT = "edgeattn.web"
MODEL_FILE = "model.onnx"
ORT_DIR = "ort"
ASSETS = Path(__file__).with_name("assets")
PAGE_FILES = ("index.html", "app.mjs", "edgeattn-web.mjs", "DEPLOY.md", "_headers", ".htaccess")
HARNESS_FILES = ("harness.html", "harness.mjs", "edgeattn-web.mjs")


def is_site(path: Path | str) -> bool:
    path = Path(path)
    return path.is_dir() and (path / SITE_FILE).is_file()


@dataclass
class Site:
    """A web export, read and verified."""

    folder: Path
    data: dict[str, Any]

    @property
    def model(self) -> Path:
        return self.folder / str(self.data["model"])

    @property
    def ort_dir(self) -> Path:
        return self.folder / str(self.data["ort_web"]["dir"])

    @property
    def backends(self) -> tuple[str, ...]:
        return tuple(self.data["ort_web"]["backends"])


def read_site(folder: Path | str, verify: bool = True) -> Site:
    folder = Path(folder)
    descriptor = folder / SITE_FILE
    if not descriptor.is_file():
        raise InputError(
            f"{folder} is not an edgeattn web export (no {SITE_FILE})",
            "export one with `edgeattn export CKPT --target web --out DIR`",
        )
    try:
        data = json.loads(descriptor.read_text())
        if data.get("format") != SITE_FORMAT:
            raise ValueError(f"format is {data.get('format')!r}, not {SITE_FORMAT!r}")
        site = Site(folder, data)
        files = dict(data["files"])
        site.model, site.ort_dir, site.backends  # noqa: B018  (the keys must exist)
    except (ValueError, TypeError, KeyError) as exc:
        raise InputError(f"{descriptor} is malformed ({exc})", "re-export the site") from None
    if verify:
        for name, digest in files.items():
            if name in PAGE_FILES:
                continue
            path = folder / name
            if not path.is_file() or not path.resolve().is_relative_to(folder.resolve()):
                raise InputError(
                    f"{folder}: {name} is missing", "re-export the site (or copy the whole folder)"
                )
            if sha256_of(path) != digest:
                raise InputError(
                    f"{folder}: {name} changed after export (sha256 differs from {SITE_FILE})",
                    "re-export the site",
                )
    return site


def write_site(
    folder: Path,
    *,
    model: Path,
    ort_files: dict[str, Path],
    backends: dict[str, tuple[str, ...]],
    ort_version: str,
    info: dict[str, Any],
) -> dict[str, Any]:
    """Fill `folder` (which already holds `model` and its manifest) with the page, the runtime files
    (`ort_files`: name -> source; `backends`: backend -> the files it loads) and the descriptor."""
    for name in PAGE_FILES:
        shutil.copyfile(ASSETS / name, folder / name)
    (folder / ORT_DIR).mkdir(exist_ok=True)
    for name, source in ort_files.items():
        shutil.copyfile(source, folder / ORT_DIR / name)
    names = [*PAGE_FILES, model.name, model.name + ".json", *(f"{ORT_DIR}/{n}" for n in ort_files)]
    data = {
        "format": SITE_FORMAT,
        **info,
        "model": model.name,
        "manifest": model.name + ".json",
        "ort_web": {
            "version": ort_version,
            "dir": ORT_DIR,
            "backends": {b: list(f) for b, f in backends.items()},
        },
        "files": {name: sha256_of(folder / name) for name in names},
    }
    write_json(folder / SITE_FILE, data)
    return data
