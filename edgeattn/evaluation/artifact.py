"""`evaluate_artifact`: top-1/top-5 of any artifact on a data set, on its own runtime.

Every artifact kind goes through `edgeattn.runtime.open_runner`: a checkpoint (FP32, pruned or
quantized) runs in torch, an `.onnx` on onnxruntime, an engine on TensorRT, an `.mlpackage` on Core ML;
each runner preprocesses images the way its manifest (or checkpoint) says. A runtime this machine lacks
is an `UnavailableError` that says so.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field

from edgeattn.byo import ArtifactSpec, artifact_manifest
from edgeattn.data.config import DataConfig
from edgeattn.errors import InputError
from edgeattn.evaluation.accuracy import topk_hits
from edgeattn.evaluation.predict import stream_runner
from edgeattn.result import StageResult


class EvalResult(StageResult):
    """Accuracy of one artifact on one split, and what ran it."""

    artifact: str
    runtime: str
    kind: str
    precision: str
    data: str
    split: str
    top1: float
    top5: float
    n: int
    skipped: int = 0  # unreadable images left out (--skip-bad-images)
    images_per_s: float | None = None  # the whole pass: loading and model together
    load_images_per_s: float | None = None  # decoding + resizing, with `loader_workers` workers
    model_images_per_s: float | None = None  # the runner alone (preparing + running each batch)
    loader_workers: int = 0
    device: dict[str, Any] | None = None  # where it ran, when not here (`edgeattn device check`'s facts)
    # Per-image top-1 correctness (numpy bool array) for paired comparisons; not written to JSON.
    hits: Any = Field(default=None, exclude=True)


def check_data_fits(num_classes: int, data_classes: int, artifact: Path, data: str) -> None:
    if num_classes != data_classes:
        raise InputError(
            f"{artifact} predicts {num_classes} classes but {data} has {data_classes}",
            "evaluate on the data set the model was trained for",
        )


def evaluate_artifact(
    artifact: Path | str,
    data: str,
    split: str = "val",
    *,
    limit: int | None = None,
    runtime: str | None = None,
    threads: int | None = None,
    with_hits: bool = False,
    device: Any = None,
    device_label: str | None = None,
    spec: ArtifactSpec | None = None,
    data_options: DataConfig | None = None,
) -> EvalResult:
    """top-1/top-5 of `artifact` on a split of `data`; `runtime` overrides the artifact's default runner.

    `device` (a `DeviceConfig` or URL, default local) is where the artifact runs. `with_hits` keeps
    `hits`, the per-image top-1 correctness, for paired comparisons of two artifacts on the same
    images. `spec` is the input spec of an artifact without a manifest (`edgeattn.byo`).
    `data_options` say how images are read (loader workers, class map, bad files).
    """
    from edgeattn.data import load_split
    from edgeattn.device import open_device

    artifact = Path(artifact)
    if limit is not None and limit < 1:
        raise InputError(f"--limit {limit} must be at least 1", "give a positive number of images")
    manifest = artifact_manifest(artifact, spec)
    with open_device(device, label=device_label) as dev:
        runner = dev.open_runner(artifact, runtime, threads=threads, manifest=manifest)
        try:
            dataset = load_split(data, split, runner.input_spec.size[0], data_options).subset(limit)
            check_data_fits(runner.num_classes, dataset.num_classes, artifact, data)
            streamed = stream_runner(runner, dataset, f"eval {artifact.name}")
            info = runner.info()
        finally:
            runner.close()
        block = None if dev.in_process else dev.block()
    logits, labels = streamed.logits, streamed.labels
    hits = topk_hits(logits, labels, 1)
    return EvalResult(
        artifact=str(artifact),
        runtime=info["runtime"],
        kind=info["kind"],
        precision=info["precision"],
        data=data,
        split=split,
        top1=100.0 * float(hits.mean()),
        top5=100.0 * float(topk_hits(logits, labels, 5).mean()),
        n=int(len(labels)),
        skipped=len(streamed.skipped),
        **streamed.speeds(),
        device=block,
        hits=hits if with_hits else None,
    )
