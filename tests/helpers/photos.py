"""Real photos for data tests: landscape and portrait crops of scikit-learn's two sample photos
(china.jpg, flower.jpg; 427x640, shipped with scikit-learn, no download), written as JPEG/PNG files."""

from __future__ import annotations

from pathlib import Path

import numpy as np

# (left, top, width, height) crops of the 640x427 photos: landscape, portrait, square-ish, tall.
CROPS = ((0, 0, 640, 427), (100, 0, 240, 400), (200, 50, 301, 300), (10, 20, 150, 407), (50, 60, 517, 211))


def sample_photos() -> list[np.ndarray]:
    from sklearn.datasets import load_sample_image

    return [load_sample_image("china.jpg"), load_sample_image("flower.jpg")]


def crops(n: int) -> list[np.ndarray]:
    """n distinct RGB uint8 crops, alternating photos and crop boxes (deterministic)."""
    photos, out = sample_photos(), []
    for i in range(n):
        left, top, w, h = CROPS[i % len(CROPS)]
        shift = (i // len(CROPS)) % 7
        img = photos[i % 2][top : top + h - shift, left + shift : left + w]
        out.append(np.ascontiguousarray(img))
    return out


def write_photo_folder(
    root: Path, classes=("china", "flower"), per_class: int = 5, ext: str = ".jpg"
) -> Path:
    """root/<class>/<n>.jpg — class i gets crops of photo i (so a model can tell them apart)."""
    from PIL import Image

    photos = sample_photos()
    for c, cls in enumerate(classes):
        (root / cls).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            left, top, w, h = CROPS[i % len(CROPS)]
            shift = i // len(CROPS)
            img = photos[c % 2][top : top + h - shift, left + shift : left + w]
            Image.fromarray(np.ascontiguousarray(img)).save(root / cls / f"{i}{ext}", quality=90)
    return root
