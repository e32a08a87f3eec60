"""Data-set specs: `builtin:NAME`, an ImageFolder directory, or an `.npz` file.

`load_split(spec, split, size)` is the one entry point; everything that takes a data set calls it.
Splits are `train`, `calib` and `val`, always disjoint:
- builtin sets define their own splits (see digits.py);
- an ImageFolder with `train/` and `val/` (and optionally `calib/`) uses them; without `calib/`, the
  calibration split is a fixed 15 % of `train/` that training then does not see;
- a flat ImageFolder or an `.npz` is split deterministically 60/15/25 by image.
Append `@all` to a path spec to use every image for whichever split is asked (e.g. a held-out eval set).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from edgeattn.data.imageset import ImageSet
from edgeattn.errors import InputError
from edgeattn.registry import Registry

SPLITS = ("train", "calib", "val")
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm"}

BuiltinLoader = Callable[[str, int], ImageSet]
BUILTIN_DATASETS: Registry[BuiltinLoader] = Registry("built-in data set")


@BUILTIN_DATASETS.register("digits")
def _digits(split: str, size: int) -> ImageSet:
    from edgeattn.data.digits import build_digits

    return build_digits(split, size)


def load_split(spec: str, split: str, size: int | None = None) -> ImageSet:
    """Load one split of the data set `spec`; builtin sets render at `size` (default 64)."""
    if split not in SPLITS:
        raise InputError(f"unknown split {split!r}", f"use one of {', '.join(SPLITS)}")
    spec = str(spec).strip()
    if not spec:
        raise InputError(
            "empty data-set spec", "use builtin:digits, an ImageFolder directory or an .npz file"
        )
    if spec.startswith("builtin:"):
        name = spec.split(":", 1)[1]
        return BUILTIN_DATASETS.get(name)(split, int(size or 64))
    use_all = spec.endswith("@all")
    path = Path(spec.removesuffix("@all"))
    if not path.exists():
        raise InputError(
            f"data set {path} does not exist", "give builtin:digits, an ImageFolder directory or an .npz file"
        )
    if path.is_dir():
        return _load_folder(path, split, use_all)
    if path.suffix == ".npz":
        return _load_npz(path, split, use_all)
    raise InputError(f"cannot read data set {path}", "give an ImageFolder directory or an .npz file")


def _split_indices(n: int, split: str, seed: int = 0) -> np.ndarray:
    order = np.random.default_rng(seed).permutation(n)
    a, b = int(n * 0.60), int(n * 0.75)
    part = {"train": order[:a], "calib": order[a:b], "val": order[b:]}[split]
    return np.sort(part)


def _check_enough(images: ImageSet, path: Path, split: str) -> ImageSet:
    if len(images) == 0:
        raise InputError(
            f"split {split!r} of {path} is empty", "add images (or use SPEC@all to use every image)"
        )
    return images


# ---------------------------------------------------------------------------------------------- folder
def _class_dirs(root: Path) -> list[Path]:
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))


def _list_folder(root: Path, classes: list[str]) -> list[tuple[Path, int]]:
    items = []
    for label, cls in enumerate(classes):
        d = root / cls
        if d.is_dir():
            items += [(f, label) for f in sorted(d.rglob("*")) if f.suffix.lower() in IMAGE_SUFFIXES]
    return items


def _read_images(items: list[tuple[Path, int]], classes: list[str], source: str, split: str) -> ImageSet:
    from PIL import Image, UnidentifiedImageError

    if not items:
        raise InputError(
            f"no images found in {source}",
            f"put images ({', '.join(sorted(IMAGE_SUFFIXES))}) in one folder per class",
        )
    arrays, labels = [], []
    size = None
    for f, label in items:
        try:
            with Image.open(f) as im:
                im = im.convert("RGB")  # grayscale, palette and RGBA all become RGB
                if size is None:
                    size = im.size
                if im.size != size:
                    im = im.resize(size, Image.BILINEAR)
                arrays.append(np.asarray(im, dtype=np.uint8))
        except (UnidentifiedImageError, OSError, SyntaxError) as exc:
            raise InputError(
                f"cannot read image {f} ({type(exc).__name__})", "remove or replace the file"
            ) from None
        labels.append(label)
    images = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()
    return ImageSet(images, torch.tensor(labels, dtype=torch.int64), classes, source=source, split=split)


def _load_folder(root: Path, split: str, use_all: bool) -> ImageSet:
    if (root / "train").is_dir() and (root / "val").is_dir():
        classes = [p.name for p in _class_dirs(root / "train")]
        if not classes:
            raise InputError(f"{root / 'train'} has no class folders", "use train/<class>/<image> layout")
        if split == "val":
            return _check_enough(
                _read_images(_list_folder(root / "val", classes), classes, str(root), split), root, split
            )
        if (root / "calib").is_dir():
            sub = "calib" if split == "calib" else "train"
            return _check_enough(
                _read_images(_list_folder(root / sub, classes), classes, str(root), split), root, split
            )
        items = _list_folder(root / "train", classes)
        n_calib = max(1, int(len(items) * 0.15)) if items else 0
        order = np.random.default_rng(0).permutation(len(items))
        chosen = set(order[:n_calib].tolist()) if split == "calib" else set(order[n_calib:].tolist())
        return _check_enough(
            _read_images([it for i, it in enumerate(items) if i in chosen], classes, str(root), split),
            root,
            split,
        )
    class_dirs = _class_dirs(root)
    if not class_dirs:
        raise InputError(
            f"{root} has no class folders",
            "use ImageFolder layout: DIR/<class>/<image> (or DIR/train, DIR/val)",
        )
    classes = [p.name for p in class_dirs]
    items = _list_folder(root, classes)
    if not use_all and items:
        items = [items[i] for i in _split_indices(len(items), split)]
    return _check_enough(_read_images(items, classes, str(root), split), root, split)


# ------------------------------------------------------------------------------------------------- npz
def _load_npz(path: Path, split: str, use_all: bool) -> ImageSet:
    try:
        with np.load(path, allow_pickle=False) as data:
            if "images" not in data or "labels" not in data:
                raise InputError(
                    f"{path} lacks 'images' or 'labels'", "save it with np.savez(f, images=..., labels=...)"
                )
            images = np.asarray(data["images"])
            labels = np.asarray(data["labels"])
            classes = [str(c) for c in data["classes"]] if "classes" in data else None
    except InputError:
        raise
    except ValueError as exc:
        raise InputError(
            f"{path} holds pickled objects or is malformed ({exc})", "store plain numeric arrays"
        ) from None
    except (OSError, EOFError, Exception) as exc:  # zipfile.BadZipFile etc.
        raise InputError(f"cannot read {path} ({type(exc).__name__})", "re-create the .npz") from None
    if images.ndim == 3:
        images = images[:, None]
    if images.ndim != 4:
        raise InputError(f"{path}: images have shape {images.shape}", "use (N, C, H, W) or (N, H, W, C)")
    if images.shape[1] not in (1, 3, 4) and images.shape[-1] in (1, 3, 4):
        images = images.transpose(0, 3, 1, 2)
    if images.shape[1] not in (1, 3, 4):
        raise InputError(
            f"{path}: cannot find the channel axis in shape {images.shape}", "use 1, 3 or 4 channels"
        )
    if len(images) != len(labels) or labels.ndim != 1:
        raise InputError(
            f"{path}: {len(images)} images but labels of shape {labels.shape}",
            "give exactly one label per image",
        )
    if np.issubdtype(images.dtype, np.floating):
        if not np.isfinite(images).all():
            raise InputError(
                f"{path}: images contain NaN or infinite values", "clean the data before using it"
            )
        hi = float(images.max()) if images.size else 0.0
        images = images * 255.0 if hi <= 1.0 + 1e-6 else images
        images = np.clip(np.rint(images), 0, 255).astype(np.uint8)
    elif images.dtype != np.uint8:
        images = np.clip(images, 0, 255).astype(np.uint8)
    if not np.issubdtype(labels.dtype, np.integer):
        if (
            np.issubdtype(labels.dtype, np.floating)
            and np.isfinite(labels).all()
            and (labels == np.round(labels)).all()
        ):
            labels = labels.astype(np.int64)
        else:
            raise InputError(f"{path}: labels must be whole class indices", "store integer labels 0..C-1")
    if labels.size and labels.min() < 0:
        raise InputError(f"{path}: negative labels", "store integer labels 0..C-1")
    images = {1: np.repeat(images, 3, axis=1), 3: images, 4: images[:, :3]}[images.shape[1]]
    n_classes = len(classes) if classes else int(labels.max()) + 1 if labels.size else 0
    if labels.size and labels.max() >= n_classes:
        raise InputError(
            f"{path}: label {labels.max()} but only {n_classes} class names", "fix 'classes' or the labels"
        )
    classes = classes or [str(i) for i in range(n_classes)]
    idx = np.arange(len(labels)) if use_all else _split_indices(len(labels), split)
    out = ImageSet(
        torch.from_numpy(np.ascontiguousarray(images[idx])),
        torch.from_numpy(labels[idx].astype(np.int64)),
        classes,
        source=str(path),
        split=split,
    )
    return _check_enough(out, path, split)
