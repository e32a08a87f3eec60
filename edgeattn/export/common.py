"""Helpers every exporter shares: the manifest it writes, reference inputs/outputs, publishing.

Publishing is two atomic steps (artifact, then its manifest); if the manifest cannot be written the
fresh artifact is removed again, so a user never finds an artifact without its manifest.
"""

from __future__ import annotations

import datetime as _dt
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

from edgeattn import __version__
from edgeattn.checkpoint import class_names_of
from edgeattn.export.base import ExportRequest
from edgeattn.manifest import ArtifactManifest, library_versions, write_manifest


def export_step(req: ExportRequest, **details: Any) -> dict[str, Any]:
    """The history entry this export adds to the checkpoint's history."""
    return {
        "step": "export",
        "time": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "edgeattn": __version__,
        "target": req.target,
        "precision": req.precision,
        **details,
    }


def make_manifest(
    req: ExportRequest,
    *,
    target: str | None = None,
    precision: str | None = None,
    image_input: bool = False,
    versions: tuple[str, ...] = (),
    details: dict[str, Any] | None = None,
) -> ArtifactManifest:
    """The sidecar manifest of an artifact made from `req` (sha256 and file name are filled on write)."""
    spec = req.handle.input_spec
    batch_dim: int | str = req.batch.dim()
    return ArtifactManifest(
        artifact=req.out.name,
        target=target or req.target,
        precision=precision or req.precision,
        model=req.handle.config.to_dict(),
        input_spec=spec.to_dict(),
        num_classes=int(req.handle.config.num_classes),
        class_names=class_names_of(req.handle),
        input_shape=[batch_dim, spec.channels, *spec.size],
        batch=req.batch.to_dict(),
        image_input=image_input,
        source_checkpoint=req.source,
        source_kind=req.handle.kind,
        history=[*req.handle.history, export_step(req, target_artifact=target or req.target)],
        versions=library_versions(*versions),
        metrics=dict(req.handle.metrics),
        details=dict(details or {}),
    )


def publish_manifest(artifact: Path, manifest: ArtifactManifest) -> ArtifactManifest:
    """Write the manifest beside a freshly written artifact; remove the artifact if that fails."""
    try:
        write_manifest(artifact, manifest)
    except BaseException:
        remove_path(artifact)
        raise
    return manifest


def remove_path(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists() or path.is_symlink():
        os.unlink(path)


def reference_inputs(req: ExportRequest, batch: int, seed: int = 0) -> np.ndarray:
    """Deterministic normalised-scale inputs (N, C, H, W) to compare an artifact against torch."""
    spec = req.handle.input_spec
    rng = np.random.default_rng(seed)
    return rng.standard_normal((batch, spec.channels, *spec.size)).astype(np.float32)


def check_batches(req: ExportRequest) -> list[int]:
    """Batch sizes an export is checked at: the optimum, and the range ends of a dynamic batch (capped
    so a check stays quick)."""
    sizes = {req.batch.opt}
    if req.batch.dynamic:
        sizes |= {req.batch.min, min(req.batch.max, max(req.batch.opt, 4))}
    return sorted(sizes)


@torch.no_grad()
def torch_logits(module: torch.nn.Module, x: np.ndarray) -> np.ndarray:
    return module.eval()(torch.from_numpy(x)).float().numpy()


def compare(reference: np.ndarray, candidate: np.ndarray) -> dict[str, float]:
    """Max abs difference and top-1 agreement of two logit arrays."""
    reference = np.asarray(reference, dtype=np.float32)
    candidate = np.asarray(candidate, dtype=np.float32)
    return {
        "max_abs_diff": float(np.max(np.abs(reference - candidate))) if reference.size else 0.0,
        "top1_agreement": float(np.mean(reference.argmax(1) == candidate.argmax(1)))
        if reference.size
        else 1.0,
        "logit_scale": float(np.max(np.abs(reference))) if reference.size else 0.0,
    }
