"""Listing image files (folders, file lists, class maps) and decoding one image, without holding pixels.

Listing only touches names, so a 50,000-image folder is listed in well under a second; decoding happens
later, per image, in the data loader's workers (`edgeattn.data.stream`). `decode_rgb` turns whatever
PIL reads (grayscale, palette, RGBA, CMYK, 16-bit, EXIF-rotated) into upright 8-bit RGB the way
timm's loader does (`convert("RGB")`; alpha is dropped), 16-bit scaled rather than clipped.
"""

from __future__ import annotations

import csv
from pathlib import Path

from edgeattn.errors import InputError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm"}
LIST_SUFFIXES = {".csv", ".txt", ".tsv"}
Entry = tuple[str, int]  # (path, label); label -1: unlabeled


def is_image(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith(".")


def class_dirs(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))


IMAGENET_1K = "imagenet-1k"  # `--classes imagenet-1k`: the 1000 WordNet ids, in timm's label order


def read_class_file(path: Path) -> list[str]:
    """Class names, one a line, in label order (blank lines and `#` comments ignored);
    `imagenet-1k` (when no such file exists) is the standard ImageNet-1k synset order timm ships."""
    if str(path) == IMAGENET_1K and not Path(path).exists():
        from timm.data import ImageNetInfo

        return list(ImageNetInfo().label_names())
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(
            f"cannot read class list {path} ({type(exc).__name__})", "give a UTF-8 text file"
        ) from None
    names = [ln.strip() for ln in lines if ln.strip() and not ln.strip().startswith("#")]
    if not names:
        raise InputError(f"class list {path} names no class", "write one class name a line, in label order")
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise InputError(f"class list {path} names {dupes[0]!r} twice", "name each class once")
    return names


def list_images(root: Path) -> list[Path]:
    return sorted(f for f in root.rglob("*") if f.is_file() and is_image(f))


def list_class_folder(root: Path, classes: list[str], what: str = "") -> list[Entry]:
    """(path, label) of every image under root/<class>/; a class folder not in `classes` is an error."""
    known = {c: i for i, c in enumerate(classes)}
    found = class_dirs(root)
    unknown = [c for c in found if c not in known]
    if unknown:
        raise InputError(
            f"{root} has class {unknown[0]!r}, which {what or 'the class map'} does not have",
            "add the class to the --classes file"
            if what.startswith("--classes")
            else "give the same class folders in train/ and val/ (or a --classes file naming every class)",
        )
    entries: list[Entry] = []
    for cls in found:
        entries += [(str(f), known[cls]) for f in list_images(root / cls)]
    if not entries:
        loose = list_images(root) if root.is_dir() else []
        if loose and not found:
            raise InputError(
                f"{root} holds images but no class folders",
                "use one folder per class: DIR/<class>/<image> (or --calib DIR for unlabeled calibration images)",
            )
        raise InputError(
            f"no images found in {root}",
            f"put images ({', '.join(sorted(IMAGE_SUFFIXES))}) in one folder per class",
        )
    return entries


def list_unlabeled(root: Path) -> list[Entry]:
    """Every image under root (any depth), label -1: calibration needs no labels."""
    if not root.is_dir():
        raise InputError(f"calibration folder {root} does not exist", "give a folder of images")
    entries = [(str(f), -1) for f in list_images(root)]
    if not entries:
        raise InputError(
            f"no images found in {root}", f"put images ({', '.join(sorted(IMAGE_SUFFIXES))}) in it"
        )
    return entries


def read_file_list(path: Path, classes: list[str] | None) -> tuple[list[Entry], list[str]]:
    """A CSV or text list of `path,label` lines (paths relative to the list; label a class name or an
    index; an optional `path,label` header). Returns the entries and the class names."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(
            f"cannot read file list {path} ({type(exc).__name__})", "give a UTF-8 text file"
        ) from None
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    rows = [r for r in csv.reader(text.splitlines(), delimiter=delimiter) if r and r[0].strip()]
    if rows and [c.strip().lower() for c in rows[0][:2]] == ["path", "label"]:
        rows = rows[1:]
    if not rows:
        raise InputError(f"file list {path} names no image", "write one `path,label` line per image")
    bad = next((i for i, r in enumerate(rows) if len(r) != 2 or not r[1].strip()), None)
    if bad is not None:
        raise InputError(
            f"{path}: entry {bad + 1} ({delimiter.join(rows[bad])!r}) is not `path,label`",
            "write one `path,label` line per image (quote paths that contain commas)",
        )
    labels = [r[1].strip() for r in rows]
    numeric = all(lb.isdigit() for lb in labels)
    names = list(classes) if classes else None
    if names is None:
        names = [str(i) for i in range(max(map(int, labels)) + 1)] if numeric else sorted(set(labels))
    index = {c: i for i, c in enumerate(names)}
    entries: list[Entry] = []
    for (rel, _), lb in zip(rows, labels, strict=True):
        f = (path.parent / rel.strip()).resolve()
        if not f.is_file():
            raise InputError(
                f"{path} names {rel.strip()!r}, which does not exist ({f})",
                "fix the path (relative to the list file)",
            )
        if lb in index:
            label = index[lb]
        elif numeric and int(lb) < len(names):
            label = int(lb)
        else:
            raise InputError(
                f"{path}: label {lb!r} is not one of the {len(names)} classes",
                "use a class name of the class map or an index 0..C-1",
            )
        entries.append((str(f), label))
    return entries, names


def decode_rgb(path: str):  # noqa: ANN201  (PIL.Image.Image; PIL is imported lazily)
    """Upright 8-bit RGB of any image PIL reads; raises OSError/ValueError/SyntaxError when it cannot."""
    from PIL import Image, ImageOps

    with Image.open(path) as im:
        im.load()  # a truncated file fails here, not later in a worker's transform
        im = ImageOps.exif_transpose(im)
        if im.mode.startswith("I"):  # 16/32-bit integer: scale to 8 bits (convert() would clip at 255)
            im = _int_to_l(im)
        return im.convert("RGB")


def _int_to_l(im):  # noqa: ANN001, ANN202
    """16/32-bit integer images (16-bit PNGs open as I or I;16): 0..65535 scaled to 0..255."""
    import numpy as np
    from PIL import Image

    a = np.asarray(im, dtype=np.int64)
    hi = 65535 if a.max(initial=0) > 255 else 255
    return Image.fromarray(np.clip(a * 255 // hi, 0, 255).astype(np.uint8), mode="L")
