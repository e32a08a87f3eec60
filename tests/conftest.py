"""Shared fixtures: tiny configurations of every zoo family and cached, briefly trained checkpoints.

Trained checkpoints are cached under .pytest_cache/edgeattn-models (keyed by the config, the epochs and
a hash of the model/data/training code), shared by xdist workers through a file lock, so the suite
trains each tiny model once per code version.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest
import torch

os.environ.setdefault("EDGEATTN_QUIET", "1")
torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))

REPO = Path(__file__).resolve().parents[1]
CACHE = Path(os.environ.get("EDGEATTN_TEST_CACHE", REPO / ".pytest_cache" / "edgeattn-models"))

# One small configuration per family / attention kind: fast enough for the default test run.
TINY = {
    "mobilevit_xxs": {"name": "mobilevit_xxs", "input_size": 64, "options": {}},
    "efficientformer_l1": {"name": "efficientformer_l1", "input_size": 64, "options": {}},
    "attn_vgg11_linear": {
        "name": "attn_vgg11",
        "input_size": 32,
        "options": {"attention": "linear", "width": 0.25, "batch_norm": True},
    },
    "attn_vgg11_softmax": {
        "name": "attn_vgg11",
        "input_size": 32,
        "options": {"attention": "softmax", "width": 0.25, "batch_norm": True},
    },
    "attn_vgg11_se": {
        "name": "attn_vgg11",
        "input_size": 32,
        "options": {"attention": "se", "width": 0.25, "batch_norm": True},
    },
    "attn_vgg11_eca": {
        "name": "attn_vgg11",
        "input_size": 32,
        "options": {"attention": "eca", "width": 0.25, "batch_norm": True},
    },
    "attn_vgg11_cbam": {
        "name": "attn_vgg11",
        "input_size": 32,
        "options": {"attention": "cbam", "width": 0.25, "batch_norm": True},
    },
}


def tiny_config(key: str, num_classes: int = 10):
    from edgeattn.models import ModelConfig

    t = TINY[key]
    return ModelConfig(t["name"], num_classes, t["input_size"], dict(t["options"]))


def _code_hash() -> str:
    h = hashlib.sha256()
    for sub in ("models", "data", "train.py", "checkpoint.py"):
        p = REPO / "edgeattn" / sub
        for f in sorted(p.rglob("*.py")) if p.is_dir() else [p]:
            h.update(f.read_bytes())
    return h.hexdigest()[:12]


def trained_checkpoint(key: str, epochs: int = 2, data: str = "builtin:digits") -> Path:
    """Path of a checkpoint of TINY[key] trained for `epochs` on `data` (built once, then cached)."""
    from filelock import FileLock

    from edgeattn.training_job import train_checkpoint

    t = TINY[key]
    ident = hashlib.sha256(json.dumps([t, epochs, data, _code_hash()], sort_keys=True).encode()).hexdigest()[
        :16
    ]
    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / f"{key}-{ident}.pt"
    with FileLock(str(path) + ".lock"):
        if not path.exists():
            train_checkpoint(
                model=t["name"],
                data=data,
                out=path,
                input_size=t["input_size"],
                options=t["options"],
                epochs=epochs,
            )
    return path


@pytest.fixture(scope="session")
def trained():
    """`trained(key, epochs=2)` -> path of a cached trained tiny checkpoint."""
    return trained_checkpoint


@pytest.fixture()
def run_cli(capsys):
    """Run the edgeattn CLI in-process; returns (exit_code, stdout, stderr)."""
    from edgeattn.cli.app import main

    def run(*args: str) -> tuple[int, str, str]:
        try:
            main([str(a) for a in args])
            code = 0
        except SystemExit as exc:
            code = int(exc.code or 0) if not isinstance(exc.code, str) else 1
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run
