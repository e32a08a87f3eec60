"""Training data: timm's own train transform, reproducible whatever the number of loader workers.

`augment="timm"` feeds every training image through `create_transform(**resolve_data_config(...),
is_training=True)` for the model's `InputSpec` (RandomResizedCrop at the spec's interpolation,
horizontal flip, colour jitter, ToTensor, Normalize with the spec's mean/std) — what a timm training
script does. Those transforms draw from Python's `random` and torch's global generator, so each image
is transformed under a seed of its own, derived from (training seed, epoch, index) by `EpochSeeded`,
the sampler: the same seed gives the same pixels, in 0, 2 or 16 workers, on one process or under
torchrun. `"light"` is the tensor jitter of `edgeattn.train.loop.augment_batch` (used on the
in-memory sets: digits and text are not mirror-symmetric); `"auto"` picks timm for image files.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from edgeattn.data.files import Entry, decode_rgb
from edgeattn.data.imageset import ImageSet
from edgeattn.data.stream import FileSet, ModelInputDataset, spec_key, timm_transform
from edgeattn.models.config import InputSpec

AUGMENTS = ("auto", "timm", "light", "none")


def resolve_augment(mode: str, data: ImageSet | FileSet) -> str:
    """`auto` -> `timm` for image files (folders, file lists), `light` for in-memory sets."""
    if mode == "auto":
        return "timm" if isinstance(data, FileSet) else "light"
    return mode


def timm_train_transform(spec: InputSpec) -> Any:
    """timm's train transform for `spec` (PIL image -> augmented, normalised float tensor)."""
    return timm_transform(spec_key(spec), True)


def sample_seed(seed: int, epoch: int, index: int) -> int:
    """The seed of image `index`'s augmentation in `epoch` (well mixed: no two nearby runs collide)."""
    return int(np.random.SeedSequence([seed, epoch, index]).generate_state(1, np.uint64)[0] >> 1)


def seeded(seed: int, transform: Callable[[Any], Any], img: Any) -> Any:
    """`transform(img)` with Python's and torch's generators seeded by `seed`, restored afterwards
    (with 0 workers this runs in the training process, whose generators the loop relies on)."""
    py_state, torch_state = random.getstate(), torch.get_rng_state()
    random.seed(seed)
    torch.manual_seed(seed)
    try:
        return transform(img)
    finally:
        random.setstate(py_state)
        torch.set_rng_state(torch_state)


class EpochSeeded(Sampler):
    """Yields (index, seed) for each index of `base` (a shuffling or distributed sampler); `set_epoch`
    moves both to the next epoch."""

    def __init__(self, base: Sampler, seed: int) -> None:
        self.base, self.seed, self.epoch = base, int(seed), 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)
        if hasattr(self.base, "set_epoch"):
            self.base.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.base)  # type: ignore[arg-type]

    def __iter__(self) -> Iterator[tuple[int, int]]:
        for i in self.base:
            yield int(i), sample_seed(self.seed, self.epoch, int(i))


class AugmentedFiles(Dataset):
    """Item (index, seed): (timm-augmented float CHW, label, path, error or ""), decoded in a worker;
    an undecodable file travels back as an error (`ModelInputDataset.collate`)."""

    collate = staticmethod(ModelInputDataset.collate)

    def __init__(self, entries: list[Entry], spec: InputSpec) -> None:
        self.entries, self.spec = entries, spec
        self.transform = timm_train_transform(spec)  # here, so forked workers inherit timm's import

    def __len__(self) -> int:
        return len(self.entries)

    def __getitem__(self, key: tuple[int, int]) -> tuple[torch.Tensor, int, str, str]:
        i, seed = key
        path, label = self.entries[i]
        try:
            return seeded(seed, self.transform, decode_rgb(path)), label, path, ""
        except Exception as exc:  # noqa: BLE001  any failure to decode is a bad file, named by the caller
            return torch.zeros(3, *self.spec.size), label, path, f"{type(exc).__name__}: {exc}"


class AugmentedImages(Dataset):
    """Item (index, seed): (timm-augmented float CHW, label) of an in-memory uint8 image."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, spec: InputSpec) -> None:
        self.images, self.labels, self.spec = images, labels, spec
        self.transform = timm_train_transform(spec)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, key: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
        from PIL import Image

        i, seed = key
        img = Image.fromarray(self.images[i].permute(1, 2, 0).numpy())
        return seeded(seed, self.transform, img), self.labels[i]


def training_dataset(data: ImageSet | FileSet, spec: InputSpec, mode: str) -> Dataset:
    """What the training loader reads for augmentation `mode` (resolved: timm, light or none);
    timm's datasets take (index, seed) keys from `EpochSeeded`."""
    if mode == "timm":
        if isinstance(data, FileSet):
            return AugmentedFiles(data.entries, spec)
        return AugmentedImages(data.images, data.labels, spec)
    return data.tensor_dataset(spec)
