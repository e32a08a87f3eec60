"""Head adapters for every attention module kind in the zoo (registered into HEAD_ADAPTERS)."""

from __future__ import annotations

import torch
from torch import nn

from edgeattn.models.attention import (
    CBAM,
    EfficientChannelAttention,
    LinearAttention2d,
    MultiHeadAttention2d,
    SoftmaxAttention2d,
    SqueezeExcite,
)
from edgeattn.models.heads import HEAD_ADAPTERS, HeadAdapter


class VGGMultiHeadAdapter(HeadAdapter):
    """attn_vgg's `linear` / `softmax` blocks: fused 1x1 qkv conv ([q|k|v] x heads x d) and 1x1 proj."""

    def __init__(self, kind: str, cls: type[MultiHeadAttention2d]) -> None:
        self.kind = kind
        self.cls = cls
        self.has_attention_maps = cls is SoftmaxAttention2d

    def matches(self, module: nn.Module) -> bool:
        return type(module) is self.cls

    def set_head_mask(self, module: nn.Module, mask: torch.Tensor | None) -> None:
        module.head_mask = mask

    def _qkv_rows(self, module: MultiHeadAttention2d, keep: list[int]) -> torch.Tensor:
        h, d = module.num_heads, module.head_dim
        return torch.tensor([s * h * d + k * d + j for s in range(3) for k in keep for j in range(d)])

    def keep_heads(self, module: nn.Module, keep: list[int]) -> nn.Module:
        d = module.head_dim
        new = self.cls(module.channels, num_heads=len(keep), head_dim=d)
        new.norm.load_state_dict(module.norm.state_dict())
        if keep:
            rows = self._qkv_rows(module, keep)
            cols = torch.tensor([k * d + j for k in keep for j in range(d)])
            with torch.no_grad():
                new.qkv.weight.copy_(module.qkv.weight[rows])
                new.qkv.bias.copy_(module.qkv.bias[rows])
                new.proj.weight.copy_(module.proj.weight[:, cols])
                new.proj.bias.copy_(module.proj.bias)
        return new

    def head_weight_norms(self, module: nn.Module) -> torch.Tensor:
        h, d = module.num_heads, module.head_dim
        qkv = module.qkv.weight.detach().abs().reshape(3, h, d, -1).sum(dim=(0, 2, 3))
        proj = module.proj.weight.detach().abs().reshape(module.channels, h, d).sum(dim=(0, 2))
        return qkv + proj


class HeadlessAdapter(HeadAdapter):
    """Channel/spatial attentions (SE, ECA, CBAM): attention blocks without heads."""

    has_heads = False

    def __init__(self, kind: str, cls: type[nn.Module]) -> None:
        self.kind = kind
        self.cls = cls

    def matches(self, module: nn.Module) -> bool:
        return type(module) is self.cls

    def num_heads(self, module: nn.Module) -> int:
        return 0


class TimmAttentionAdapter(HeadAdapter):
    """timm's `Attention` (MobileViT transformer blocks): fused qkv Linear, rows [q|k|v] x heads x d."""

    kind = "timm_attention"
    has_attention_maps = True

    def matches(self, module: nn.Module) -> bool:
        from timm.layers import Attention

        return type(module) is Attention


class EfficientFormerAttentionAdapter(HeadAdapter):
    """EfficientFormer's `Attention`: per-head [q(key_dim) k(key_dim) v(val_dim)] rows, per-head biases."""

    kind = "efficientformer_attention"
    has_attention_maps = True

    def matches(self, module: nn.Module) -> bool:
        from timm.models.efficientformer import Attention

        return type(module) is Attention


HEAD_ADAPTERS.register("linear", VGGMultiHeadAdapter("linear", LinearAttention2d))
HEAD_ADAPTERS.register("softmax", VGGMultiHeadAdapter("softmax", SoftmaxAttention2d))
HEAD_ADAPTERS.register("se", HeadlessAdapter("se", SqueezeExcite))
HEAD_ADAPTERS.register("eca", HeadlessAdapter("eca", EfficientChannelAttention))
HEAD_ADAPTERS.register("cbam", HeadlessAdapter("cbam", CBAM))
HEAD_ADAPTERS.register("timm_attention", TimmAttentionAdapter())
HEAD_ADAPTERS.register("efficientformer_attention", EfficientFormerAttentionAdapter())
