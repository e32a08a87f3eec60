"""Data-set specs: builtin:digits, ImageFolder trees, .npz files — and the bad ones."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from edgeattn.data import load_split
from edgeattn.data.digits import source_indices
from edgeattn.errors import InputError
from edgeattn.models.config import InputSpec


def test_digits_splits_are_disjoint_by_source_digit():
    splits = {s: set(source_indices(s).tolist()) for s in ("train", "calib", "val")}
    assert (
        not splits["train"] & splits["calib"]
        and not splits["train"] & splits["val"]
        and not splits["calib"] & splits["val"]
    )
    assert sum(len(v) for v in splits.values()) == 1797


def test_digits_is_deterministic_rgb_at_requested_size():
    a = load_split("builtin:digits", "calib", 32)
    b = load_split("builtin:digits", "calib", 32)
    assert a.images.shape[1:] == (3, 32, 32) and a.images.dtype == torch.uint8
    assert torch.equal(a.images, b.images) and torch.equal(a.labels, b.labels)
    assert a.num_classes == 10 and set(a.labels.tolist()) == set(range(10))
    assert len(a) >= 300  # the default calibration size fits in the calibration split


def _write_folder(root, classes=("cat", "dog"), per_class=4, mode="RGB", size=(20, 24)):
    for c in classes:
        (root / c).mkdir(parents=True)
        for i in range(per_class):
            arr = (np.random.default_rng(i).random((size[1], size[0], len(mode))) * 255).astype(np.uint8)
            Image.fromarray(arr.squeeze() if mode == "L" else arr, mode=mode).save(root / c / f"{i}.png")


def test_imagefolder_with_train_and_val(tmp_path):
    _write_folder(tmp_path / "train", per_class=10)
    _write_folder(tmp_path / "val", per_class=3)
    train, calib, val = (load_split(str(tmp_path), s) for s in ("train", "calib", "val"))
    assert train.classes == ["cat", "dog"] and len(val) == 6
    assert len(train) + len(calib) == 20 and len(calib) >= 1


def test_flat_imagefolder_and_all_suffix(tmp_path):
    _write_folder(tmp_path, per_class=10)
    assert len(load_split(str(tmp_path), "val")) == 5
    assert len(load_split(f"{tmp_path}@all", "val")) == 20


@pytest.mark.parametrize("mode", ["L", "RGBA"])
def test_grayscale_and_rgba_images_become_rgb(tmp_path, mode):
    _write_folder(tmp_path, per_class=4, mode=mode)
    data = load_split(f"{tmp_path}@all", "val")
    assert data.pixels(InputSpec(size=(16, 16))).shape == (8, 3, 16, 16)


def test_empty_folder_is_refused(tmp_path):
    with pytest.raises(InputError, match="is empty"):
        load_split(str(tmp_path), "train")
    Image.new("RGB", (8, 8)).save(tmp_path / "loose.png")
    with pytest.raises(InputError, match="no class folders"):
        load_split(str(tmp_path), "train")
    (tmp_path / "loose.png").unlink()
    (tmp_path / "a").mkdir()
    with pytest.raises(InputError, match="no images"):
        load_split(str(tmp_path), "train")


def test_unreadable_image_is_named(tmp_path):
    _write_folder(tmp_path, per_class=2)
    (tmp_path / "cat" / "broken.png").write_bytes(b"not a png")
    data = load_split(f"{tmp_path}@all", "train")  # listed, not decoded yet
    with pytest.raises(InputError, match="broken.png"):
        data.pixels(InputSpec(size=(16, 16)))


@pytest.mark.parametrize("layout", ["nchw", "nhwc"])
def test_npz_layouts(tmp_path, layout):
    images = np.random.default_rng(0).random((40, 3, 16, 16)).astype(np.float32)
    if layout == "nhwc":
        images = images.transpose(0, 2, 3, 1)
    np.savez(tmp_path / "d.npz", images=images, labels=np.arange(40) % 4)
    data = load_split(str(tmp_path / "d.npz"), "train")
    assert data.images.shape[1:] == (3, 16, 16) and data.num_classes == 4 and len(data) == 24


def test_npz_with_nan_is_refused(tmp_path):
    images = np.zeros((10, 3, 8, 8), np.float32)
    images[3, 0, 0, 0] = np.nan
    np.savez(tmp_path / "d.npz", images=images, labels=np.zeros(10, int))
    with pytest.raises(InputError, match="NaN"):
        load_split(str(tmp_path / "d.npz"), "train")


def test_npz_with_mismatched_labels_is_refused(tmp_path):
    np.savez(tmp_path / "d.npz", images=np.zeros((10, 3, 8, 8), np.uint8), labels=np.zeros(9, int))
    with pytest.raises(InputError, match="labels"):
        load_split(str(tmp_path / "d.npz"), "train")


def test_npz_with_pickled_objects_is_refused(tmp_path):
    np.savez(tmp_path / "d.npz", images=np.array([object()], dtype=object), labels=np.zeros(1, int))
    with pytest.raises(InputError, match="pickled"):
        load_split(str(tmp_path / "d.npz"), "train")


def test_missing_and_unknown_specs():
    with pytest.raises(InputError, match="does not exist"):
        load_split("/nonexistent/data", "train")
    with pytest.raises(InputError, match="unknown built-in"):
        load_split("builtin:cifar", "train")


def test_preprocessing_follows_the_input_spec():
    data = load_split("builtin:digits", "val", 32)
    spec = InputSpec(size=(24, 24), mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))
    x = data.subset(8).to_model_input(spec)
    assert x.shape == (8, 3, 24, 24)
    assert float(x.min()) >= (0 - 0.5) / 0.25 - 1e-5 and float(x.max()) <= (1 - 0.5) / 0.25 + 1e-5


def test_data_build_writes_an_imagefolder_tree(tmp_path, run_cli):
    out = tmp_path / "digits"
    code, _, err = run_cli("data", "build", "builtin:digits", "--size", "16", "--out", str(out))
    assert code == 0, err
    assert len(list((out / "val").rglob("*.png"))) == len(load_split("builtin:digits", "val", 16))
    again = load_split(str(out), "calib")
    assert len(again) == len(load_split("builtin:digits", "calib", 16))
    code, _, err = run_cli("data", "build", "builtin:digits", "--size", "16", "--out", str(out))
    assert code == 2 and "already exists" in err


def test_committed_calibration_sample_loads():
    from pathlib import Path

    sample = Path(__file__).resolve().parents[1] / "calibration" / "digits_calib_sample.npz"
    data = load_split(f"{sample}@all", "calib")
    assert (
        len(data) == 100
        and data.images.shape[1:] == (3, 32, 32)
        and data.classes == [str(i) for i in range(10)]
    )
