"""Attention maps read from the blocks that form them, and attention rollout.

Every adapter with `has_attention_maps` recomputes its block's softmax matrices (B', heads, N, N) from
the block's input, which a forward pre-hook captures during one ordinary forward pass, so fused
attention kernels need not expose their maps. A token's score is the attention it receives (the mean
over queries: the zoo's models have no class token to read a row from); the family's token grid puts
the scores back onto the image.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from edgeattn.errors import InputError
from edgeattn.explain.families import CamFamily
from edgeattn.models.heads import AttentionBlock, attention_blocks


@dataclass
class BlockMaps:
    path: str
    maps: torch.Tensor  # (B', heads, N, N) softmax attention


def map_blocks(model: nn.Module) -> list[AttentionBlock]:
    """Blocks that form attention matrices and still have heads, in forward order."""
    return [
        b
        for b in attention_blocks(model, with_headless=False)
        if b.adapter.has_attention_maps and b.num_heads > 0
    ]


def no_maps_error(name: str) -> InputError:
    return InputError(
        f"{name} has no block that forms attention maps (linear, SE, ECA and CBAM attention do not)",
        "use --method gradcam or gradcam++",
    )


@torch.no_grad()
def collect_maps(model: nn.Module, x: torch.Tensor, blocks: list[AttentionBlock]) -> list[BlockMaps]:
    """The attention maps of `blocks` for input `x` (one forward pass)."""
    inputs: dict[str, torch.Tensor] = {}
    hooks = [
        b.module.register_forward_pre_hook(lambda _m, args, p=b.path: inputs.__setitem__(p, args[0]))
        for b in blocks
    ]
    try:
        model(x)
    finally:
        for h in hooks:
            h.remove()
    return [BlockMaps(b.path, b.adapter.attention_maps(b.module, inputs[b.path]).float()) for b in blocks]


def to_image(scores: torch.Tensor, family: CamFamily, model: nn.Module, path: str, size: tuple[int, int]):
    """(B', k, N) token scores -> (B, k, H, W) maps at the input size, each scaled to [0, 1]."""
    grid = family.token_grid(model, path)(scores.transpose(1, 2))
    img = F.interpolate(grid, size=size, mode="bilinear", align_corners=False)
    lo = img.amin(dim=(-2, -1), keepdim=True)
    hi = img.amax(dim=(-2, -1), keepdim=True)
    return ((img - lo) / (hi - lo).clamp_min(1e-12)).numpy()


def received(maps: torch.Tensor) -> torch.Tensor:
    """(B', heads, N, N) -> (B', heads, N): attention each key token receives, averaged over queries."""
    return maps.mean(dim=2)


def rollout(group: list[BlockMaps]) -> torch.Tensor:
    """Attention rollout (Abnar & Zuidema 2020) over blocks sharing one token set: (B', 1, N) scores.

    Each block's head-averaged attention is mixed half-and-half with the identity (the residual path),
    rows renormalised, and the products taken from the first block to the last.
    """
    n = group[0].maps.shape[-1]
    eye = torch.eye(n)
    joint = eye.expand_as(group[0].maps[:, 0]).clone()
    for block in group:
        a = 0.5 * block.maps.mean(dim=1) + 0.5 * eye
        joint = (a / a.sum(dim=-1, keepdim=True)) @ joint
    return joint.mean(dim=1)[:, None]


def last_group(collected: list[BlockMaps]) -> list[BlockMaps]:
    """The trailing run of blocks that attend over the same tokens (same owner, same map shape)."""

    def key(b: BlockMaps) -> tuple:
        return b.path.rsplit(".", 2)[0], tuple(b.maps.shape)

    group = [collected[-1]]
    for b in reversed(collected[:-1]):
        if key(b) != key(group[0]):
            break
        group.insert(0, b)
    return group
