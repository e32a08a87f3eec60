"""Content-addressed step cache: a step whose inputs did not change is not redone.

A step's key is the sha256 of its own config and the sha256 of every input file. After a step
succeeds, a record (key, the sha256 of each output, the step's JSON summary) is written beside its
outputs. The next run reuses the step only if the key matches and every output still exists with the
recorded hash — an output edited or deleted by hand makes the step run again. Steps skipped because
a backend is missing are recorded too, with a fingerprint of the environment, so a machine that later
gains TensorRT tries again.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgeattn import __version__
from edgeattn.fileio import sha256_of, write_json

CACHE_FORMAT = 1


class HashCache:
    """sha256 of files and folders, remembered per (path, size, mtime) for the length of one run."""

    def __init__(self) -> None:
        self._known: dict[tuple[str, int, int], str] = {}

    def __call__(self, path: Path) -> str:
        path = Path(path)
        stat = _stat_signature(path)
        digest = self._known.get(stat)
        if digest is None:
            digest = sha256_of(path)
            self._known[stat] = digest
        return digest


def _stat_signature(path: Path) -> tuple[str, int, int]:
    if path.is_dir():
        files = [p.stat() for p in path.rglob("*") if p.is_file()]
        return (
            str(path.resolve()),
            sum(s.st_size for s in files) + len(files),
            max((s.st_mtime_ns for s in files), default=0),
        )
    st = path.stat()
    return (str(path.resolve()), st.st_size, st.st_mtime_ns)


def data_fingerprint(spec: str, hasher: HashCache) -> str:
    """What a data spec's content is, independent of where it lies: built-in sets by name and the
    code that renders them; files by sha256; folders by the relative path, size and mtime of every
    file (hashing a whole image tree on every run would cost more than the steps it saves)."""
    if spec.startswith("builtin:"):
        code = hashlib.sha256()
        for f in sorted((Path(__file__).parents[1] / "data").glob("*.py")):
            code.update(f.read_bytes())
        return f"{spec}:{code.hexdigest()[:16]}"
    flag = "@all" if spec.endswith("@all") else ""
    path = Path(spec.removesuffix("@all"))
    if path.is_file():
        return f"file{flag}:{hasher(path)}"
    if path.is_dir():
        h = hashlib.sha256()
        for f in sorted(p for p in path.rglob("*") if p.is_file()):
            st = f.stat()
            h.update(f"{f.relative_to(path)}:{st.st_size}:{st.st_mtime_ns}\n".encode())
        return f"folder{flag}:{h.hexdigest()}"
    return spec


def environment_fingerprint() -> dict[str, str]:
    """What decides whether an optional backend is available: OS, machine and backend versions."""
    from edgeattn.manifest import library_versions

    versions = library_versions("coremltools", "tensorrt", "nncf")
    return {
        "system": platform.system(),
        "machine": platform.machine(),
        **versions,
        "cuda_visible": os.environ.get("CUDA_VISIBLE_DEVICES", ""),
    }


def step_key(step_id: str, config: dict[str, Any], inputs: dict[str, str]) -> str:
    """The cache key: what the step is, how it is configured, and the content of what it reads."""
    blob = json.dumps(
        {
            "format": CACHE_FORMAT,
            "edgeattn": __version__,
            "step": step_id,
            "config": config,
            "inputs": inputs,
        },
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(blob.encode()).hexdigest()


@dataclass
class CacheRecord:
    key: str
    status: str  # "done" | "skipped"
    outputs: dict[str, str] = field(default_factory=dict)  # path relative to the run folder -> sha256
    result: dict[str, Any] = field(default_factory=dict)
    reason: str = ""
    environment: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0

    @classmethod
    def read(cls, path: Path) -> CacheRecord | None:
        try:
            data = json.loads(path.read_text())
            return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})
        except (OSError, ValueError, TypeError, KeyError):
            return None

    def write(self, path: Path) -> None:
        write_json(path, self.__dict__)


def still_valid(record: CacheRecord | None, key: str, root: Path, hasher: HashCache) -> bool:
    """True when `record` was made for `key` and its outputs are still there, unchanged."""
    if record is None or record.key != key:
        return False
    if record.status == "skipped":
        return record.environment == environment_fingerprint()
    for rel, digest in record.outputs.items():
        path = root / rel
        if not path.exists() or hasher(path) != digest:
            return False
    return True
