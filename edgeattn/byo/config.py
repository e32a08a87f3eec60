"""`ArtifactSpec`: how to preprocess for an artifact that edgeattn did not export (no manifest).

An exported artifact carries its input spec in its manifest. A user's own ONNX or Core ML file does
not, and guessing ImageNet normalisation would turn a wrong guess into silent accuracy drift, so the
spec is given on the command line (`--mean`, `--std`, ...) or taken from a model source
(`--input-spec-from CKPT`). Every command that runs artifacts (`eval`, `validate`, `bench`) takes these
same options from this one class.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator
from pydantic_core import PydanticCustomError

from edgeattn.config import StageConfig
from edgeattn.errors import InputError

# The flags, as users type them, for messages that tell them what to give.
SPEC_FLAGS = "--input-spec-from CKPT, or --mean R,G,B --std R,G,B (with --input-size, --interpolation, --crop-pct as needed)"


class ArtifactSpec(StageConfig):
    """Input spec of a manifest-less artifact; unset fields come from `input_spec_from` or the graph."""

    input_size: int | None = Field(
        None, ge=1, le=8192, description="Input side in pixels (default: the graph's fixed input size)."
    )
    mean: tuple[float, float, float] | None = Field(
        None, description="Per-channel mean of [0, 1] RGB images, e.g. 0.485,0.456,0.406."
    )
    std: tuple[float, float, float] | None = Field(
        None, description="Per-channel std of [0, 1] RGB images, e.g. 0.229,0.224,0.225."
    )
    interpolation: Literal["bilinear", "bicubic"] | None = Field(
        None, description="Resize interpolation: bilinear or bicubic [default bilinear]."
    )
    crop_pct: float | None = Field(
        None, gt=0, le=1, description="Center-crop fraction: resize to size/crop_pct, crop size [default 1]."
    )
    input_spec_from: str | None = Field(
        None,
        description="Take the input spec from a model source: an edgeattn checkpoint (.pt) or a zoo name.",
    )

    @field_validator("std")
    @classmethod
    def _positive_std(cls, v: tuple[float, ...] | None) -> tuple[float, ...] | None:
        if v is not None and any(s <= 0 for s in v):
            raise PydanticCustomError("bad_std", "every std must be > 0")
        return v

    @property
    def given(self) -> bool:
        """Whether the user gave any of these options."""
        return any(getattr(self, name) is not None for name in type(self).model_fields)

    def given_flags(self) -> list[str]:
        return ["--" + n.replace("_", "-") for n in type(self).model_fields if getattr(self, n) is not None]


def parse_triple(text: str | None) -> tuple[float, float, float] | None:
    """`0.485,0.456,0.406` (or one number for all three channels) -> a tuple of three floats."""
    if text is None:
        return None
    parts = [p for p in text.replace(" ", ",").split(",") if p]
    try:
        values = [float(p) for p in parts]
    except ValueError:
        raise InputError(
            f"{text!r} is not a list of numbers", "write three numbers: 0.485,0.456,0.406"
        ) from None
    if len(values) == 1:
        values *= 3
    if len(values) != 3:
        raise InputError(f"{text!r} has {len(values)} numbers", "give one per RGB channel: 0.485,0.456,0.406")
    return (values[0], values[1], values[2])


# `@with_config(ArtifactSpec, **SPEC_OPTIONS)` on every command that runs artifacts.
SPEC_OPTIONS: dict[str, Any] = {
    "parsers": {"mean": (str, parse_triple), "std": (str, parse_triple)},
    "param": "spec",
}
