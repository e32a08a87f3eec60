"""Tiny configurations of every zoo family and their briefly trained checkpoints, cached across runs.

Trained checkpoints are cached under .pytest_cache/edgeattn-models (keyed by the config, the epochs and
a hash of the model/data/training code), shared by xdist workers through a file lock, so the suite
trains each tiny model once per code version.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
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

# The code a trained checkpoint depends on; each is hashed as a module (`<name>.py`) or as a package
# (every .py under `<name>/`), whichever exists, so moving a module into a package keeps working.
TRAINING_CODE = ("models", "data", "train", "checkpoint")


def tiny_config(key: str, num_classes: int = 10):
    from edgeattn.models import ModelConfig

    t = TINY[key]
    return ModelConfig(t["name"], num_classes, t["input_size"], dict(t["options"]))


def code_hash() -> str:
    """Hash of the source files in TRAINING_CODE: a cached checkpoint is retrained when it changes."""
    h = hashlib.sha256()
    for name in TRAINING_CODE:
        module, package = REPO / "edgeattn" / f"{name}.py", REPO / "edgeattn" / name
        files = [module] if module.is_file() else sorted(package.rglob("*.py"))
        if not files:
            raise FileNotFoundError(f"neither {module} nor {package}/*.py exists: update TRAINING_CODE")
        for f in files:
            h.update(f.relative_to(REPO).as_posix().encode())
            h.update(f.read_bytes())
    return h.hexdigest()[:12]


def trained_checkpoint(key: str, epochs: int = 3, data: str = "builtin:digits") -> Path:
    """Path of a checkpoint of TINY[key] trained for `epochs` on `data` (built once, then cached)."""
    from filelock import FileLock

    from edgeattn.train import train_checkpoint

    t = TINY[key]
    ident = hashlib.sha256(json.dumps([t, epochs, data, code_hash()], sort_keys=True).encode()).hexdigest()[
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
