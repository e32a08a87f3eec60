"""Finding attention blocks and their heads, one adapter per attention module kind.

Every kind of attention module in the zoo has a `HeadAdapter` in `HEAD_ADAPTERS`; profiling, pruning,
importance scoring and checkpoint rebuilding all go through it, so no caller switches on module types.
Blocks without heads (SE, ECA, CBAM) are listed too, with `num_heads == 0`, so they are reported
rather than silently skipped.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from edgeattn.models.config import ModelConfig
from edgeattn.registry import Registry


class HeadAdapter:
    """What edgeattn needs to know about one kind of attention module."""

    kind: str = ""
    has_heads: bool = True
    has_attention_maps: bool = False
    # A small real model that uses this kind: the adapter contract tests run on it (None: the kind
    # only appears as the result of pruning, e.g. a block with every head removed).
    example_config: ModelConfig | None = None

    def matches(self, module: nn.Module) -> bool:
        raise NotImplementedError

    def num_heads(self, module: nn.Module) -> int:
        return int(getattr(module, "num_heads", 0))

    def set_head_mask(self, module: nn.Module, mask: torch.Tensor | None) -> None:
        """Multiply each head's output by `mask[h]` (None removes the mask). Must stay differentiable."""
        raise NotImplementedError

    def keep_heads(self, module: nn.Module, keep: list[int]) -> nn.Module:
        """Structurally keep only heads `keep` (original indices); returns the module to put in place."""
        raise NotImplementedError

    def head_weight_norms(self, module: nn.Module) -> torch.Tensor:
        """L1 norm of the weights that belong to each head (for the `l1` importance baseline)."""
        raise NotImplementedError

    def attention_maps(self, module: nn.Module, x: torch.Tensor) -> torch.Tensor:
        """Softmax attention maps (B, heads, N, N) the module computes for input `x` (`entropy` scores).

        Only for kinds with `has_attention_maps`; recomputed from the input, so fused kernels need not
        expose their maps.
        """
        raise NotImplementedError


HEAD_ADAPTERS: Registry[HeadAdapter] = Registry("attention kind")


@dataclass
class AttentionBlock:
    path: str  # dotted module path inside the model
    kind: str
    num_heads: int
    module: nn.Module
    adapter: HeadAdapter


def adapter_for(module: nn.Module) -> HeadAdapter | None:
    for _, adapter in HEAD_ADAPTERS.items():
        if adapter.matches(module):
            return adapter
    return None


def attention_blocks(model: nn.Module, with_headless: bool = True) -> list[AttentionBlock]:
    """All attention blocks of `model` in forward order (headless ones too unless told otherwise)."""
    blocks = []
    for path, module in model.named_modules():
        adapter = adapter_for(module)
        if adapter is None or (not with_headless and not adapter.has_heads):
            continue
        blocks.append(AttentionBlock(path, adapter.kind, adapter.num_heads(module), module, adapter))
    return blocks


def unadapted_attention(model: nn.Module) -> dict[str, list[str]]:
    """Attention modules no adapter knows: class name -> module paths (outermost only).

    Found by name ("Attention" in the class name, as every library names them), skipping modules
    inside or around an adapted block, so `prune` can name what it cannot handle instead of silently
    finding "no heads".
    """
    adapted = [path for path, m in model.named_modules() if adapter_for(m) is not None]
    found: dict[str, list[str]] = {}
    taken: list[str] = []
    for path, module in model.named_modules():
        if "attention" not in type(module).__name__.lower() or not path:
            continue
        related = adapted + taken
        if any(path == a or path.startswith(a + ".") or a.startswith(path + ".") for a in related):
            continue
        taken.append(path)
        found.setdefault(type(module).__name__, []).append(path)
    return found


def heads_per_block(model: nn.Module) -> dict[str, int]:
    return {b.path: b.num_heads for b in attention_blocks(model, with_headless=False)}


def apply_heads_kept(model: nn.Module, heads_kept: dict[str, list[int]]) -> nn.Module:
    """Give a freshly built model the head layout of a pruned one (before its weights load)."""
    blocks = {b.path: b for b in attention_blocks(model, with_headless=False)}
    for path, keep in heads_kept.items():
        if path not in blocks:
            raise ValueError(f"checkpoint names attention block {path!r}, which this model does not have")
        block = blocks[path]
        if (
            sorted(keep) != list(keep)
            or len(set(keep)) != len(keep)
            or any(not 0 <= k < block.num_heads for k in keep)
        ):
            raise ValueError(f"invalid kept heads {keep} for block {path!r} with {block.num_heads} heads")
        if len(keep) == block.num_heads:
            continue
        replace_module(model, path, block.adapter.keep_heads(block.module, list(keep)))
    return model


def replace_module(model: nn.Module, path: str, new: nn.Module) -> None:
    parent_path, _, child = path.rpartition(".")
    parent = model.get_submodule(parent_path) if parent_path else model
    if isinstance(parent, (nn.Sequential, nn.ModuleList)) and child.isdigit():
        parent[int(child)] = new
    else:
        setattr(parent, child, new)
