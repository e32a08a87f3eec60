"""Head adapter for torchvision's `ShiftedWindowAttention` and `ShiftedWindowAttentionV2` (swin_t/s/b,
swin_v2_t/s/b).

torchvision's forward hands `self.qkv.weight` and `self.proj.weight` to the functional
`shifted_window_attention`, so hooks on `proj` never fire and the head width is taken as
`C // num_heads` of the *input* width. Hence: masking scales each head's value rows of `qkv` through a
parametrization (attention is linear in v, so that is exactly "head h's output times mask[h]"), and a
pruned block gets `PrunedShiftedWindowAttention(V2)`, whose forward is the same maths with an attention
width of kept_heads x head_dim. Per head, a block owns q/k/v rows, proj columns and either its column
of the relative position bias table (V1) or its row of the continuous-bias MLP's last layer and its
`logit_scale` (V2).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from edgeattn.models.config import ModelConfig
from edgeattn.models.head_adapters import copy_without_mask, sliced_linear
from edgeattn.models.heads import HEAD_ADAPTERS, HeadAdapter
from edgeattn.models.token_adapters import set_value_mask


def _shift_mask(
    pad_h: int, pad_w: int, window: list[int], shift: list[int], like: torch.Tensor
) -> torch.Tensor:
    """torchvision's attention mask for shifted windows: (num_windows, N, N), 0 within a region, -100 across."""
    mask = like.new_zeros((pad_h, pad_w))
    h_slices = ((0, -window[0]), (-window[0], -shift[0]), (-shift[0], None))
    w_slices = ((0, -window[1]), (-window[1], -shift[1]), (-shift[1], None))
    count = 0
    for h in h_slices:
        for w in w_slices:
            mask[h[0] : h[1], w[0] : w[1]] = count
            count += 1
    mask = mask.view(pad_h // window[0], window[0], pad_w // window[1], window[1])
    mask = mask.permute(0, 2, 1, 3).reshape(-1, window[0] * window[1])
    mask = mask.unsqueeze(1) - mask.unsqueeze(2)
    return mask.masked_fill(mask != 0, -100.0).masked_fill(mask == 0, 0.0)


def window_attention(module: nn.Module, x: torch.Tensor, return_maps: bool = False) -> torch.Tensor:
    """torchvision's `shifted_window_attention` for `module`, with head width taken from `qkv`'s rows
    (not `C // num_heads`), so it also runs a block with fewer heads than its input width implies.

    Returns the block output (B, H, W, C), or with `return_maps` the softmax maps (B*windows, heads, N, N).
    """
    window, heads = module.window_size, module.num_heads
    d = module.qkv.out_features // (3 * heads)
    b, h, w, c = x.shape
    pad_r = (window[1] - w % window[1]) % window[1]
    pad_b = (window[0] - h % window[0]) % window[0]
    x = F.pad(x, (0, 0, 0, pad_r, 0, pad_b))
    _, pad_h, pad_w, _ = x.shape
    shift = list(module.shift_size)
    if window[0] >= pad_h:
        shift[0] = 0
    if window[1] >= pad_w:
        shift[1] = 0
    if sum(shift) > 0:
        x = torch.roll(x, shifts=(-shift[0], -shift[1]), dims=(1, 2))
    n_win = (pad_h // window[0]) * (pad_w // window[1])
    x = x.view(b, pad_h // window[0], window[0], pad_w // window[1], window[1], c)
    x = x.permute(0, 1, 3, 2, 4, 5).reshape(b * n_win, window[0] * window[1], c)

    logit_scale = getattr(module, "logit_scale", None)
    qkv_bias = module.qkv.bias
    if logit_scale is not None and qkv_bias is not None:  # V2: the key bias is held at zero
        qkv_bias = qkv_bias.clone()
        length = qkv_bias.numel() // 3
        qkv_bias[length : 2 * length].zero_()
    qkv = F.linear(x, module.qkv.weight, qkv_bias)
    q, k, v = qkv.reshape(x.size(0), x.size(1), 3, heads, d).permute(2, 0, 3, 1, 4)
    if logit_scale is not None:
        attn = F.normalize(q, dim=-1) @ F.normalize(k, dim=-1).transpose(-2, -1)
        attn = attn * torch.clamp(logit_scale, max=math.log(100.0)).exp()
    else:
        attn = (q * d**-0.5).matmul(k.transpose(-2, -1))
    attn = attn + module.get_relative_position_bias()
    if sum(shift) > 0:
        mask = _shift_mask(pad_h, pad_w, window, shift, x)
        attn = attn.view(x.size(0) // n_win, n_win, heads, x.size(1), x.size(1))
        attn = (attn + mask.unsqueeze(1).unsqueeze(0)).view(-1, heads, x.size(1), x.size(1))
    attn = F.softmax(attn, dim=-1)
    if return_maps:
        return attn
    attn = F.dropout(attn, p=module.attention_dropout, training=module.training)
    x = attn.matmul(v).transpose(1, 2).reshape(x.size(0), x.size(1), heads * d)
    x = F.linear(x, module.proj.weight, module.proj.bias)
    x = F.dropout(x, p=module.dropout, training=module.training)
    x = x.view(b, pad_h // window[0], pad_w // window[1], window[0], window[1], c)
    x = x.permute(0, 1, 3, 2, 4, 5).reshape(b, pad_h, pad_w, c)
    if sum(shift) > 0:
        x = torch.roll(x, shifts=(shift[0], shift[1]), dims=(1, 2))
    return x[:, :h, :w, :].contiguous()


def _classes() -> tuple[type[nn.Module], type[nn.Module]]:
    from torchvision.models.swin_transformer import ShiftedWindowAttention, ShiftedWindowAttentionV2

    return ShiftedWindowAttention, ShiftedWindowAttentionV2


PRUNED: dict[type, type] = {}


def _pruned_class(base: type[nn.Module]) -> type[nn.Module]:
    """The pruned twin of `base` (defined on first use so importing edgeattn does not import torchvision)."""
    if base not in PRUNED:

        def forward(self: nn.Module, x: torch.Tensor) -> torch.Tensor:
            return window_attention(self, x)

        name = f"Pruned{base.__name__}"
        doc = f"{base.__name__} holding fewer heads than its width implies (after head removal)."
        PRUNED[base] = type(name, (base,), {"forward": forward, "__doc__": doc, "__module__": __name__})
    return PRUNED[base]


def _is_v2(module: nn.Module) -> bool:
    return hasattr(module, "cpb_mlp")


class TorchvisionSwinAttentionAdapter(HeadAdapter):
    """torchvision Swin (V1 and V2) window attention: qkv rows [q|k|v] x heads x d, per-head bias."""

    has_attention_maps = True

    def __init__(self, kind: str, v2: bool, example_config: ModelConfig) -> None:
        self.kind = kind
        self.v2 = v2
        self.example_config = example_config

    def _base(self) -> type[nn.Module]:
        return _classes()[1 if self.v2 else 0]

    def matches(self, module: nn.Module) -> bool:
        base = self._base()
        return type(module) is base or type(module) is PRUNED.get(base)

    @staticmethod
    def head_dim(module: nn.Module) -> int:
        return module.qkv.out_features // (3 * module.num_heads)

    def set_head_mask(self, module: nn.Module, mask: torch.Tensor | None) -> None:
        set_value_mask(module.qkv, ("weight", "bias"), mask, module.num_heads, self.head_dim(module))

    def keep_heads(self, module: nn.Module, keep: list[int]) -> nn.Module:
        if not keep:  # the functional form has no residual-only shape of its own; keep one head
            raise ValueError("a torchvision Swin attention block keeps at least one head")
        h, d = module.num_heads, self.head_dim(module)
        rows = torch.tensor([s * h * d + k * d + j for s in range(3) for k in keep for j in range(d)])
        cols = torch.tensor([k * d + j for k in keep for j in range(d)])
        idx = torch.tensor(keep, dtype=torch.long)
        new = copy_without_mask(module)
        new.__class__ = _pruned_class(self._base())
        with torch.no_grad():
            new.qkv = sliced_linear(module.qkv, rows=rows)
            new.proj = sliced_linear(module.proj, cols=cols)
            if self.v2:
                new.logit_scale = nn.Parameter(module.logit_scale.detach()[idx].clone())
                new.cpb_mlp[2] = sliced_linear(module.cpb_mlp[2], rows=idx)
            else:
                table = module.relative_position_bias_table.detach()[:, idx]
                new.relative_position_bias_table = nn.Parameter(table.clone())
        new.num_heads = len(keep)
        return new.train(module.training)

    def head_weight_norms(self, module: nn.Module) -> torch.Tensor:
        h, d = module.num_heads, self.head_dim(module)
        w = module.qkv.weight.detach().abs().reshape(3, h, d, -1).sum(dim=(0, 2, 3))
        if module.qkv.bias is not None:
            w = w + module.qkv.bias.detach().abs().reshape(3, h, d).sum(dim=(0, 2))
        w = w + module.proj.weight.detach().abs().reshape(-1, h, d).sum(dim=(0, 2))
        if self.v2:
            return w + module.cpb_mlp[2].weight.detach().abs().sum(dim=1)
        return w + module.relative_position_bias_table.detach().abs().sum(dim=0)

    def attention_maps(self, module: nn.Module, x: torch.Tensor) -> torch.Tensor:
        return window_attention(module, x, return_maps=True)


def _example(arch: str) -> ModelConfig:
    """A two-stage swin with 4x4 windows at 32 px: stage 1 shifts its windows, stage 2 (4x4 tokens) cannot."""
    options = {"depths": [2, 2], "num_heads": [2, 4], "embed_dim": 16, "window_size": [4, 4]}
    return ModelConfig(f"torchvision:{arch}", 10, 32, options)


HEAD_ADAPTERS.register(
    "torchvision_swin_attention",
    TorchvisionSwinAttentionAdapter("torchvision_swin_attention", False, _example("swin_t")),
)
HEAD_ADAPTERS.register(
    "torchvision_swin_v2_attention",
    TorchvisionSwinAttentionAdapter("torchvision_swin_v2_attention", True, _example("swin_v2_t")),
)
