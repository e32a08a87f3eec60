"""The "int8" checkpoint kind: an NNCF fake-quant model stored as plain data, restored safely.

The file holds the float architecture config, the state dict of the quantized model (weights plus
quantizer scales), and NNCF's transformation config (which quantizer sits on which op) encoded as
plain dicts/lists/strings — no pickled objects, so it loads with `torch.load(weights_only=True)`.
Only NNCF's own quantizer classes may be named in that config; anything else is refused.
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Any

import torch
from torch import nn

from edgeattn.checkpoint import CHECKPOINT_KINDS, ModelHandle, config_from_payload, load_state_into
from edgeattn.errors import InputError
from edgeattn.models import build_model

KIND = "int8"
# The only hook modules an int8 checkpoint may restore (all from nncf.torch.quantization.layers).
ALLOWED_HOOKS = {"SymmetricQuantizer", "AsymmetricQuantizer", "SQMultiply"}
HOOK_MODULE_PATH = "nncf.torch.quantization.layers"


def _enums() -> dict[str, type[Enum]]:
    from nncf.common.quantization.structs import QuantizationScheme

    return {"QuantizationScheme": QuantizationScheme}


def encode_config(obj: Any) -> Any:
    """NNCF config -> plain JSON-like data (tuples and enums tagged so they round-trip exactly)."""
    if isinstance(obj, Enum):
        return {"__enum__": type(obj).__name__, "value": obj.value}
    if isinstance(obj, tuple):
        return {"__tuple__": [encode_config(v) for v in obj]}
    if isinstance(obj, list):
        return [encode_config(v) for v in obj]
    if isinstance(obj, dict):
        return {str(k): encode_config(v) for k, v in obj.items()}
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise TypeError(f"cannot store {type(obj).__name__} in a checkpoint")


def decode_config(obj: Any) -> Any:
    if isinstance(obj, dict):
        if "__enum__" in obj:
            enums = _enums()
            if obj["__enum__"] not in enums:
                raise ValueError(f"unknown enum {obj['__enum__']!r}")
            return enums[obj["__enum__"]](obj["value"])
        if "__tuple__" in obj:
            return tuple(decode_config(v) for v in obj["__tuple__"])
        return {k: decode_config(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [decode_config(v) for v in obj]
    return obj


def nncf_config_of(module: nn.Module) -> dict[str, Any]:
    from edgeattn.quantize.backend import import_nncf

    return encode_config(import_nncf().torch.get_config(module))


def restore_quantized(module: nn.Module, encoded: dict[str, Any]) -> nn.Module:
    """Re-insert the quantizers described by `encoded` into a freshly built float `module`."""
    from edgeattn.quantize.backend import import_nncf

    nncf = import_nncf()
    config = decode_config(encoded)
    commands = config.get("compression_state")
    if not isinstance(commands, list):
        raise ValueError("no compression_state")
    for cmd in commands:
        if (
            cmd.get("module_cls_name") not in ALLOWED_HOOKS
            or cmd.get("module_path", HOOK_MODULE_PATH) != HOOK_MODULE_PATH
        ):
            raise ValueError(f"refusing hook module {cmd.get('module_path')}.{cmd.get('module_cls_name')}")
    return nncf.torch.load_from_config(module, config)


@CHECKPOINT_KINDS.register(KIND)
def load_int8(payload: dict[str, Any], path: Path) -> ModelHandle:
    config, spec = config_from_payload(payload, path)
    extra = dict(payload.get("extra", {}))
    module = build_model(config)
    try:
        module = restore_quantized(module, extra.get("nncf_config") or {})
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise InputError(
            f"quantized checkpoint {path} has a malformed quantizer config ({exc})",
            "re-create it with `edgeattn quantize`",
        ) from None
    state = payload.get("state_dict", {})
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise InputError(
            f"quantized checkpoint {path} has a malformed state dict", "re-create it with `edgeattn quantize`"
        )
    load_state_into(module, state, path, f"int8 {config.name}")
    return ModelHandle(
        module=module.eval(),
        config=config,
        input_spec=spec,
        kind=KIND,
        history=list(payload.get("history", [])),
        metrics=dict(payload.get("metrics", {})),
        extra=extra,
    )


@torch.no_grad()
def float_module(handle: ModelHandle) -> nn.Module:
    """The plain float model under a quantized handle's quantizers (for converters that quantize
    themselves, e.g. Core ML): the (QAT-tuned) float weights, with SmoothQuant's per-channel input
    scales folded into the layers they feed, so it computes what the model computes without fake-quant."""
    from nncf.torch.function_hook.hook_storage import decode_hook_name
    from nncf.torch.function_hook.wrapper import get_hook_storage
    from nncf.torch.quantization.layers import SQMultiply

    if handle.kind != KIND:
        return handle.module
    state = {k: v for k, v in handle.module.state_dict().items() if not k.startswith("__nncf_hooks")}
    plain = build_model(handle.config)
    plain.load_state_dict(state, strict=True)
    layer_of_op = {op: row["layer"] for row in handle.extra.get("layers", []) for op in row.get("ops", [])}
    modules = dict(plain.named_modules())
    for name, hook in get_hook_storage(handle.module).named_hooks():
        if not isinstance(hook, SQMultiply):
            continue
        kind, op, port = decode_hook_name(name)
        layer = modules.get(layer_of_op.get(op, ""))
        if kind != "pre_hooks" or port != 0 or layer is None:
            raise ValueError(f"cannot fold SmoothQuant scale at {name} into a layer")
        scale = hook.scale.detach().reshape(-1)
        shape = [1, -1] + [1] * (layer.weight.ndim - 2)
        layer.weight.mul_(scale.reshape(shape))
    return plain.eval()
