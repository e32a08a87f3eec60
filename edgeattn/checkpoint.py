"""Checkpoints: one file with the architecture config, input spec, state dict and history.

Files load with `torch.load(weights_only=True)` only: nothing in a user's file is ever executed. A
model whose shapes differ from its family's default (pruned heads, other class counts) is rebuilt from
the stored config before the weights load. Checkpoint kinds other than plain FP32 (e.g. quantized)
register a loader in `CHECKPOINT_KINDS`.
"""

from __future__ import annotations

import io
import pickle
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from edgeattn import __version__
from edgeattn.errors import InputError
from edgeattn.fileio import atomic_output
from edgeattn.models import (
    MODELS,
    InputSpec,
    ModelConfig,
    build_model,
    input_spec_for,
    is_model_name,
    model_spec,
)
from edgeattn.registry import Registry

FORMAT = "edgeattn.checkpoint"
FORMAT_VERSION = 1


@dataclass
class ModelHandle:
    """A model together with everything needed to rebuild, preprocess for, and trace it."""

    module: nn.Module
    config: ModelConfig
    input_spec: InputSpec
    kind: str = "fp32"
    history: list[dict[str, Any]] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)  # kind-specific payload (e.g. quantizer state)

    @classmethod
    def new(cls, config: ModelConfig) -> ModelHandle:
        return cls(module=build_model(config), config=config, input_spec=input_spec_for(config))

    def with_step(self, step: str, **details: Any) -> ModelHandle:
        """Record a processing step (train, prune, quantize, ...) in the history. No wall-clock time or
        duration goes in: the same command with the same seed writes the same checkpoint bytes."""
        self.history.append({"step": step, "edgeattn": __version__, **details})
        return self


CheckpointLoader = Callable[[dict[str, Any], Path], ModelHandle]
CHECKPOINT_KINDS: Registry[CheckpointLoader] = Registry("checkpoint kind")


def class_names_of(handle: ModelHandle) -> list[str]:
    """The class names the model was trained with (recorded by `edgeattn train` in its history step),
    or [] when unknown (imported weights, checkpoints from before names were recorded)."""
    for step in reversed(handle.history):
        names = step.get("classes")
        if isinstance(names, list) and len(names) == int(handle.config.num_classes):
            return [str(n) for n in names]
    return []


def save_checkpoint(
    handle: ModelHandle, path: Path | str, extra_payload: dict[str, Any] | None = None
) -> Path:
    """Write `handle` atomically. Only tensors and plain containers go in (weights_only-loadable)."""
    payload = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "kind": handle.kind,
        "config": handle.config.to_dict(),
        "input_spec": handle.input_spec.to_dict(),
        "state_dict": {k: v.detach().cpu().contiguous() for k, v in handle.module.state_dict().items()},
        "history": list(handle.history),
        "metrics": dict(handle.metrics),
        "extra": dict(handle.extra),
        **(extra_payload or {}),
    }
    path = Path(path)
    buffer = io.BytesIO()  # saved from memory: torch names the archive's root after a file's name,
    torch.save(payload, buffer)  # and the temporary name would make the same model differ byte-wise
    with atomic_output(path) as tmp:
        tmp.write_bytes(buffer.getvalue())
    return path


def read_payload(path: Path | str) -> dict[str, Any]:
    """Read a file with weights_only=True, turning every failure into a one-line InputError."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"checkpoint {path} does not exist", "check the path")
    if path.is_dir():
        raise InputError(f"{path} is a folder, not a checkpoint file", "give the .pt file")
    if path.stat().st_size == 0:
        raise InputError(f"checkpoint {path} is empty", "re-create it (e.g. with `edgeattn train`)")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if "Unsupported global" in str(exc) or "GLOBAL" in str(exc):  # a class/function reference, not data
            raise InputError(
                f"{path} contains pickled Python objects, which edgeattn refuses to load (they could run code)",
                "save only a state dict (torch.save(model.state_dict(), f)) and import it with `edgeattn import`",
            ) from None
        lines = [ln.strip() for ln in str(exc).splitlines() if "Unsupported" in ln] or [
            str(exc).splitlines()[0][:120]
        ]
        raise InputError(
            f"checkpoint {path} is corrupt ({lines[0]})", "re-create or re-download it"
        ) from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError) as exc:
        raise InputError(
            f"checkpoint {path} is corrupt or truncated ({str(exc).splitlines()[0][:120]})",
            "re-create or re-download it",
        ) from None
    if not isinstance(obj, dict):
        raise InputError(
            f"{path} holds a {type(obj).__name__}, not a checkpoint",
            "give an edgeattn checkpoint or a state dict",
        )
    return obj


def load_checkpoint(path: Path | str) -> ModelHandle:
    """Load an edgeattn checkpoint of any registered kind."""
    path = Path(path)
    payload = read_payload(path)
    if payload.get("format") != FORMAT:
        if payload and all(isinstance(v, torch.Tensor) for v in payload.values()):
            raise InputError(
                f"{path} is a plain state dict without architecture config",
                "import it first: edgeattn import STATE_DICT --model NAME --out CKPT",
            )
        raise InputError(
            f"{path} is not an edgeattn checkpoint", "create one with `edgeattn train` or `edgeattn import`"
        )
    if int(payload.get("format_version", 0)) > FORMAT_VERSION:
        raise InputError(f"{path} was written by a newer edgeattn", "upgrade edgeattn")
    _load_kinds()
    return CHECKPOINT_KINDS.get(str(payload.get("kind", "fp32")))(payload, path)


def _load_kinds() -> None:
    import importlib

    for module in ("edgeattn.quantize.checkpoint",):
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name is None or not module.startswith(exc.name):
                raise


def load_state_into(module: nn.Module, state_dict: dict[str, torch.Tensor], path: Path, name: str) -> None:
    """Load weights strictly, explaining an architecture mismatch in one line."""
    own = module.state_dict()
    missing = [k for k in own if k not in state_dict]
    unexpected = [k for k in state_dict if k not in own]
    wrong = [k for k in own if k in state_dict and tuple(own[k].shape) != tuple(state_dict[k].shape)]
    if missing or unexpected or wrong:
        detail = "; ".join(
            f"{label}: {', '.join(keys[:3])}{' …' if len(keys) > 3 else ''}"
            for label, keys in (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong))
            if keys
        )
        raise InputError(
            f"weights in {path} do not fit a {name} ({detail})",
            "check --model / the checkpoint's architecture",
        )
    module.load_state_dict(state_dict, strict=True)


def config_from_payload(payload: dict[str, Any], path: Path) -> tuple[ModelConfig, InputSpec]:
    try:
        config = ModelConfig.from_dict(payload["config"])
        spec = InputSpec.from_dict(payload["input_spec"])
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(
            f"checkpoint {path} has a malformed config ({exc})", "re-create the checkpoint"
        ) from None
    return config, spec


@CHECKPOINT_KINDS.register("fp32")
def _load_fp32(payload: dict[str, Any], path: Path) -> ModelHandle:
    config, spec = config_from_payload(payload, path)
    module = build_model(config)
    load_state_into(module, payload.get("state_dict", {}), path, config.name)
    return ModelHandle(
        module=module.eval(),
        config=config,
        input_spec=spec,
        kind="fp32",
        history=list(payload.get("history", [])),
        metrics=dict(payload.get("metrics", {})),
        extra=dict(payload.get("extra", {})),
    )


def import_state_dict(path: Path | str, config: ModelConfig) -> ModelHandle:
    """Import a plain (e.g. timm-released) state dict into an edgeattn model handle."""
    path = Path(path)
    state = read_safetensors(path) if path.suffix == ".safetensors" else read_payload(path)
    for key in ("state_dict", "model", "state_dict_ema"):
        if isinstance(state.get(key), dict):
            state = state[key]
            break
    state = {k.removeprefix("module."): v for k, v in state.items() if isinstance(v, torch.Tensor)}
    handle = ModelHandle.new(config)
    fit_attention_bias_tables(handle.module, state)
    load_state_into(handle.module, state, path, config.name)
    return handle.with_step("import", source=str(path.name))


def read_safetensors(path: Path) -> dict[str, torch.Tensor]:
    """A .safetensors file: tensors and a JSON header only, so nothing in it can run."""
    if not path.is_file():
        raise InputError(f"weights file {path} does not exist", "check the path")
    try:
        from safetensors.torch import load_file

        return load_file(str(path), device="cpu")
    except ImportError:
        raise InputError(
            "reading .safetensors needs the safetensors package", "pip install safetensors"
        ) from None
    except Exception as exc:  # safetensors raises its own SafetensorError (and OSError) for bad files
        raise InputError(
            f"{path} is not a readable safetensors file ({str(exc).splitlines()[0][:120]})",
            "re-create it with safetensors.torch.save_file(model.state_dict(), PATH)",
        ) from None


def fit_attention_bias_tables(module: nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Resize EfficientFormer attention bias tables trained at another resolution (bicubic)."""
    own = module.state_dict()
    for key, value in list(state.items()):
        if key.endswith("attention_biases") and key in own and value.shape != own[key].shape:
            heads, n_old = value.shape
            n_new = own[key].shape[1]
            s_old, s_new = int(round(n_old**0.5)), int(round(n_new**0.5))
            grid = value.reshape(1, heads, s_old, s_old)
            state[key] = torch.nn.functional.interpolate(
                grid, size=(s_new, s_new), mode="bicubic", align_corners=False
            ).reshape(heads, n_new)
        if key.endswith("attention_bias_idxs") and key in own:
            state[key] = own[key]


def open_model(
    name_or_path: str, input_size: int | None = None, num_classes: int = 1000, options: dict | None = None
) -> ModelHandle:
    """A zoo name (or `timm:NAME` / `torchvision:NAME`) builds a fresh model (random weights); anything
    else must be a checkpoint file."""
    if is_model_name(name_or_path):
        spec = model_spec(name_or_path)
        cfg = ModelConfig(
            name_or_path, num_classes, input_size or spec.default_input_size, dict(options or {})
        )
        return ModelHandle.new(cfg)
    path = Path(name_or_path)
    if not path.exists() and path.suffix == "":
        MODELS.get(name_or_path)  # raises "unknown model ... did you mean"
    handle = load_checkpoint(path)
    if input_size and input_size != handle.config.input_size:
        raise InputError(
            f"{path} was built for {handle.config.input_size}x{handle.config.input_size} inputs, not {input_size}",
            "drop --input-size or retrain at that size",
        )
    return handle
