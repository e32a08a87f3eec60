"""How alike two heat maps are: Pearson correlation of the pixels and IoU of the top-k% regions.

Pearson says whether the maps rise and fall together everywhere; the top-k% IoU says whether the
region a person would look at (the hottest k% of pixels) is the same one. Both are 1 for identical maps.
"""

from __future__ import annotations

import numpy as np


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    """Correlation of two maps; two constant maps are equal (1) or unrelated (0)."""
    a, b = np.asarray(a, np.float64).ravel(), np.asarray(b, np.float64).ravel()
    da, db = a - a.mean(), b - b.mean()
    denom = float(np.sqrt((da * da).sum() * (db * db).sum()))
    if denom == 0.0:
        return 1.0 if np.allclose(a, b) else 0.0
    return float((da * db).sum() / denom)


def top_mask(m: np.ndarray, percent: float) -> np.ndarray:
    """The hottest `percent` % of pixels (ties broken by position, so the region has a fixed size)."""
    flat = np.asarray(m, np.float64).ravel()
    k = max(1, int(round(flat.size * percent / 100.0)))
    mask = np.zeros(flat.size, dtype=bool)
    mask[np.argsort(-flat, kind="stable")[:k]] = True
    return mask


def top_iou(a: np.ndarray, b: np.ndarray, percent: float = 20.0) -> float:
    ma, mb = top_mask(a, percent), top_mask(b, percent)
    return float((ma & mb).sum() / (ma | mb).sum())
