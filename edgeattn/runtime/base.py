"""The runner interface and the registry of runner kinds (`RUNNERS`).

A runner declares everything other modules ask about it — which file suffixes it serves by default,
which artifact kinds it can run, whether it can run (and measure speed) on this machine, and how to
check an artifact before any timing — so adding a runtime is adding one module that registers a
`Runner` subclass. This module imports no runner; `edgeattn.runtime` (the package) imports them all.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edgeattn.errors import InputError
from edgeattn.manifest import Precision
from edgeattn.models.config import InputSpec
from edgeattn.registry import Registry


class Runner:
    """Runs one artifact on its runtime. Subclasses set the attributes and implement `run`."""

    runtime: str = ""  # e.g. "onnxruntime 1.32.0 (CPUExecutionProvider)"
    kind: str = ""  # registry key
    suffixes: tuple[str, ...] = ()  # artifacts this runner serves by default (`--runtime auto`)
    serves: tuple[str, ...] = ()  # artifact kinds it can run (default: its own kind)
    input_spec: InputSpec
    num_classes: int
    precision: Precision = "fp32"
    max_batch: int | None = None  # None: any batch size
    image_input: bool = False  # the artifact takes 0..255 images and normalises itself
    # Set where the runtime times each run itself (e.g. performance.now() inside a browser page): `run`
    # then leaves that latency in `run_ms`, and benchmarks time with it instead of the host's clock.
    run_clock: str = ""
    run_ms: float | None = None

    def run(self, x: np.ndarray) -> np.ndarray:
        """Logits (N, classes) for a prepared float32 NCHW batch (see `prepare`)."""
        raise NotImplementedError

    def prepare(self, images: Any) -> np.ndarray:
        """uint8 (N, 3, H, W) images -> this artifact's input: resized (a no-op for a `FileSet`'s
        batches, already cropped by timm's transform), then normalised unless the artifact normalises
        itself (`image_input`: 0..255 RGB in)."""
        from edgeattn.data.imageset import normalize, resize_uint8

        x = resize_uint8(images, self.input_spec)
        x = x if self.image_input else normalize(x / 255.0, self.input_spec)
        return x.numpy().astype(np.float32)

    def predict(self, images: Any, batch_size: int = 64) -> np.ndarray:
        """Logits for uint8 images, in batches no larger than the artifact allows."""
        step = min(batch_size, self.max_batch or batch_size)
        outs = []
        for i in range(0, len(images), step):
            x = self.prepare(images[i : i + step])
            if self.max_batch and len(x) < self.max_batch:  # static-batch artifact: pad the last batch
                pad = np.repeat(x[-1:], self.max_batch - len(x), axis=0)
                outs.append(self.run(np.concatenate([x, pad]))[: len(x)])
            else:
                outs.append(self.run(x))
        return np.concatenate(outs) if outs else np.empty((0, self.num_classes), np.float32)

    def info(self) -> dict[str, Any]:
        return {"kind": self.kind, "runtime": self.runtime, "precision": self.precision}

    def close(self) -> None:  # noqa: B027  (optional hook)
        pass

    @classmethod
    def unavailable_reason(cls) -> str | None:
        """None when this runtime can run here, else why not (and what to install)."""
        return None

    @classmethod
    def speed_unavailable_reason(cls) -> str | None:
        """None when a latency measured here is this runtime's real speed, else why not."""
        return cls.unavailable_reason()

    @classmethod
    def preflight(cls, path: Path) -> None:
        """Fail in one line, before any timing, when `path` cannot be what this runner runs."""
        from edgeattn.manifest import read_manifest

        read_manifest(path)  # manifest present, well-formed, and its sha256 matches the file

    @classmethod
    def kinds_served(cls) -> tuple[str, ...]:
        return cls.serves or (cls.kind,)

    @classmethod
    def recognises(cls, path: Path) -> bool:
        """Whether `path` is an artifact of this runner's own kind (by default: by its suffix)."""
        return path.suffix.lower() in cls.suffixes


RUNNERS: Registry[type[Runner]] = Registry("runtime")


def suffix_kinds() -> dict[str, str]:
    """File suffix -> the runner that serves it by default (from the runners' own declarations)."""
    return {suffix: name for name, runner in RUNNERS.items() for suffix in runner.suffixes}


def artifact_kind(path: Path | str) -> str:
    """The runner kind whose own artifacts `path` is (the first runner that recognises it)."""
    path = Path(path)
    for name, runner in RUNNERS.items():
        if runner.recognises(path):
            return name
    kinds = suffix_kinds()
    raise InputError(
        f"cannot tell what kind of artifact {path} is",
        f"use one of: {', '.join(sorted(kinds))}, or a folder written by `edgeattn export --target web`",
    )


def open_runner(path: Path | str, runtime: str | None = None, **options: Any) -> Runner:
    """Open `path` on `runtime` (default: the runtime its kind is served by); a runtime that cannot
    run that kind of artifact is refused in one line."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"artifact {path} does not exist", "check the path")
    if runtime in (None, "auto"):
        return RUNNERS.get(artifact_kind(path))(path, **options)
    runner = RUNNERS.get(runtime)
    kind = artifact_kind(path)
    if kind not in runner.kinds_served():
        able = [name for name, r in RUNNERS.items() if kind in r.kinds_served()]
        raise InputError(
            f"--runtime {runtime} cannot run {path.name} (a {kind} artifact)",
            f"use --runtime {' or '.join(able)}, or export the model for {runtime}",
        )
    return runner(path, **options)
