"""What the web-target tests share: skipping where no browser is installed (with the reason), the
onnxruntime-web files, a cached web export of the tiny trained model, and digit images as PNG files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from helpers.models import CACHE, trained_checkpoint

KEY = "attn_vgg11_linear"


def need_browser() -> None:
    """Skip (with the reason) where this machine has no Chromium; .ci/run installs one."""
    from edgeattn.web.browser import browser_unavailable_reason

    reason = browser_unavailable_reason()
    if reason:
        pytest.skip(f"no browser here: {reason}")


def need_ort_files(backends: tuple[str, ...] = ("wasm",)) -> Path:
    """The verified onnxruntime-web files (.ci/run and `make install` fetch them with `edgeattn web setup`)."""
    from edgeattn.errors import UnavailableError
    from edgeattn.web.ortfiles import ort_web_dir

    try:
        return ort_web_dir(None, backends)
    except UnavailableError as exc:
        pytest.skip(f"onnxruntime-web is not set up here: {exc.one_line()}")


def web_site(out: Path, **options) -> Path:
    """A web export of the tiny trained model (class names 0..9), written once per test module."""
    from edgeattn.export import export_artifact

    export_artifact(trained_checkpoint(KEY), "web", out, **options)
    return out


def digit_png(folder: Path, split: str, index: int, size: int) -> tuple[Path, str]:
    """One image of builtin:digits as a PNG at the model's input size, and its class name."""
    from PIL import Image

    from edgeattn.data import load_split

    images = load_split("builtin:digits", split, size)
    path = folder / f"{split}-{index}.png"
    Image.fromarray(images.images[index].permute(1, 2, 0).numpy().astype(np.uint8)).save(path)
    return path, images.classes[int(images.labels[index])]


__all__ = ["CACHE", "KEY", "digit_png", "need_browser", "need_ort_files", "web_site"]
