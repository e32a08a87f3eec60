"""Data-set specs: `builtin:NAME`, an ImageFolder directory, a file list (`.csv`/`.txt`), or an `.npz`.

`load_split(spec, split, size)` is the one entry point; everything that takes a data set calls it.
Splits are `train`, `calib` and `val`, always disjoint:
- builtin sets define their own splits (see digits.py);
- an ImageFolder with `train/` and `val/` (and optionally `calib/`) uses them; without `calib/`, the
  calibration split is a fixed 15 % of `train/` that training then does not see;
- a flat ImageFolder, a file list or an `.npz` is split deterministically 60/15/25 by image.
Folders and lists become a streaming `FileSet` (decoded batch by batch, timm's eval transform); the
class map is train/'s class folders (sorted) or `DataConfig.classes`, and a val class outside it is an
error.
Append `@all` to a path spec to use every image for whichever split is asked (e.g. a held-out eval set).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from edgeattn.data.config import DataConfig
from edgeattn.data.files import (
    IMAGE_SUFFIXES,
    LIST_SUFFIXES,
    class_dirs,
    list_class_folder,
    list_unlabeled,
    read_class_file,
    read_file_list,
)
from edgeattn.data.imageset import ImageSet
from edgeattn.data.stream import FileSet
from edgeattn.errors import InputError
from edgeattn.registry import Registry

SPLITS = ("train", "calib", "val")
__all__ = ["IMAGE_SUFFIXES", "SPLITS", "load_split", "load_unlabeled"]

BuiltinLoader = Callable[[str, int], ImageSet]
BUILTIN_DATASETS: Registry[BuiltinLoader] = Registry("built-in data set")


@BUILTIN_DATASETS.register("digits")
def _digits(split: str, size: int) -> ImageSet:
    from edgeattn.data.digits import build_digits

    return build_digits(split, size)


def load_split(
    spec: str, split: str, size: int | None = None, options: DataConfig | None = None
) -> ImageSet | FileSet:
    """One split of the data set `spec`: builtin sets render at `size` (default 64) and `.npz` files
    load into memory (`ImageSet`); folders and file lists are listed, not decoded (`FileSet`)."""
    options = options or DataConfig()
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
        return _load_folder(path, split, use_all, options)
    if path.suffix == ".npz":
        return _load_npz(path, split, use_all)
    if path.suffix.lower() in LIST_SUFFIXES:
        return _load_list(path, split, use_all, options)
    raise InputError(
        f"cannot read data set {path}",
        "give an ImageFolder directory, a .csv/.txt file list (path,label) or an .npz file",
    )


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
def _class_map(root: Path, options: DataConfig) -> list[str]:
    if options.classes is not None:
        return read_class_file(options.classes)
    classes = class_dirs(root)
    if not classes:
        raise InputError(
            f"{root} has no class folders",
            "use ImageFolder layout: DIR/<class>/<image> (or DIR/train, DIR/val; --calib DIR for unlabeled calibration images)",
        )
    return classes


def _files(entries: list, classes: list[str], root: Path, split: str, options: DataConfig) -> FileSet:
    if not entries:
        raise InputError(
            f"split {split!r} of {root} is empty", "add images (or use SPEC@all to use every image)"
        )
    return FileSet(entries, classes, source=str(root), split=split, options=options)


def _load_folder(root: Path, split: str, use_all: bool, options: DataConfig) -> FileSet:
    if not any(root.iterdir()):
        raise InputError(
            f"data folder {root} is empty", "put images in one folder per class: DIR/<class>/<image>"
        )
    if (root / "train").is_dir() and (root / "val").is_dir():
        classes = _class_map(root / "train", options)
        where = f"{root / 'train'}" if options.classes is None else f"--classes {options.classes}"
        if split == "val":
            return _files(list_class_folder(root / "val", classes, where), classes, root, split, options)
        if (root / "calib").is_dir():
            sub = "calib" if split == "calib" else "train"
            return _files(list_class_folder(root / sub, classes, where), classes, root, split, options)
        items = list_class_folder(root / "train", classes, where)
        n_calib = max(1, int(len(items) * 0.15))
        order = np.random.default_rng(0).permutation(len(items))
        chosen = np.sort(order[:n_calib] if split == "calib" else order[n_calib:])
        return _files([items[i] for i in chosen], classes, root, split, options)
    classes = _class_map(root, options)
    items = list_class_folder(root, classes, f"--classes {options.classes}" if options.classes else "")
    if not use_all:
        items = [items[i] for i in _split_indices(len(items), split)]
    return _files(items, classes, root, split, options)


def _load_list(path: Path, split: str, use_all: bool, options: DataConfig) -> FileSet:
    classes = read_class_file(options.classes) if options.classes is not None else None
    items, names = read_file_list(path, classes)
    if not use_all:
        items = [items[i] for i in _split_indices(len(items), split)]
    return _files(items, names, path, split, options)


def load_unlabeled(folder: Path | str, options: DataConfig | None = None) -> FileSet:
    """Every image under `folder`, unlabeled (label -1): calibration data for PTQ (`--calib DIR`)."""
    root = Path(folder)
    fs = FileSet(list_unlabeled(root), [], source=str(root), split="calib", options=options or DataConfig())
    fs.labeled = False
    return fs


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
