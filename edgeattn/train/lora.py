"""LoRA fine-tuning (`edgeattn train --init CKPT --lora R`), with the `peft` library.

Low-rank adapters go on the attention projections only — the Linear/Conv2d layers inside every block
that `HEAD_ADAPTERS` recognises as attention with heads, whatever the family names them (qkv, proj,
q/k/v convs) — and the classifier is trained fully (peft's `modules_to_save`), because a new or
re-targeted head cannot be learned through a low-rank update of random weights. The adapters are
merged into the weights (`merge_and_unload`) before anything is saved, so prune, quantize and export
see the plain model with its original architecture config and never a peft wrapper.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from torch import nn

from edgeattn.errors import InputError

# Fallback when no block matches a HeadAdapter: projection layers by their usual names.
PROJECTION_NAMES = re.compile(r"(^|\.)(qkv|q|k|v|query|key|value|proj|out_proj|to_qkv|to_out)(\.\d+)?$")
ADAPTABLE = (nn.Linear, nn.Conv2d)


@dataclass
class LoraPlan:
    """Which layers get adapters and which train fully."""

    targets: list[str]  # dotted names of the attention projections
    classifier: list[str]  # dotted names of the layers producing the logits


def parameter_counts(model: nn.Module) -> dict[str, Any]:
    """Trainable and total parameters (and the trainable share in %), as peft reports them."""
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {"trainable": trainable, "total": total, "percent": 100.0 * trainable / max(1, total)}


def classifier_layers(model: nn.Module, num_classes: int) -> list[str]:
    """Linear/Conv2d layers with `num_classes` outputs (the head; both heads of a distilled DeiT)."""
    found = []
    for name, module in model.named_modules():
        width = getattr(module, "out_features", getattr(module, "out_channels", None))
        if isinstance(module, ADAPTABLE) and width == num_classes:
            found.append(name)
    return found


def lora_plan(model: nn.Module, num_classes: int, model_name: str) -> LoraPlan:
    """The attention projections of `model` (through HEAD_ADAPTERS, else by name) and its classifier."""
    from edgeattn.models.heads import attention_blocks

    classifier = classifier_layers(model, num_classes)
    blocks = attention_blocks(model, with_headless=False)
    targets = [
        f"{block.path}.{name}"
        for block in blocks
        for name, module in block.module.named_modules()
        if name and isinstance(module, ADAPTABLE)
    ]
    if not targets:
        targets = [
            n for n, m in model.named_modules() if isinstance(m, ADAPTABLE) and PROJECTION_NAMES.search(n)
        ]
    targets = [t for t in targets if t not in classifier]
    if not targets:
        raise InputError(
            f"{model_name} has no attention projections for LoRA (no attention block with heads, no qkv/proj layers)",
            "fine-tune it fully (drop --lora), or add a HeadAdapter for its attention (docs: adding an adapter)",
        )
    if not classifier:
        raise InputError(
            f"{model_name} has no Linear/Conv2d layer with {num_classes} outputs to train as its classifier",
            "fine-tune it fully (drop --lora)",
        )
    return LoraPlan(targets, classifier)


def import_peft() -> Any:
    try:
        import peft
    except ModuleNotFoundError:
        raise InputError(
            "--lora needs the peft library, which is not installed",
            "pip install 'edgeattn[lora]' (or pip install peft)",
        ) from None
    return peft


def add_lora(model: nn.Module, plan: LoraPlan, rank: int, alpha: float | None) -> nn.Module:
    """`model` wrapped by peft: adapters of `rank` on `plan.targets`, the classifier trainable, the
    rest frozen. Adapter initialisation draws from torch's global generator (seeded by the caller)."""
    peft = import_peft()
    config = peft.LoraConfig(
        r=rank,
        lora_alpha=alpha if alpha is not None else 2.0 * rank,
        lora_dropout=0.0,
        target_modules=plan.targets,
        modules_to_save=plan.classifier,
        bias="none",
    )
    return peft.get_peft_model(model, config)


def merge_lora(wrapped: nn.Module) -> nn.Module:
    """The plain model with the adapters merged into its weights (and the trained classifier in place)."""
    merged = wrapped.merge_and_unload()
    leftovers = [n for n in merged.state_dict() if "lora_" in n or "modules_to_save" in n]
    if leftovers:  # a peft version that unloads differently: refuse rather than save a wrapper
        raise RuntimeError(f"peft left adapter weights after merging: {leftovers[:3]}")
    for p in merged.parameters():
        p.requires_grad_(True)
    return merged.eval()
