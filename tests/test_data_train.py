"""Training reads image files through timm's own train transform (reproducible in any number of loader
workers), shards them with a DistributedSampler under torchrun, and keeps evaluation on the eval
transform."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys

import pytest
import torch
from helpers.models import REPO
from helpers.photos import write_photo_folder
from PIL import Image

from edgeattn.data import DataConfig, load_split
from edgeattn.data.augment import (
    AugmentedFiles,
    EpochSeeded,
    resolve_augment,
    timm_train_transform,
    training_dataset,
)
from edgeattn.data.stream import ModelInputDataset, timm_eval_transform
from edgeattn.models.config import InputSpec
from edgeattn.train.loop import training_sampler

SPEC = InputSpec(size=(48, 40), mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5), interpolation="bicubic")


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    root = tmp_path_factory.mktemp("photos")
    write_photo_folder(root / "train", per_class=6)
    write_photo_folder(root / "val", per_class=3)
    return root


def timm_train_reference(path, seed: int) -> torch.Tensor:
    """What a timm training script feeds the model, with Python's and torch's generators at `seed`."""
    from timm.data import create_transform, resolve_data_config

    cfg = resolve_data_config(
        {
            "input_size": (3, *SPEC.size),
            "interpolation": SPEC.interpolation,
            "mean": SPEC.mean,
            "std": SPEC.std,
            "crop_pct": SPEC.crop_pct,
        }
    )
    transform = create_transform(**cfg, is_training=True)
    random.seed(seed)
    torch.manual_seed(seed)
    with Image.open(path) as im:
        return transform(im.convert("RGB"))


def test_folder_training_input_is_timms_train_transform(photos):
    train = load_split(str(photos), "train")
    mode = resolve_augment("auto", train)
    ds = training_dataset(train, SPEC, mode)
    assert mode == "timm" and isinstance(ds, AugmentedFiles)
    names = [type(t).__name__ for t in timm_train_transform(SPEC).transforms]
    assert names[:3] == ["RandomResizedCropAndInterpolation", "RandomHorizontalFlip", "ColorJitter"]
    for i, seed in ((0, 11), (3, 12), (7, 13)):
        x, label, path, err = ds[(i, seed)]
        assert not err and (path, label) == tuple(train.entries[i])
        assert torch.equal(x, timm_train_reference(path, seed)), path
    # Negative controls: another seed crops differently; the eval transform is not the train one.
    x, _, path, _ = ds[(0, 11)]
    assert (x - ds[(0, 14)][0]).abs().max() > 0.1
    with Image.open(path) as im:
        assert (x - timm_eval_transform(SPEC)(im.convert("RGB"))).abs().max() > 0.1
    # Turned off: the eval transform; in-memory sets keep the light tensor jitter under `auto`.
    assert isinstance(training_dataset(train, SPEC, resolve_augment("none", train)), ModelInputDataset)
    digits = load_split("builtin:digits", "calib", 32)
    assert resolve_augment("auto", digits) == "light"
    assert training_dataset(digits, SPEC, "timm")[(0, 5)][0].shape == (3, *SPEC.size)


def test_distributed_sampler_shards_are_disjoint_and_cover(photos):
    for n in (10, 11):
        ds = list(range(n))
        shards = []
        for rank in (0, 1):
            sampler = training_sampler(ds, torch.Generator(), 7, "timm", (rank, 2))
            assert isinstance(sampler, EpochSeeded)
            sampler.set_epoch(0)
            first = [i for i, _ in sampler]
            sampler.set_epoch(1)
            assert [i for i, _ in sampler] != first  # reshuffled every epoch
            shards.append(first)
        assert len(shards[0]) == len(shards[1]) == -(-n // 2)
        assert set(shards[0]) | set(shards[1]) == set(range(n))
        overlap = set(shards[0]) & set(shards[1])
        assert len(overlap) == (2 * -(-n // 2) - n)  # only the padding DistributedSampler adds
    # Negative control: without a world, one process sees everything.
    assert len(training_sampler(list(range(10)), torch.Generator(), 7, "timm", None)) == 10


def test_training_on_files_is_reproducible_in_any_worker_count(photos, run_cli, tmp_path):
    """Random augmentation in 2 loader workers: the same seed writes the same checkpoint bytes, also
    in 0 workers; another seed or no augmentation writes other bytes (the augmentation reaches them)."""
    args = ["train", "--model", "attn_vgg11", "--option", "width=0.25", "--input-size", "32"]
    args += ["--data", photos, "--epochs", "2", "--batch-size", "4"]
    runs = {
        "a": ["--workers", "2"],
        "b": ["--workers", "2"],
        "c": ["--workers", "0"],
        "d": ["--workers", "2", "--seed", "1"],
        "e": ["--workers", "2", "--augment", "none"],
    }
    for name, extra in runs.items():
        code, stdout, stderr = run_cli(*args, *extra, "--out", tmp_path / f"{name}.pt")
        assert code == 0, stdout + stderr
    data = {name: (tmp_path / f"{name}.pt").read_bytes() for name in runs}
    assert data["a"] == data["b"] == data["c"]
    assert data["d"] != data["a"] and data["e"] != data["a"]
    code, _, stderr = run_cli(*args, "--augment", "random", "--out", tmp_path / "f.pt")
    assert code == 2 and "--augment" in stderr and len(stderr.strip().splitlines()) == 1, stderr


def test_torchrun_qat_on_a_folder_shards_with_distributed_sampler(photos, tmp_path):
    """Two processes (gloo): each trains on its half of the folder's training images (11, after the
    calibration share), rank 0 writes the checkpoint."""
    from helpers.models import tiny_config

    from edgeattn.checkpoint import ModelHandle, load_checkpoint, save_checkpoint

    torch.manual_seed(0)
    ckpt = save_checkpoint(
        ModelHandle.new(tiny_config("attn_vgg11_linear", num_classes=2)), tmp_path / "m.pt"
    )
    n_train = len(load_split(str(photos), "train", options=DataConfig()))
    out, js = tmp_path / "ddp.pt", tmp_path / "ddp.json"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"]
    cmd += ["-m", "edgeattn", "quantize", str(ckpt), "--data", str(photos), "--qat", "--epochs", "1"]
    cmd += ["--calib-size", "2", "--batch-size", "2", "--workers", "1", "--out", str(out), "--json", str(js)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "EDGEATTN_QUIET": "1"}
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    summary = json.loads(js.read_text())
    assert summary["qat"]["distributed"] == {"world": 2, "backend": "gloo"}
    half = -(-n_train // 2)
    assert summary["qat"]["epochs"][0]["images"] == half - half % 2  # whole batches of rank 0's half
    assert load_checkpoint(out).kind == "int8"


@pytest.mark.gpu
def test_batches_are_pinned_only_where_cuda_is(photos):
    """Pinned host memory only helps a copy to CUDA: batches are pinned exactly when CUDA is there."""
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device on this machine: pinning is off here by design")
    val = load_split(str(photos), "val", options=DataConfig(workers=1))
    batch = next(iter(val.batches(SPEC, batch_size=2)))
    assert batch.pixels.is_pinned() and batch.labels.is_pinned()
    x = batch.pixels.to("cuda", non_blocking=True)
    assert torch.equal(x.cpu(), batch.pixels)


def test_augment_accepts_the_old_switch_and_refuses_unknown_values():
    """Recipes written when `augment` was true/false keep working; anything else is refused."""
    from pydantic import ValidationError

    from edgeattn.train import TrainConfig

    assert TrainConfig().augment == "auto"
    assert TrainConfig(augment=True).augment == "auto" and TrainConfig(augment=False).augment == "none"
    with pytest.raises(ValidationError):
        TrainConfig(augment="flip")
