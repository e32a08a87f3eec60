"""Writing a data set out as an ImageFolder tree (PNG files), atomically."""

from __future__ import annotations

from pathlib import Path

from edgeattn.data.imageset import ImageSet
from edgeattn.data.sources import SPLITS, load_split
from edgeattn.errors import InputError
from edgeattn.fileio import atomic_output


def write_imagefolder(spec: str, size: int, out: Path) -> dict[str, int]:
    from PIL import Image

    counts = {}
    with atomic_output(out) as tmp:
        for split in SPLITS:
            data = load_split(spec, split, size)
            if not isinstance(data, ImageSet):
                raise InputError(
                    f"{spec} is already a folder or file list", "build from builtin:NAME or an .npz file"
                )
            for c in data.classes:
                (tmp / split / c).mkdir(parents=True, exist_ok=True)
            for i, (img, label) in enumerate(zip(data.images, data.labels.tolist(), strict=True)):
                Image.fromarray(img.permute(1, 2, 0).numpy()).save(
                    tmp / split / data.classes[label] / f"{i:05d}.png"
                )
            counts[split] = len(data)
    return counts
