"""Head adapters for every attention module kind in the zoo (registered into HEAD_ADAPTERS)."""

from __future__ import annotations

import copy
from collections.abc import Callable

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
from edgeattn.models.config import ModelConfig
from edgeattn.models.heads import HEAD_ADAPTERS, HeadAdapter
from edgeattn.models.psa import PointwiseSpatialAttention


def _vgg_example(attention: str) -> ModelConfig:
    return ModelConfig("attn_vgg11", 10, 32, {"attention": attention, "width": 0.25, "batch_norm": True})


class VGGMultiHeadAdapter(HeadAdapter):
    """attn_vgg's `linear` / `softmax` blocks: fused 1x1 qkv conv ([q|k|v] x heads x d) and 1x1 proj."""

    def __init__(self, kind: str, cls: type[MultiHeadAttention2d]) -> None:
        self.kind = kind
        self.cls = cls
        self.has_attention_maps = cls is SoftmaxAttention2d
        self.example_config = _vgg_example(kind)

    def matches(self, module: nn.Module) -> bool:
        return type(module) is self.cls

    def set_head_mask(self, module: nn.Module, mask: torch.Tensor | None) -> None:
        module.head_mask = mask

    def _qkv_rows(self, module: MultiHeadAttention2d, keep: list[int]) -> torch.Tensor:
        h, d = module.num_heads, module.head_dim
        return torch.tensor([s * h * d + k * d + j for s in range(3) for k in keep for j in range(d)])

    def keep_heads(self, module: nn.Module, keep: list[int]) -> nn.Module:
        d = module.head_dim
        new = self.cls(
            module.channels, num_heads=len(keep), head_dim=d, norm=isinstance(module.norm, nn.BatchNorm2d)
        )
        new.norm.load_state_dict(module.norm.state_dict())
        if keep:
            rows = self._qkv_rows(module, keep)
            cols = torch.tensor([k * d + j for k in keep for j in range(d)])
            with torch.no_grad():
                new.qkv.weight.copy_(module.qkv.weight[rows])
                new.qkv.bias.copy_(module.qkv.bias[rows])
                new.proj.weight.copy_(module.proj.weight[:, cols])
                new.proj.bias.copy_(module.proj.bias)
        return new.train(module.training)

    def head_weight_norms(self, module: nn.Module) -> torch.Tensor:
        h, d = module.num_heads, module.head_dim
        if h == 0:
            return torch.zeros(0)
        qkv = module.qkv.weight.detach().abs().reshape(3, h, d, -1).sum(dim=(0, 2, 3))
        proj = module.proj.weight.detach().abs().reshape(module.channels, h, d).sum(dim=(0, 2))
        return qkv + proj + module.qkv.bias.detach().abs().reshape(3, h, d).sum(dim=(0, 2))

    def attention_maps(self, module: nn.Module, x: torch.Tensor) -> torch.Tensor:
        if not self.has_attention_maps:
            raise NotImplementedError(f"{self.kind} attention never forms attention maps")
        b, _, hh, ww = x.shape
        qkv = module.qkv(module.norm(x)).reshape(b, 3, module.num_heads, module.head_dim, hh * ww)
        q, k, _ = (t.transpose(-1, -2) for t in qkv.unbind(1))
        return ((q @ k.transpose(-1, -2)) * (module.head_dim**-0.5)).softmax(dim=-1)


class HeadlessAdapter(HeadAdapter):
    """Channel/spatial attentions (SE, ECA, CBAM): attention blocks without heads."""

    has_heads = False

    def __init__(self, kind: str, cls: type[nn.Module]) -> None:
        self.kind = kind
        self.cls = cls
        self.example_config = _vgg_example(kind)

    def matches(self, module: nn.Module) -> bool:
        return type(module) is self.cls

    def num_heads(self, module: nn.Module) -> int:
        return 0


class ResidualOnly(nn.Module):
    """Stand-in for an attention module whose heads were all removed (only when the user allowed it).

    Placed where timm's / EfficientFormer's attention sits inside a residual branch
    (`x + ls(attn(norm(x)))`), it returns zeros of the branch's width, so the block is its residual
    path alone: no attention compute, no `proj` bias. It has no weights, so a checkpoint rebuilt
    from `heads_kept` (an empty list) reproduces it exactly.
    """

    num_heads = 0

    def __init__(self, dim_out: int, replaced: str) -> None:
        super().__init__()
        self.dim_out = dim_out
        self.replaced = replaced  # the attention kind this stands in for, for reports

    def forward(self, x: torch.Tensor, *args, **kwargs) -> torch.Tensor:
        return x.new_zeros((*x.shape[:-1], self.dim_out))

    def extra_repr(self) -> str:
        return f"dim_out={self.dim_out}, replaced={self.replaced}"


def install_mask_hook(
    module: nn.Module,
    mask: torch.Tensor | None,
    num_heads: int,
    scale: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
) -> None:
    """Replace `module`'s head-mask pre-hook on `module.proj` with one applying `scale(x, mask)`.

    One place owns the hook handle (`_edgeattn_mask_hook`), so every adapter removes the old hook
    the same way before installing a new one and `mask=None` always restores the unmasked block.
    """
    old = getattr(module, "_edgeattn_mask_hook", None)
    if old is not None:
        old.remove()
        module._edgeattn_mask_hook = None
    if mask is None:
        return
    if mask.numel() != num_heads:
        raise ValueError(f"head mask has {mask.numel()} entries for {num_heads} heads")

    def hook(_proj: nn.Module, args: tuple) -> tuple:
        return (scale(args[0], mask.to(args[0].dtype)), *args[1:])

    module._edgeattn_mask_hook = module.proj.register_forward_pre_hook(hook)


def set_proj_input_mask(module: nn.Module, mask: torch.Tensor | None, num_heads: int, width: int) -> None:
    """Multiply each head's slice of `proj`'s input by `mask[h]` through a forward pre-hook.

    The slices are head-major (head h owns columns h*width .. h*width+width-1), so masking there is
    exactly "this head's output is scaled by mask[h]"; the product keeps the graph, so the gradient
    with respect to the mask (taylor importance) flows.
    """
    install_mask_hook(
        module, mask, num_heads, lambda x, m: (x.unflatten(-1, (num_heads, width)) * m[:, None]).flatten(-2)
    )


def sliced_linear(
    linear: nn.Linear, rows: torch.Tensor | None = None, cols: torch.Tensor | None = None
) -> nn.Linear:
    weight = linear.weight.detach()
    if rows is not None:
        weight = weight[rows]
    if cols is not None:
        weight = weight[:, cols]
    new = nn.Linear(weight.shape[1], weight.shape[0], bias=linear.bias is not None)
    with torch.no_grad():
        new.weight.copy_(weight)
        if linear.bias is not None:
            new.bias.copy_(linear.bias.detach()[rows] if rows is not None else linear.bias.detach())
    return new.to(linear.weight.dtype)


def copy_without_mask(module: nn.Module) -> nn.Module:
    """A deep copy without the mask hook handle (and without EfficientFormer's bias cache, which may
    hold a non-leaf tensor that deepcopy refuses)."""
    hook = getattr(module, "_edgeattn_mask_hook", None)
    module._edgeattn_mask_hook = None
    if hasattr(module, "attention_bias_cache"):
        module.attention_bias_cache = {}
    try:
        return copy.deepcopy(module)
    finally:
        module._edgeattn_mask_hook = hook


class TimmAttentionAdapter(HeadAdapter):
    """timm's `Attention` (MobileViT transformer blocks): fused qkv Linear, rows [q|k|v] x heads x d."""

    kind = "timm_attention"
    has_attention_maps = True
    example_config = ModelConfig(
        "timm:deit_tiny_patch16_224", 10, 32, {"depth": 2, "embed_dim": 32, "num_heads": 4}
    )

    def matches(self, module: nn.Module) -> bool:
        from timm.layers import Attention

        return type(module) is Attention

    def set_head_mask(self, module: nn.Module, mask: torch.Tensor | None) -> None:
        set_proj_input_mask(module, mask, module.num_heads, module.head_dim)

    @staticmethod
    def _check_sliceable(module: nn.Module) -> None:
        if not isinstance(module.norm, nn.Identity):
            # A LayerNorm over all heads' outputs mixes heads: removing one changes the others.
            raise ValueError(
                "timm Attention with scale_norm mixes heads in its norm; its heads cannot be removed"
            )

    def keep_heads(self, module: nn.Module, keep: list[int]) -> nn.Module:
        self._check_sliceable(module)
        if not keep:
            return ResidualOnly(module.proj.out_features, self.kind).train(module.training)
        h, d = module.num_heads, module.head_dim
        rows = torch.tensor([s * h * d + k * d + j for s in range(3) for k in keep for j in range(d)])
        cols = torch.tensor([k * d + j for k in keep for j in range(d)])
        new = copy_without_mask(module)
        new.qkv = sliced_linear(module.qkv, rows=rows)
        new.proj = sliced_linear(module.proj, cols=cols)
        if getattr(module, "gate", None) is not None:
            new.gate = sliced_linear(module.gate, rows=cols)
        new.num_heads = len(keep)
        new.attn_dim = len(keep) * d
        return new

    def head_weight_norms(self, module: nn.Module) -> torch.Tensor:
        h, d = module.num_heads, module.head_dim
        qkv = module.qkv.weight.detach().abs().reshape(3, h, d, -1).sum(dim=(0, 2, 3))
        if module.qkv.bias is not None:
            qkv = qkv + module.qkv.bias.detach().abs().reshape(3, h, d).sum(dim=(0, 2))
        proj = module.proj.weight.detach().abs().reshape(-1, h, d).sum(dim=(0, 2))
        return qkv + proj

    def attention_maps(self, module: nn.Module, x: torch.Tensor) -> torch.Tensor:
        b, n, _ = x.shape
        qkv = module.qkv(x).reshape(b, n, 3, module.num_heads, module.head_dim).permute(2, 0, 3, 1, 4)
        q, k, _ = qkv.unbind(0)
        q, k = module.q_norm(q), module.k_norm(k)
        return ((q * module.scale) @ k.transpose(-2, -1)).softmax(dim=-1)


class EfficientFormerAttentionAdapter(HeadAdapter):
    """EfficientFormer's `Attention`: per-head [q(key_dim) k(key_dim) v(val_dim)] rows, per-head biases."""

    kind = "efficientformer_attention"
    has_attention_maps = True
    example_config = ModelConfig("efficientformer_l1", 10, 64)

    def matches(self, module: nn.Module) -> bool:
        from timm.models.efficientformer import Attention

        return type(module) is Attention

    def set_head_mask(self, module: nn.Module, mask: torch.Tensor | None) -> None:
        set_proj_input_mask(module, mask, module.num_heads, module.val_dim)

    def keep_heads(self, module: nn.Module, keep: list[int]) -> nn.Module:
        if not keep:
            return ResidualOnly(module.proj.out_features, self.kind).train(module.training)
        kd, vd = module.key_dim, module.val_dim
        per_head = 2 * kd + vd  # qkv rows are interleaved per head: [q k v] of head 0, then head 1, ...
        rows = torch.tensor([k * per_head + j for k in keep for j in range(per_head)])
        cols = torch.tensor([k * vd + j for k in keep for j in range(vd)])
        new = copy_without_mask(module)
        new.qkv = sliced_linear(module.qkv, rows=rows)
        new.proj = sliced_linear(module.proj, cols=cols)
        new.attention_biases = nn.Parameter(module.attention_biases.detach()[torch.tensor(keep)].clone())
        new.num_heads = len(keep)
        new.key_attn_dim = kd * len(keep)
        new.val_attn_dim = vd * len(keep)
        new.attention_bias_cache = {}
        return new

    def head_weight_norms(self, module: nn.Module) -> torch.Tensor:
        h, kd, vd = module.num_heads, module.key_dim, module.val_dim
        qkv = module.qkv.weight.detach().abs().reshape(h, 2 * kd + vd, -1).sum(dim=(1, 2))
        qkv = qkv + module.qkv.bias.detach().abs().reshape(h, 2 * kd + vd).sum(dim=1)
        proj = module.proj.weight.detach().abs().reshape(-1, h, vd).sum(dim=(0, 2))
        return qkv + proj + module.attention_biases.detach().abs().sum(dim=1)

    def attention_maps(self, module: nn.Module, x: torch.Tensor) -> torch.Tensor:
        b, n, _ = x.shape
        qkv = module.qkv(x).reshape(b, n, module.num_heads, -1).permute(0, 2, 1, 3)
        q, k, _ = qkv.split([module.key_dim, module.key_dim, module.val_dim], dim=3)
        attn = (q @ k.transpose(-2, -1)) * module.scale
        attn = attn + module.attention_biases[:, module.attention_bias_idxs]
        return attn.softmax(dim=-1)


class ResidualOnlyAdapter(HeadAdapter):
    """A block whose heads were all removed: listed (with 0 heads) so reports show it, never pruned."""

    kind = "residual_only"

    def matches(self, module: nn.Module) -> bool:
        return type(module) is ResidualOnly

    def num_heads(self, module: nn.Module) -> int:
        return 0

    def set_head_mask(self, module: nn.Module, mask: torch.Tensor | None) -> None:
        return None

    def keep_heads(self, module: nn.Module, keep: list[int]) -> nn.Module:
        return module

    def head_weight_norms(self, module: nn.Module) -> torch.Tensor:
        return torch.zeros(0)


HEAD_ADAPTERS.register("linear", VGGMultiHeadAdapter("linear", LinearAttention2d))
HEAD_ADAPTERS.register("softmax", VGGMultiHeadAdapter("softmax", SoftmaxAttention2d))
HEAD_ADAPTERS.register("se", HeadlessAdapter("se", SqueezeExcite))
HEAD_ADAPTERS.register("eca", HeadlessAdapter("eca", EfficientChannelAttention))
HEAD_ADAPTERS.register("cbam", HeadlessAdapter("cbam", CBAM))
HEAD_ADAPTERS.register("psa", HeadlessAdapter("psa", PointwiseSpatialAttention))
HEAD_ADAPTERS.register("timm_attention", TimmAttentionAdapter())
HEAD_ADAPTERS.register("efficientformer_attention", EfficientFormerAttentionAdapter())
HEAD_ADAPTERS.register("residual_only", ResidualOnlyAdapter())
