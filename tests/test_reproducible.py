"""The same command with the same seed on the same machine writes the same checkpoint, byte for byte
(seeded weights, data order, augmentation; deterministic kernels; no wall-clock time in the file)."""

from __future__ import annotations

import numpy as np
import pytest

from edgeattn.fileio import sha256_of


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    """200 scikit-learn digits at 32x32 as an .npz: small enough for three training runs."""
    from sklearn.datasets import load_digits

    d = load_digits()
    images = np.kron((d.images[:200] / 16.0 * 255).astype(np.uint8), np.ones((4, 4), dtype=np.uint8))
    path = tmp_path_factory.mktemp("repro") / "digits.npz"
    np.savez(path, images=np.repeat(images[:, None], 3, axis=1), labels=d.target[:200])
    return str(path)


def test_training_twice_with_one_seed_gives_identical_checkpoints(run_cli, tmp_path, digits):
    command = ["train", "--model", "attn_vgg11", "--option", "width=0.25", "--input-size", "32"]
    command += ["--data", digits, "--epochs", "2", "--batch-size", "32"]
    hashes = []
    for name, seed in (("a", "0"), ("b", "0"), ("c", "1")):
        code, _, err = run_cli(*command, "--seed", seed, "--out", tmp_path / f"{name}.pt")
        assert code == 0, err
        hashes.append(sha256_of(tmp_path / f"{name}.pt"))
    assert hashes[0] == hashes[1]
    assert hashes[2] != hashes[0]  # negative control: the seed does reach the weights
