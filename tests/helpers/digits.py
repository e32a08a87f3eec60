"""Small builtin:digits samples written as .npz files, so a test's splits (60/15/25 by edgeattn) stay small."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgeattn.data import load_split


def write_digits_npz(path: Path, count: int, size: int = 32) -> str:
    """`count` images of the digits train split (NHWC uint8, labels, class names) saved at `path`."""
    train = load_split("builtin:digits", "train", size).subset(count)
    np.savez(
        path,
        images=train.images.permute(0, 2, 3, 1).numpy(),
        labels=train.labels.numpy(),
        classes=np.array(train.classes),
    )
    return str(path)
