"""Structural head removal on a live model, kept-head bookkeeping, and per-head MAC costs.

Heads are always recorded by their index in the family's unpruned model ("original" indices), so a
pruned model can be pruned again and `ModelConfig.heads_kept` still rebuilds it from scratch.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterator

import torch
from torch import nn

from edgeattn.models import ModelConfig, build_model
from edgeattn.models.heads import AttentionBlock, attention_blocks, heads_per_block, replace_module
from edgeattn.models.profile import count_macs


def original_head_counts(config: ModelConfig, model: nn.Module) -> dict[str, int]:
    """Heads per block of the unpruned family model (what `heads_kept` indices refer to)."""
    if not config.heads_kept:
        return heads_per_block(model)
    fresh = ModelConfig(config.name, config.num_classes, config.input_size, dict(config.options), None)
    return heads_per_block(build_model(fresh))


def current_kept(config: ModelConfig, original: dict[str, int]) -> dict[str, list[int]]:
    """Original indices of the heads each block has now."""
    kept = dict(config.heads_kept or {})
    return {path: list(kept.get(path, range(n))) for path, n in original.items()}


def prunable_blocks(model: nn.Module) -> list[AttentionBlock]:
    """Blocks that still have at least one head."""
    return [b for b in attention_blocks(model, with_headless=False) if b.num_heads > 0]


def keep_local(model: nn.Module, keep: dict[str, list[int]]) -> None:
    """Remove, in place, every head not listed in `keep` (local indices, per block path)."""
    blocks = {b.path: b for b in attention_blocks(model, with_headless=False)}
    for path, local in keep.items():
        block = blocks[path]
        if len(local) == block.num_heads:
            continue
        replace_module(model, path, block.adapter.keep_heads(block.module, sorted(local)))


def clone_model(model: nn.Module) -> nn.Module:
    """A deep copy (EfficientFormer's bias cache is dropped first: deepcopy refuses non-leaf tensors)."""
    for m in model.modules():
        if isinstance(getattr(m, "attention_bias_cache", None), dict):
            m.attention_bias_cache = {}
    return copy.deepcopy(model)


def head_mac_costs(model: nn.Module, input_size: int, macs_now: int | None = None) -> dict[str, float]:
    """MACs one head costs in each block, measured: full model minus the model with one head fewer.

    The attention kinds here are linear in their head count (qkv rows, maps, proj columns all scale
    with it), so one measurement per block prices every head of that block.
    """
    base = macs_now if macs_now is not None else count_macs(model, input_size)
    costs = {}
    for block in prunable_blocks(model):
        smaller = block.adapter.keep_heads(block.module, list(range(block.num_heads - 1)))
        replace_module(model, block.path, smaller)
        try:
            costs[block.path] = float(base - count_macs(model, input_size))
        finally:
            replace_module(model, block.path, block.module)
    return costs


@contextlib.contextmanager
def masked_heads(model: nn.Module, keep: dict[str, list[int]]) -> Iterator[nn.Module]:
    """Run `model` with every head not in `keep` (local indices) multiplied by zero — the reference a
    structurally pruned model must match."""
    blocks = {b.path: b for b in attention_blocks(model, with_headless=False)}
    try:
        for path, local in keep.items():
            b = blocks[path]
            mask = torch.zeros(b.num_heads)
            mask[list(local)] = 1.0
            b.adapter.set_head_mask(b.module, mask)
        yield model
    finally:
        for path in keep:
            blocks[path].adapter.set_head_mask(blocks[path].module, None)
