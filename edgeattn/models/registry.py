"""The model zoo: one registry entry per architecture name users type, plus model sources.

Built-in names (`attn_vgg16`, `mobilevit_xxs`, ...) live in `MODELS`. A prefixed name
(`timm:deit_tiny_patch16_224`, `torchvision:vit_b_16`) is resolved by the `MODEL_SOURCES` entry for its
prefix, which makes a `ModelSpec` on demand: thousands of architectures, no table to keep in sync.
"""

from __future__ import annotations

import difflib
import functools
from collections.abc import Callable
from dataclasses import dataclass, field

from torch import nn

from edgeattn.errors import InputError
from edgeattn.models.config import InputSpec, ModelConfig
from edgeattn.registry import Registry


@dataclass(frozen=True)
class ModelSpec:
    name: str
    family: str
    build: Callable[[ModelConfig], nn.Module]
    default_input_size: int
    input_multiple: int  # input sides must be a multiple of this
    input_spec: Callable[[ModelConfig], InputSpec]
    description: str = ""
    default_options: dict = field(default_factory=dict)
    transformer: bool = False  # quantize with NNCF's transformer model type (softmax/matmul aware)


class ModelSource:
    """A library of architectures reachable as `PREFIX:NAME` (e.g. every timm model)."""

    prefix: str = ""
    description: str = ""

    def spec(self, arch: str) -> ModelSpec:
        """The spec of `arch`; an InputError naming close matches when the library has no such model."""
        raise NotImplementedError

    def search(self, pattern: str) -> list[str]:
        """Architecture names (without prefix) containing `pattern` that this install can build."""
        raise NotImplementedError

    def unknown(self, arch: str, known: list[str], what: str = "model") -> InputError:
        """The error for an `arch` the library lacks, naming its closest architectures."""
        close = difflib.get_close_matches(arch, known, n=3)
        hint = f"did you mean {', '.join(f'{self.prefix}:{c}' for c in close)}? " if close else ""
        return InputError(
            f"{self.prefix} has no {what} {arch!r}",
            f"{hint}list them with `edgeattn models --search PATTERN`",
        )


MODELS: Registry[ModelSpec] = Registry("model")
MODEL_SOURCES: Registry[ModelSource] = Registry("model source")


def is_model_name(name: str) -> bool:
    """True for a built-in zoo name or a `PREFIX:NAME` of a registered source (not a file path)."""
    prefix, sep, arch = name.partition(":")
    return name in MODELS or (bool(sep) and bool(arch) and prefix in MODEL_SOURCES)


@functools.lru_cache(maxsize=256)
def _source_spec(prefix: str, arch: str) -> ModelSpec:
    return MODEL_SOURCES.get(prefix).spec(arch)


def model_spec(name: str) -> ModelSpec:
    prefix, sep, arch = name.partition(":")
    if sep and prefix in MODEL_SOURCES:
        if not arch:
            raise InputError(f"model {name!r} names no architecture", f"write {prefix}:NAME")
        return _source_spec(prefix, arch)
    return MODELS.get(name)


def all_model_specs() -> list[ModelSpec]:
    return [MODELS.get(n) for n in MODELS.names()]
