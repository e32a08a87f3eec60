"""The manifest of an artifact that edgeattn did not export, assembled from its graph and the user's
input spec, held in memory only.

Runners, validation and benchmarks read every artifact through a manifest; giving a manifest-less
artifact one in memory (never written beside the user's file) lets all of them run it unchanged. What
the graph fixes (input name, shape, dtype, class count) is read from the graph; what only the user
knows (normalisation, resize) comes from `ArtifactSpec`, and a contradiction between the two is bad
input, not a guess.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from edgeattn.byo.config import SPEC_FLAGS, ArtifactSpec
from edgeattn.byo.graph import GRAPH_INSPECTORS, GraphFacts
from edgeattn.byo.sources import input_spec_from
from edgeattn.errors import InputError
from edgeattn.fileio import sha256_of
from edgeattn.manifest import ArtifactManifest, library_versions, manifest_path
from edgeattn.models.config import InputSpec

SOURCE_KIND = "byo"  # `source_kind` of an assumed manifest: not exported by edgeattn


def artifact_manifest(
    path: Path | str,
    spec: ArtifactSpec | None = None,
    *,
    need_preprocessing: bool = True,
    refuse_unused: bool = True,
) -> ArtifactManifest | None:
    """None when `path` carries its own spec (a manifest beside it, or a checkpoint), else the
    manifest assumed from its graph and `spec`. `need_preprocessing=False` (timing on random inputs)
    accepts a spec without mean/std; `refuse_unused=False` (several artifacts, one spec) lets an
    artifact with its own spec ignore the flags instead of refusing them."""
    from edgeattn.runtime import artifact_kind

    path, spec = Path(path), spec or ArtifactSpec()
    if not path.exists():
        raise InputError(f"artifact {path} does not exist", "check the path")
    kind = artifact_kind(path)
    has_own = manifest_path(path).exists() or kind not in GRAPH_INSPECTORS
    if has_own:
        if spec.given and refuse_unused:
            own = f"its manifest ({manifest_path(path).name})" if kind in GRAPH_INSPECTORS else "itself"
            raise InputError(
                f"{path.name} carries its input spec in {own}, and {', '.join(spec.given_flags())} would contradict it",
                f"drop {', '.join(spec.given_flags())} (they are for .onnx/.mlpackage files without a manifest)",
            )
        return None
    facts = GRAPH_INSPECTORS.get(kind)(path)
    input_spec = resolve_spec(path, facts, spec, need_preprocessing)
    batch = facts.static_batch
    return ArtifactManifest(
        artifact=path.name,
        target=facts.target,
        precision=facts.precision,  # type: ignore[arg-type]
        model={},
        input_spec=input_spec.to_dict(),
        num_classes=facts.num_classes,
        input_name=facts.input_name,
        output_name=facts.output_name,
        input_shape=list(facts.input_shape),
        batch={"min": batch, "opt": batch, "max": batch} if batch else {"min": 1, "opt": 1, "max": 0},
        image_input=facts.image_input,
        sha256=sha256_of(path),
        source_checkpoint=spec.input_spec_from or "",
        source_kind=SOURCE_KIND,
        versions=library_versions(),
        details={
            **facts.details,
            "dtype": facts.dtype,
            "preprocessing": "given" if preprocessing_given(spec) else "unknown (random inputs only)",
            "spec_flags": spec.model_dump(mode="json", exclude_none=True),
        },
    )


def preprocessing_given(spec: ArtifactSpec) -> bool:
    return spec.input_spec_from is not None or (spec.mean is not None and spec.std is not None)


def resolve_spec(path: Path, facts: GraphFacts, spec: ArtifactSpec, need_preprocessing: bool) -> InputSpec:
    """Flags over the `input_spec_from` source over the graph's fixed size; refuse contradictions."""
    if need_preprocessing and not preprocessing_given(spec):
        missing = " and ".join(f for f, v in (("--mean", spec.mean), ("--std", spec.std)) if v is None)
        raise InputError(
            f"{path.name} has no manifest, so how its inputs are normalised is unknown ({missing} not given)",
            f"give {SPEC_FLAGS}",
        )
    base = input_spec_from(spec.input_spec_from) if spec.input_spec_from else InputSpec()
    graph_size = facts.static_size
    if spec.input_size is not None:
        size, said = (spec.input_size, spec.input_size), f"--input-size {spec.input_size}"
    elif spec.input_spec_from is not None:
        size, said = (
            tuple(base.size),
            f"--input-spec-from {spec.input_spec_from} ({base.size[0]}x{base.size[1]})",
        )
    elif graph_size is not None:
        size, said = graph_size, ""
    else:
        raise InputError(
            f"{path.name} has symbolic input sides {facts.input_shape}, so its input size is unknown",
            "give --input-size N (or --input-spec-from CKPT)",
        )
    if graph_size is not None and tuple(size) != graph_size:
        raise InputError(
            f"{path.name}'s graph takes {graph_size[0]}x{graph_size[1]} inputs ({facts.input_name!r} {facts.input_shape}) but {said} says {size[0]}x{size[1]}",
            f"give --input-size {graph_size[0]} or drop it (the graph fixes the size)",
        )
    return replace(
        base,
        size=(int(size[0]), int(size[1])),
        mean=spec.mean if spec.mean is not None else base.mean,
        std=spec.std if spec.std is not None else base.std,
        interpolation=spec.interpolation or base.interpolation,
        crop_pct=spec.crop_pct if spec.crop_pct is not None else base.crop_pct,
    )
