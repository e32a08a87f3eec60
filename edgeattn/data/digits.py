"""builtin:digits — real handwritten digits (scikit-learn's 1,797 8x8 scans) on real photo crops.

Deterministic and offline. Each source digit belongs to exactly one split (train 60 %, calib 15 %,
val 25 %), so no split ever sees another split's handwriting sample. Every source digit is rendered a
few times: scaled, placed and coloured at random over a random crop of one of scikit-learn's two
sample photos, with partial transparency and sensor noise. The difficulty is tuned so that small
models land between 85 % and 97 % top-1: drift from quantization stays visible.
"""

from __future__ import annotations

import functools

import numpy as np
import torch
import torch.nn.functional as F

from edgeattn.data.imageset import ImageSet

SPLIT_FRACTIONS = {"train": 0.60, "calib": 0.15, "val": 0.25}
VARIANTS = {"train": 3, "calib": 2, "val": 2}
SEED = 20261127


@functools.lru_cache(maxsize=1)
def _sources() -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    from sklearn.datasets import load_digits, load_sample_images

    digits = load_digits()
    photos = [np.asarray(img, dtype=np.float32) / 255.0 for img in load_sample_images().images]
    return digits.images.astype(np.float32) / 16.0, digits.target.astype(np.int64), photos


def source_indices(split: str) -> np.ndarray:
    images, _, _ = _sources()
    order = np.random.default_rng(SEED).permutation(len(images))
    n_train = int(len(order) * SPLIT_FRACTIONS["train"])
    n_calib = int(len(order) * SPLIT_FRACTIONS["calib"])
    bounds = {
        "train": (0, n_train),
        "calib": (n_train, n_train + n_calib),
        "val": (n_train + n_calib, len(order)),
    }
    lo, hi = bounds[split]
    return np.sort(order[lo:hi])


@functools.lru_cache(maxsize=6)
def build_digits(split: str, size: int) -> ImageSet:
    digit_images, targets, photos = _sources()
    idx = source_indices(split)
    rng = np.random.default_rng([SEED, size, list(SPLIT_FRACTIONS).index(split)])
    n = len(idx) * VARIANTS[split]
    out = torch.empty((n, 3, size, size), dtype=torch.uint8)
    labels = torch.empty(n, dtype=torch.int64)
    k = 0
    for src in idx:
        for _ in range(VARIANTS[split]):
            out[k] = _render(digit_images[src], photos[rng.integers(len(photos))], size, rng)
            labels[k] = int(targets[src])
            k += 1
    return ImageSet(out, labels, [str(c) for c in range(10)], source="builtin:digits", split=split)


def _render(digit: np.ndarray, photo: np.ndarray, size: int, rng: np.random.Generator) -> torch.Tensor:
    ph, pw, _ = photo.shape
    crop = int(rng.uniform(0.25, 0.9) * min(ph, pw))
    y0, x0 = rng.integers(0, ph - crop + 1), rng.integers(0, pw - crop + 1)
    bg = torch.from_numpy(np.ascontiguousarray(photo[y0 : y0 + crop, x0 : x0 + crop])).permute(2, 0, 1)[None]
    bg = F.interpolate(bg, size=(size, size), mode="bilinear", align_corners=False, antialias=True)[0]
    # Keep the photo's structure but lower its contrast, so that the digit is the strongest signal.
    mean = bg.mean(dim=(1, 2), keepdim=True)
    bg = mean * rng.uniform(0.4, 0.9) + (bg - mean) * rng.uniform(0.1, 0.35)

    d = max(6, int(size * rng.uniform(0.55, 0.9)))
    glyph = torch.from_numpy(digit)[None, None]
    glyph = F.interpolate(glyph, size=(d, d), mode="bilinear", align_corners=False)[0, 0].clamp(0, 1)
    top, left = rng.integers(0, size - d + 1), rng.integers(0, size - d + 1)
    alpha = torch.zeros(size, size)
    alpha[top : top + d, left : left + d] = glyph * rng.uniform(0.7, 1.0)
    # Ink contrasts with the local background (its complement, jittered), so the digit stays legible.
    local = bg[:, top : top + d, left : left + d].mean(dim=(1, 2))
    jitter = torch.from_numpy(rng.uniform(-0.3, 0.3, size=3).astype(np.float32))
    color = ((1.0 - local) + jitter).clamp(0, 1).view(3, 1, 1)
    img = bg * (1 - alpha) + color * alpha
    img = img + torch.from_numpy(
        rng.normal(0.0, rng.uniform(0.02, 0.08), size=(3, size, size)).astype(np.float32)
    )
    return (img.clamp(0, 1) * 255).round().to(torch.uint8)
