"""`input_spec_from(source)`: the input spec a model source says its inputs need.

A source is what users already type for a model: an edgeattn checkpoint (`model.pt`), a zoo name
(`mobilevit_xxs`), and later `timm:NAME` / `torchvision:NAME`. Sources with a `prefix:` are looked up
in `INPUT_SPEC_SOURCES`, so a new kind of model source adds its input spec by registering one function
(`INPUT_SPEC_SOURCES.register("timm", spec_of_timm_name)`), with no change here.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from edgeattn.errors import InputError
from edgeattn.models.config import InputSpec
from edgeattn.registry import Registry

# prefix -> function of the rest of the source (`timm:deit_tiny` -> fn("deit_tiny")).
INPUT_SPEC_SOURCES: Registry[Callable[[str], InputSpec]] = Registry("input spec source")


def spec_of_checkpoint(path: str) -> InputSpec:
    """The spec stored in an edgeattn checkpoint (any kind), read with weights_only."""
    from edgeattn.checkpoint import FORMAT, config_from_payload, read_payload

    payload = read_payload(path)
    if payload.get("format") != FORMAT:
        raise InputError(
            f"{path} is not an edgeattn checkpoint, so it carries no input spec",
            "give --input-spec-from an edgeattn checkpoint or a model name, or give --mean/--std",
        )
    return config_from_payload(payload, Path(path))[1]


def spec_of_zoo_name(name: str) -> InputSpec:
    """The default input spec of a zoo architecture (its own default size)."""
    from edgeattn.models import ModelConfig, input_spec_for, model_spec

    spec = model_spec(name)
    return input_spec_for(ModelConfig(name, input_size=spec.default_input_size))


INPUT_SPEC_SOURCES.register("checkpoint", spec_of_checkpoint)
INPUT_SPEC_SOURCES.register("zoo", spec_of_zoo_name)


def input_spec_from(source: str) -> InputSpec:
    """The input spec of `source`: `prefix:rest` from the registry, else a file (a checkpoint) or a
    zoo name."""
    prefix, sep, rest = source.partition(":")
    if sep and prefix in INPUT_SPEC_SOURCES:
        return INPUT_SPEC_SOURCES.get(prefix)(rest)
    if Path(source).exists():
        return spec_of_checkpoint(source)
    from edgeattn.models import MODELS

    if source in MODELS:
        return spec_of_zoo_name(source)
    raise InputError(
        f"--input-spec-from {source!r} is neither a file nor a known model",
        f"give an edgeattn checkpoint, a zoo name ({', '.join(MODELS.names()[:4])}, ...) or a registered prefix ({', '.join(INPUT_SPEC_SOURCES.names())}:NAME)",
    )
