"""Evaluating any artifact on a data set (checkpoints here; exported artifacts via their runners)."""

from __future__ import annotations

from pathlib import Path

from edgeattn.checkpoint import load_checkpoint
from edgeattn.data import load_split
from edgeattn.errors import InputError
from edgeattn.train import evaluate


def check_data_fits(num_classes: int, data_classes: int, artifact: Path, data: str) -> None:
    if num_classes != data_classes:
        raise InputError(
            f"{artifact} predicts {num_classes} classes but {data} has {data_classes}",
            "evaluate on the data set the model was trained for",
        )


def evaluate_artifact(artifact: Path | str, data: str, split: str = "val") -> dict:
    artifact = Path(artifact)
    handle = load_checkpoint(artifact)
    dataset = load_split(data, split, handle.config.input_size)
    check_data_fits(handle.config.num_classes, dataset.num_classes, artifact, data)
    result = evaluate(handle.module, dataset, handle.input_spec)
    return {"artifact": str(artifact), "runtime": f"torch ({handle.kind})", "data": data, "split": split, **result}
