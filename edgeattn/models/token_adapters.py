"""Head adapters for token attention from timm and torchvision: `nn.MultiheadAttention` (torchvision
ViT and plain user code) and timm Swin's `WindowAttention` (per-head relative position bias table).

`nn.MultiheadAttention` cannot hold fewer heads than its embedding width allows (its q/k/v width is its
output width), so removing heads replaces it with `PrunedMultiheadAttention`: the same call signature and
the same maths, with q/k/v of width kept_heads x head_dim. Masking scales each head's value rows through
a parametrization (torch calls the projection weights directly, so a hook on `out_proj` never fires);
attention is linear in v, so that is exactly "head h's output times mask[h]".
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize

from edgeattn.models.config import ModelConfig
from edgeattn.models.head_adapters import ResidualOnly, copy_without_mask, set_proj_input_mask, sliced_linear
from edgeattn.models.heads import HEAD_ADAPTERS, HeadAdapter


class ValueRowScale(nn.Module):
    """Parametrization: multiply the value rows of a fused [q|k|v] weight (or bias) by a per-head mask."""

    def __init__(self, mask: torch.Tensor, qk_rows: int, head_dim: int) -> None:
        super().__init__()
        self.mask = mask  # not a buffer: the caller's tensor, so d loss / d mask reaches it
        self.qk_rows = qk_rows
        self.head_dim = head_dim

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        scale = torch.cat([w.new_ones(self.qk_rows), self.mask.to(w.dtype).repeat_interleave(self.head_dim)])
        return w * scale.view(-1, *([1] * (w.dim() - 1)))


def set_value_mask(
    owner: nn.Module,
    names: tuple[str, str],
    mask: torch.Tensor | None,
    heads: int,
    d: int,
    qk_rows: int | None = None,
) -> None:
    """(Re)place the value-row mask on `owner`'s weight and bias `names` (None removes it); the value
    rows start after `qk_rows` (default: a fused [q|k|v] layout)."""
    for name in names:
        if parametrize.is_parametrized(owner, name):
            parametrize.remove_parametrizations(owner, name, leave_parametrized=False)
    if mask is None:
        return
    if mask.numel() != heads:
        raise ValueError(f"head mask has {mask.numel()} entries for {heads} heads")
    for name in names:
        if getattr(owner, name, None) is not None:
            scale = ValueRowScale(mask, 2 * heads * d if qk_rows is None else qk_rows, d)
            parametrize.register_parametrization(owner, name, scale, unsafe=True)


class PrunedMultiheadAttention(nn.Module):
    """`nn.MultiheadAttention` with `num_heads * head_dim` != `embed_dim` (after head removal).

    Same call signature and return value (output, averaged weights or None); 2-D `attn_mask` and
    `key_padding_mask` are supported, as self-attention in classifiers uses them.
    """

    def __init__(
        self, embed_dim: int, num_heads: int, head_dim: int, bias: bool = True, batch_first: bool = False
    ) -> None:
        super().__init__()
        self.embed_dim, self.num_heads, self.head_dim = embed_dim, num_heads, head_dim
        self.batch_first = batch_first
        self.dropout = 0.0
        width = num_heads * head_dim
        # Separate q/k/v Linears (not one fused weight that is sliced at run time): quantizers need
        # each projection's weight as a constant of its own.
        self.q_proj = nn.Linear(embed_dim, width, bias=bias)
        self.k_proj = nn.Linear(embed_dim, width, bias=bias)
        self.v_proj = nn.Linear(embed_dim, width, bias=bias)
        self.out_proj = nn.Linear(width, embed_dim, bias=bias)

    def forward(
        self,
        query: torch.Tensor,
        key: torch.Tensor,
        value: torch.Tensor,
        key_padding_mask: torch.Tensor | None = None,
        need_weights: bool = True,
        attn_mask: torch.Tensor | None = None,
        average_attn_weights: bool = True,
        is_causal: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        unbatched = query.dim() == 2
        if unbatched:
            query, key, value = (t.unsqueeze(1) for t in (query, key, value))
            key_padding_mask = None if key_padding_mask is None else key_padding_mask.unsqueeze(0)
        if not self.batch_first or unbatched:
            query, key, value = (t.transpose(0, 1) for t in (query, key, value))
        q, k, v = (
            proj(t).unflatten(-1, (self.num_heads, self.head_dim)).transpose(1, 2)
            for t, proj in zip((query, key, value), (self.q_proj, self.k_proj, self.v_proj), strict=True)
        )
        attn = (q * self.head_dim**-0.5) @ k.transpose(-2, -1)
        if is_causal and attn_mask is None:
            n, s = attn.shape[-2:]
            attn_mask = torch.ones(n, s, dtype=torch.bool, device=attn.device).triu(1)
        for m, bcast in ((attn_mask, lambda t: t), (key_padding_mask, lambda t: t[:, None, None, :])):
            if m is not None:
                m = bcast(m)
                attn = attn.masked_fill(m, float("-inf")) if m.dtype == torch.bool else attn + m
        attn = attn.softmax(dim=-1)
        weights = attn
        if self.training and self.dropout > 0:
            attn = F.dropout(attn, self.dropout)
        out = self.out_proj((attn @ v).transpose(1, 2).flatten(2))
        if not self.batch_first or unbatched:
            out = out.transpose(0, 1)
        if unbatched:
            out = out.squeeze(1)
        if not need_weights:
            return out, None
        weights = weights.mean(1) if average_attn_weights else weights
        return out, weights.squeeze(0) if unbatched else weights

    def extra_repr(self) -> str:
        return f"embed_dim={self.embed_dim}, num_heads={self.num_heads}, head_dim={self.head_dim}"


class MultiheadAttentionAdapter(HeadAdapter):
    """`torch.nn.MultiheadAttention` (and its pruned form): in_proj rows [q|k|v] x heads x head_dim."""

    kind = "multihead_attention"
    has_attention_maps = True
    example_config = ModelConfig(
        "torchvision:VisionTransformer",
        10,
        32,
        {"image_size": 32, "patch_size": 8, "num_layers": 2, "num_heads": 4, "hidden_dim": 32, "mlp_dim": 64},
    )

    def matches(self, module: nn.Module) -> bool:
        if isinstance(module, PrunedMultiheadAttention):
            return True
        return (
            isinstance(module, nn.MultiheadAttention)
            and module._qkv_same_embed_dim
            and module.bias_k is None
            and not module.add_zero_attn
        )

    @staticmethod
    def qkv(module: nn.Module) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The fused [q|k|v] weight and bias of either form (a view for the pruned one)."""
        if isinstance(module, PrunedMultiheadAttention):
            projs = (module.q_proj, module.k_proj, module.v_proj)
            bias = None if module.q_proj.bias is None else torch.cat([p.bias for p in projs])
            return torch.cat([p.weight for p in projs]), bias
        return module.in_proj_weight, module.in_proj_bias

    def set_head_mask(self, module: nn.Module, mask: torch.Tensor | None) -> None:
        if isinstance(module, PrunedMultiheadAttention):  # its value rows are v_proj's own
            set_value_mask(
                module.v_proj, ("weight", "bias"), mask, module.num_heads, module.head_dim, qk_rows=0
            )
        else:
            set_value_mask(
                module, ("in_proj_weight", "in_proj_bias"), mask, module.num_heads, module.head_dim
            )

    def keep_heads(self, module: nn.Module, keep: list[int]) -> nn.Module:
        h, d = module.num_heads, module.head_dim
        weight, bias = self.qkv(module)
        rows = [
            torch.tensor([s * h * d + k * d + j for k in keep for j in range(d)], dtype=torch.long)
            for s in range(3)
        ]
        cols = torch.tensor([k * d + j for k in keep for j in range(d)], dtype=torch.long)
        new = PrunedMultiheadAttention(
            module.embed_dim, len(keep), d, bias=bias is not None, batch_first=module.batch_first
        )
        new.dropout = float(module.dropout)
        with torch.no_grad():
            for proj, r in zip((new.q_proj, new.k_proj, new.v_proj), rows, strict=True):
                proj.weight.copy_(weight.detach()[r])
                if bias is not None:
                    proj.bias.copy_(bias.detach()[r])
            new.out_proj = sliced_linear(module.out_proj, cols=cols)
        return new.train(module.training)

    def head_weight_norms(self, module: nn.Module) -> torch.Tensor:
        h, d = module.num_heads, module.head_dim
        weight, bias = self.qkv(module)
        w = weight.detach().abs().reshape(3, h, d, -1).sum(dim=(0, 2, 3))
        if bias is not None:
            w = w + bias.detach().abs().reshape(3, h, d).sum(dim=(0, 2))
        return w + module.out_proj.weight.detach().abs().reshape(-1, h, d).sum(dim=(0, 2))

    def attention_maps(self, module: nn.Module, x: torch.Tensor) -> torch.Tensor:
        if not module.batch_first:
            x = x.transpose(0, 1)
        h, d = module.num_heads, module.head_dim
        q, k, _ = F.linear(x, *self.qkv(module)).chunk(3, dim=-1)
        q, k = (t.unflatten(-1, (h, d)).transpose(1, 2) for t in (q, k))
        return ((q * d**-0.5) @ k.transpose(-2, -1)).softmax(dim=-1)


class SwinWindowAttentionAdapter(HeadAdapter):
    """timm Swin's `WindowAttention`: fused qkv rows [q|k|v] x heads x d, one bias-table column per head."""

    kind = "swin_window_attention"
    has_attention_maps = True
    example_config = ModelConfig(
        "timm:swin_tiny_patch4_window7_224",
        10,
        32,
        {"depths": [2, 2], "num_heads": [2, 4], "embed_dim": 16, "window_size": 4},
    )

    def matches(self, module: nn.Module) -> bool:
        from timm.models.swin_transformer import WindowAttention

        return type(module) is WindowAttention

    def set_head_mask(self, module: nn.Module, mask: torch.Tensor | None) -> None:
        set_proj_input_mask(module, mask, module.num_heads, module.qkv.out_features // (3 * module.num_heads))

    def keep_heads(self, module: nn.Module, keep: list[int]) -> nn.Module:
        if not keep:  # the block becomes its residual path (only with --min-heads-per-block 0)
            return ResidualOnly(module.proj.out_features, self.kind).train(module.training)
        h = module.num_heads
        d = module.qkv.out_features // (3 * h)
        rows = torch.tensor(
            [s * h * d + k * d + j for s in range(3) for k in keep for j in range(d)], dtype=torch.long
        )
        cols = torch.tensor([k * d + j for k in keep for j in range(d)], dtype=torch.long)
        new = copy_without_mask(module)
        new.qkv = sliced_linear(module.qkv, rows=rows)
        new.proj = sliced_linear(module.proj, cols=cols)
        table = module.relative_position_bias_table.detach()[:, torch.tensor(keep, dtype=torch.long)]
        new.relative_position_bias_table = nn.Parameter(table.clone())
        new.num_heads = len(keep)
        return new

    def head_weight_norms(self, module: nn.Module) -> torch.Tensor:
        h = module.num_heads
        d = module.qkv.out_features // (3 * h)
        w = module.qkv.weight.detach().abs().reshape(3, h, d, -1).sum(dim=(0, 2, 3))
        if module.qkv.bias is not None:
            w = w + module.qkv.bias.detach().abs().reshape(3, h, d).sum(dim=(0, 2))
        w = w + module.proj.weight.detach().abs().reshape(-1, h, d).sum(dim=(0, 2))
        return w + module.relative_position_bias_table.detach().abs().sum(dim=0)

    def attention_maps(self, module: nn.Module, x: torch.Tensor) -> torch.Tensor:
        b, n, _ = x.shape
        qkv = module.qkv(x).reshape(b, n, 3, module.num_heads, -1).permute(2, 0, 3, 1, 4)
        q, k, _ = qkv.unbind(0)
        attn = (q * module.scale) @ k.transpose(-2, -1)
        return (attn + module._get_rel_pos_bias()).softmax(dim=-1)


HEAD_ADAPTERS.register("multihead_attention", MultiheadAttentionAdapter())
HEAD_ADAPTERS.register("swin_window_attention", SwinWindowAttentionAdapter())
