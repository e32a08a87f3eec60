"""Pictures of drift for `edgeattn validate --explain N`: where the artifact and its reference disagree.

The N images shown are the flipped ones first (the two predict different classes), then those with the
largest KL(reference ‖ artifact). An artifact (ONNX, engine, ...) cannot be differentiated, so its heat
map is computed on the torch checkpoint it came from (the manifest's `source_checkpoint`), explaining
the class the artifact predicted; the reference's map explains the class the reference predicted.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from edgeattn.errors import InputError
from edgeattn.explain.config import ExplainConfig
from edgeattn.explain.core import class_names, explain_batch, load_handle
from edgeattn.explain.render import Tile, overlay, plain, save_panel
from edgeattn.fileio import atomic_output


def per_image_kl(ref_logits: np.ndarray, art_logits: np.ndarray) -> np.ndarray:
    ref = torch.from_numpy(np.asarray(ref_logits, np.float64)).log_softmax(-1)
    art = torch.from_numpy(np.asarray(art_logits, np.float64)).log_softmax(-1)
    return (ref.exp() * (ref - art)).sum(-1).clamp_min(0).numpy()


def worst_images(ref_logits: np.ndarray, art_logits: np.ndarray, n: int) -> list[int]:
    """Indices of the `n` images that disagree most: flipped first, then by KL, largest first."""
    kl = per_image_kl(ref_logits, art_logits)
    flipped = ref_logits.argmax(-1) != art_logits.argmax(-1)
    return sorted(range(len(kl)), key=lambda i: (not flipped[i], -kl[i]))[:n]


def source_checkpoint(artifact: Path) -> tuple[Path | None, str | None]:
    """The torch checkpoint an artifact was exported from, or None and why not."""
    from edgeattn.manifest import read_manifest

    if artifact.suffix == ".pt":
        return artifact, None
    try:
        source = read_manifest(artifact, verify_hash=False).source_checkpoint
    except InputError as exc:
        return None, f"the artifact's manifest cannot be read ({exc.problem})"
    if not source:
        return None, "the artifact's manifest names no source checkpoint"
    for candidate in (Path(source), artifact.parent / Path(source).name):
        if candidate.is_file():
            return candidate, None
    return None, f"its source checkpoint {source} is not on this machine"


def explain_drift(
    artifact: Path,
    reference: Path,
    dataset: Any,
    ref_logits: np.ndarray,
    art_logits: np.ndarray,
    n: int,
    folder: Path,
    data_classes: list[str],
) -> dict[str, Any]:
    """Panels (input | reference map | artifact's source map) for the `n` most-disagreeing images of
    `dataset` (an `ImageSet` or `FileSet`; only those images are read), written to `folder`; returns what the Markdown report shows."""
    from edgeattn.data.imageset import resize_uint8

    picked = worst_images(ref_logits, art_logits, n)
    kl = per_image_kl(ref_logits, art_logits)
    ref = load_handle(reference)
    names = class_names(ref, data_classes)
    source, note = source_checkpoint(artifact)
    other = load_handle(source) if source is not None else None
    x01 = resize_uint8(dataset.take(picked).pixels(ref.input_spec), ref.input_spec) / 255.0
    ref_cls = [int(ref_logits[i].argmax()) for i in picked]
    art_cls = [int(art_logits[i].argmax()) for i in picked]
    config = ExplainConfig()
    ref_heat = explain_batch(ref, x01, ref_cls, config)[0].heat if picked else None
    art_heat = explain_batch(other, x01, art_cls, config)[0].heat if picked and other is not None else None
    rows = []
    with atomic_output(folder) as tmp:
        tmp.mkdir()
        for j, i in enumerate(picked):
            img = x01[j].numpy()
            tiles = [
                Tile(f"image {i}", plain(img)),
                Tile(f"reference: {names[ref_cls[j]]}", overlay(img, ref_heat[j], config.alpha)),
            ]
            if art_heat is not None:
                tiles.append(Tile(f"artifact: {names[art_cls[j]]}", overlay(img, art_heat[j], config.alpha)))
            save_panel(tmp / f"{j:03d}.png", tiles)
            rows.append(
                {
                    "index": i,
                    "reference": names[ref_cls[j]],
                    "artifact": names[art_cls[j]],
                    "kl": float(kl[i]),
                    "flipped": ref_cls[j] != art_cls[j],
                    "panel": f"{folder.name}/{j:03d}.png",
                }
            )
    return {
        "method": config.method,
        "folder": str(folder),
        "source_checkpoint": str(source) if source is not None else None,
        "note": None if note is None else f"artifact heat maps not shown: {note}",
        "images": rows,
    }
