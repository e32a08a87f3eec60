"""The sidecar manifest every exported artifact carries (`<artifact>.json`).

Runners, validation, benchmarks and the pipeline read an artifact only through its manifest: what
model it is, how inputs are preprocessed, precision, target, and the sha256 that ties the manifest to
the exact file. A manifest whose hash does not match its artifact is refused.
"""

from __future__ import annotations

import json
import platform
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

from edgeattn import __version__
from edgeattn.errors import InputError
from edgeattn.fileio import sha256_of, write_json
from edgeattn.models.config import InputSpec, ModelConfig

MANIFEST_FORMAT = "edgeattn.artifact"

# Numeric formats an artifact can be in: int8 = weights and activations (Q/DQ), int8-weights = weights
# only (Core ML, float compute).
Precision = Literal["fp32", "fp16", "int8", "int8-weights"]
PRECISIONS: tuple[str, ...] = get_args(Precision)


@dataclass
class ArtifactManifest:
    artifact: str  # file name of the artifact, relative to the manifest's folder
    target: str  # onnx | tensorrt | coreml
    precision: Precision
    model: dict[str, Any]  # ModelConfig.to_dict()
    input_spec: dict[str, Any]  # InputSpec.to_dict()
    num_classes: int
    class_names: list[str] = field(default_factory=list)  # index -> name ([] when the checkpoint has none)
    input_name: str = "input"
    output_name: str = "logits"
    input_shape: list[Any] = field(default_factory=list)  # e.g. [1, 3, 64, 64] or ["batch", 3, 64, 64]
    batch: dict[str, int] = field(default_factory=lambda: {"min": 1, "opt": 1, "max": 1})
    image_input: bool = False  # True: input is 0..255 RGB image, normalisation folded into the model
    sha256: str = ""
    source_checkpoint: str = ""
    source_kind: str = "fp32"
    history: list[dict[str, Any]] = field(default_factory=list)
    versions: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)  # target-specific (opset, deployment target, ...)
    format: str = MANIFEST_FORMAT

    @property
    def config(self) -> ModelConfig:
        return ModelConfig.from_dict(self.model)

    @property
    def spec(self) -> InputSpec:
        return InputSpec.from_dict(self.input_spec)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def manifest_path(artifact: Path | str) -> Path:
    artifact = Path(artifact)
    return artifact.with_name(artifact.name + ".json")


def library_versions(*extra: str) -> dict[str, str]:
    """Versions of edgeattn, Python, torch and any named runtime packages that are installed."""
    import importlib.metadata as md

    versions = {"edgeattn": __version__, "python": platform.python_version()}
    for pkg in ("torch", "onnx", "onnxruntime", *extra):
        try:
            versions[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            pass
    return versions


def write_manifest(artifact: Path | str, manifest: ArtifactManifest) -> Path:
    """Hash the artifact and write its manifest beside it (atomically)."""
    artifact = Path(artifact)
    manifest.artifact = artifact.name
    manifest.sha256 = sha256_of(artifact)
    return write_json(manifest_path(artifact), manifest.to_dict())


def read_manifest(artifact: Path | str, verify_hash: bool = True) -> ArtifactManifest:
    artifact = Path(artifact)
    if not artifact.exists():
        raise InputError(f"artifact {artifact} does not exist", "check the path")
    mpath = manifest_path(artifact)
    if not mpath.exists():
        raise InputError(
            f"{artifact} has no manifest ({mpath.name})",
            "export it with `edgeattn export`, which writes the manifest beside the artifact",
        )
    try:
        data = json.loads(mpath.read_text())
        if data.get("format") != MANIFEST_FORMAT:
            raise ValueError("not an edgeattn artifact manifest")
        known = set(ArtifactManifest.__dataclass_fields__)
        manifest = ArtifactManifest(**{k: v for k, v in data.items() if k in known})
        manifest.spec  # noqa: B018  (validates the input spec)
    except (ValueError, TypeError, KeyError) as exc:
        raise InputError(f"manifest {mpath} is malformed ({exc})", "re-export the artifact") from None
    if verify_hash and manifest.sha256 and manifest.sha256 != sha256_of(artifact):
        raise InputError(
            f"{artifact} does not match the sha256 in its manifest",
            "the file changed after export: re-export it",
        )
    return manifest
