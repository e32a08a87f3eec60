"""`FileSet`: an image set backed by files, decoded and transformed batch by batch in loader workers.

Memory stays flat however many images there are: only (path, label) pairs are held, and a torch
`DataLoader` decodes each image (`files.decode_rgb`) and applies timm's own eval transform
(`resolve_data_config` + `create_transform` from the model's `InputSpec`): shorter side to
size / crop_pct, centre crop, the spec's interpolation. Batches come out as uint8 (N, 3, H, W) at the
model's size — what timm's `ToTensor` + `Normalize` (and every runner's `prepare`) then normalise — so
a checkpoint, an exported artifact, the device agent and timm see the same pixels.

A file that cannot be decoded stops the pass with its name, or with `skip_bad_images` is left out
(and counted in `skipped`). `FileSet` offers what `ImageSet` does (`batches`, `pixels`, `subset`,
`take`, `labels`, `classes`), so consumers take either.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from edgeattn.data.batch import Batch
from edgeattn.data.config import DataConfig
from edgeattn.data.files import Entry, decode_rgb
from edgeattn.data.imageset import normalize
from edgeattn.data.loader import make_loader
from edgeattn.errors import InputError
from edgeattn.models.config import InputSpec


def spec_key(spec: InputSpec) -> tuple:
    return (tuple(spec.size), tuple(spec.mean), tuple(spec.std), spec.interpolation, float(spec.crop_pct))


@lru_cache(maxsize=16)
def timm_transform(key: tuple, is_training: bool) -> Any:
    """timm's own transform (`resolve_data_config` + `create_transform`) for an input spec's `spec_key`."""
    from timm.data import create_transform, resolve_data_config

    size, mean, std, interpolation, crop_pct = key
    cfg = resolve_data_config(
        {
            "input_size": (3, *size),
            "interpolation": interpolation,
            "mean": mean,
            "std": std,
            "crop_pct": crop_pct,
        }
    )
    return create_transform(**cfg, is_training=is_training)


def timm_eval_transform(spec: InputSpec) -> Any:
    """timm's eval transform for `spec` (PIL image -> normalised float tensor)."""
    return timm_transform(spec_key(spec), False)


def geometric_transform(spec: InputSpec) -> Callable[[Any], Any]:
    """The PIL steps of timm's eval transform (resize, centre crop), before ToTensor/Normalize."""
    from torchvision import transforms

    steps = []
    for t in timm_eval_transform(spec).transforms:
        if type(t).__name__ in ("ToTensor", "MaybeToTensor", "PILToTensor", "MaybePILToTensor"):
            break
        steps.append(t)
    return transforms.Compose(steps)


def to_uint8_chw(img: Any) -> torch.Tensor:
    return torch.from_numpy(np.asarray(img, dtype=np.uint8).copy()).permute(2, 0, 1).contiguous()


class FileDataset(Dataset):
    """Item i: (uint8 CHW at the spec's size, label, index, seconds, error or "").

    The transform is built here, in the main process, not lazily in each worker: building it imports
    timm, which forked workers then inherit instead of each importing it again, every pass (measured
    on 2 busy cores: the first batch of 64 JPEGs came 4.6-6.8 s after the 2 workers started, 0.3-0.6 s
    once the main process had imported timm)."""

    def __init__(self, entries: list[Entry], spec: InputSpec) -> None:
        self.entries = entries
        self.spec = spec
        self.geometry: Callable[[Any], Any] = geometric_transform(spec)

    def __len__(self) -> int:
        return len(self.entries)

    def __getitem__(self, i: int) -> tuple:
        path, label = self.entries[i]
        start = time.perf_counter()
        try:
            x = to_uint8_chw(self.geometry(decode_rgb(path)))
            err = ""
        except Exception as exc:  # noqa: BLE001  any failure to decode is a bad file, named by the caller
            x, err = torch.zeros(3, *self.spec.size, dtype=torch.uint8), f"{type(exc).__name__}: {exc}"
        return x, label, i, time.perf_counter() - start, err


def collate(items: list[tuple]) -> Batch:
    bad = [(i, "", err) for _, _, i, _, err in items if err]
    keep = [it for it in items if not it[4]]
    pixels = torch.stack([it[0] for it in keep]) if keep else torch.empty(0, 3, 1, 1, dtype=torch.uint8)
    return Batch(
        pixels=pixels,
        labels=torch.tensor([it[1] for it in keep], dtype=torch.int64),
        index=torch.tensor([it[2] for it in keep], dtype=torch.int64),
        seconds=float(sum(it[3] for it in items)),
        bad=bad,
    )


class ModelInputDataset(Dataset):
    """Item i: (normalised float CHW, label, path, error or "") — timm's full eval transform; for
    training loops. Errors travel back with the batch (`collate`), so the main process names the file
    (an exception raised in a loader worker would arrive as a traceback)."""

    def __init__(self, entries: list[Entry], spec: InputSpec) -> None:
        self.files = FileDataset(entries, spec)

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int, str, str]:
        x, label, _, _, err = self.files[i]
        return normalize(x[None].float() / 255.0, self.files.spec)[0], label, self.files.entries[i][0], err

    @staticmethod
    def collate(items: list[tuple]) -> tuple[torch.Tensor, torch.Tensor, list[tuple[str, str]]]:
        good = [it for it in items if not it[3]]
        x = torch.stack([it[0] for it in good]) if good else torch.empty(0)
        y = torch.tensor([it[1] for it in good], dtype=torch.int64)
        return x, y, [(it[2], it[3]) for it in items if it[3]]


@dataclass
class FileSet:
    """Images listed as (path, label); decoded only while a batch is made."""

    entries: list[Entry]
    classes: list[str]
    source: str = ""
    split: str = ""
    options: DataConfig = field(default_factory=DataConfig)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, error) left out so far
    labeled: bool = True

    def __len__(self) -> int:
        return len(self.entries)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def labels(self) -> torch.Tensor:
        return torch.tensor([lb for _, lb in self.entries], dtype=torch.int64)

    def _with(self, entries: list[Entry]) -> FileSet:
        return FileSet(entries, self.classes, self.source, self.split, self.options, [], self.labeled)

    def subset(self, n: int | None, seed: int = 0) -> FileSet:
        """The same deterministic subset `ImageSet.subset` picks for the same n and seed."""
        if n is None or n >= len(self):
            return self
        idx = torch.randperm(len(self), generator=torch.Generator().manual_seed(seed))[:n].sort().values
        return self._with([self.entries[i] for i in idx.tolist()])

    def take(self, indices: list[int]) -> FileSet:
        return self._with([self.entries[i] for i in indices])

    def batches(self, spec: InputSpec, batch_size: int = 64) -> Iterator[Batch]:
        """Batches in order; a bad image raises `InputError` naming it, or with `skip_bad_images` is
        dropped from this set (so `labels` and later passes match what was seen)."""
        n_batches = -(-len(self) // batch_size)
        workers = min(self.options.worker_count(), n_batches) if len(self) > batch_size else 0
        self.workers_used = workers
        loader = make_loader(
            FileDataset(self.entries, spec), batch_size=batch_size, workers=workers, collate_fn=collate
        )
        bad: list[int] = []
        for batch in loader:
            for i, _, err in batch.bad:
                path = self.entries[i][0]
                if not self.options.skip_bad_images:
                    raise InputError(
                        f"cannot read image {path} ({err})",
                        "remove or replace the file, or pass --skip-bad-images to leave such files out",
                    )
                bad.append(i)
                self.skipped.append((path, err))
            yield batch
        if bad:
            drop = set(bad)
            self.entries = [e for i, e in enumerate(self.entries) if i not in drop]

    def check_bad(self, bad: list[tuple[str, str]]) -> None:
        """(path, error) of files a training batch could not decode: stop naming the first, or with
        `skip_bad_images` count them."""
        for path, err in bad:
            if not self.options.skip_bad_images:
                raise InputError(
                    f"cannot read image {path} ({err})",
                    "remove or replace the file, or pass --skip-bad-images to leave such files out",
                )
            if (path, err) not in self.skipped:
                self.skipped.append((path, err))

    def pixels(self, spec: InputSpec) -> torch.Tensor:
        """Every image, uint8 at the spec's size — for small subsets only (calibration, explain)."""
        out = [b.pixels for b in self.batches(spec) if len(b.labels)]
        return torch.cat(out) if out else torch.empty(0, 3, *spec.size, dtype=torch.uint8)

    def to_model_input(self, spec: InputSpec) -> torch.Tensor:
        return normalize(self.pixels(spec).float() / 255.0, spec)

    def tensor_dataset(self, spec: InputSpec) -> Dataset:
        return ModelInputDataset(self.entries, spec)

    @property
    def loader_workers(self) -> int:
        return self.options.worker_count()

    workers_used: int = 0  # loader worker processes of the last pass (0: decoded in this process)
