"""Atomic file writing: nothing half-written is ever left at the destination.

Every command that writes a file goes through `atomic_output`: it writes to a temporary sibling and
renames over the destination only when the write succeeded.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from edgeattn.errors import InputError


def check_writable(path: Path, overwrite: bool = True, folder: bool = False) -> Path:
    """Fail early (before any work) when `path` cannot be written (`folder`: the output is a folder)."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise InputError(f"{path} already exists", "pass --overwrite or choose another --out")
    if path.exists() and path.is_dir() and not path.suffix and not folder:
        raise InputError(f"{path} is a directory", "give a file path for --out")
    parent = path.parent if str(path.parent) else Path(".")
    probe = parent
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir() or not os.access(probe, os.W_OK):
        raise InputError(f"cannot write to {parent}", "choose an --out in a writable folder")
    try:  # os.access is always True for root; only creating a file proves the folder takes one
        fd, name = tempfile.mkstemp(prefix=".edgeattn-probe-", dir=probe)
        os.close(fd)
        os.unlink(name)
    except OSError:
        raise InputError(f"cannot write to {parent}", "choose an --out in a writable folder") from None
    return path


@contextlib.contextmanager
def atomic_output(path: Path | str) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success rename it over `path` (file or folder)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp" + path.suffix, dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    tmp.unlink()  # the writer creates it (some writers want a fresh path, e.g. a .mlpackage folder)
    try:
        yield tmp
        if not tmp.exists():
            raise RuntimeError(f"writer produced nothing for {path}")
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp) if tmp.is_dir() else tmp.unlink()


def write_text(path: Path | str, text: str) -> Path:
    with atomic_output(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def write_json(path: Path | str, data: Any) -> Path:
    return write_text(path, json.dumps(data, indent=2, sort_keys=False, default=json_default) + "\n")


def json_default(obj: Any) -> Any:
    """JSON for what `json` cannot write itself: arrays, paths, pydantic models, dataclasses."""
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "model_dump"):
        return obj.model_dump()
    if hasattr(obj, "__dataclass_fields__"):
        import dataclasses

        return dataclasses.asdict(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def sha256_of(path: Path | str) -> str:
    """sha256 of a file, or of a folder's files in sorted order (for .mlpackage bundles)."""
    path = Path(path)
    h = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for f in files:
        if path.is_dir():
            h.update(str(f.relative_to(path)).encode())
        with open(f, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()
