"""Head adapter for timm EfficientFormerV2's `Attention2d` (NCHW attention with "talking heads").

Its talking-head convs mix the attention logits of all heads before and after the softmax, so a
head's query and key feed every other head: they cannot go. What belongs to head h alone is its value
path: v's channels, the depthwise `v_local` channels, row h of `talking_head2` and proj's input
columns. Removing a head removes exactly those, which equals masking the head's slice of proj's input;
q, k, `talking_head1` and the bias table stay whole (`PrunedAttention2d` keeps the original head count
for them).

The downsampling variant (`Attention2dDownsample`, the attention branch of the last stage's
`Downsample`) has no talking heads: each head owns its q rows (the `LocalGlobalQuery` projection), k
rows, v and `v_local` channels, its row of the bias table and proj's input columns, so removing a head
removes all of them and timm's own forward runs the smaller block.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from edgeattn.models.config import ModelConfig
from edgeattn.models.head_adapters import copy_without_mask, install_mask_hook
from edgeattn.models.heads import HEAD_ADAPTERS, HeadAdapter


def _attention2d() -> type[nn.Module]:
    from timm.models.efficientformer_v2 import Attention2d

    return Attention2d


def _attention2d_downsample() -> type[nn.Module]:
    from timm.models.efficientformer_v2 import Attention2dDownsample

    return Attention2dDownsample


def _pruned_class() -> type[nn.Module]:
    """`PrunedAttention2d`, defined on first use so importing edgeattn does not import timm."""
    global PRUNED
    if PRUNED is None:
        base = _attention2d()

        class PrunedAttention2d(base):  # type: ignore[misc, valid-type]
            """Attention2d whose value path holds `num_heads` of the `qk_heads` query/key heads."""

            qk_heads: int

            def forward(self, x: torch.Tensor) -> torch.Tensor:
                b = x.shape[0]
                if self.stride_conv is not None:
                    x = self.stride_conv(x)
                q = self.q(x).reshape(b, self.qk_heads, -1, self.N).permute(0, 1, 3, 2)
                k = self.k(x).reshape(b, self.qk_heads, -1, self.N)
                v = self.v(x)
                v_local = self.v_local(v)
                v = v.reshape(b, self.num_heads, -1, self.N).permute(0, 1, 3, 2)
                attn = (q @ k) * self.scale + self.get_attention_biases(x.device)
                attn = self.talking_head2(self.talking_head1(attn).softmax(dim=-1))
                x = (attn @ v).transpose(2, 3).reshape(b, self.dh, *self.resolution) + v_local
                if self.upsample is not None:
                    x = self.upsample(x)
                return self.proj(self.act(x))

        PRUNED = PrunedAttention2d
    return PRUNED


PRUNED: type[nn.Module] | None = None


def _sliced_conv(
    conv: nn.Conv2d, rows: torch.Tensor | None, cols: torch.Tensor | None, depthwise: bool
) -> nn.Conv2d:
    new = copy.deepcopy(conv)
    w = conv.weight.detach()
    w = w[rows] if rows is not None else w
    w = w[:, cols] if cols is not None else w
    new.weight = nn.Parameter(w.clone())
    if conv.bias is not None:
        new.bias = nn.Parameter(
            (conv.bias.detach()[rows] if rows is not None else conv.bias.detach()).clone()
        )
    new.out_channels = w.shape[0]
    new.in_channels = w.shape[0] if depthwise else w.shape[1] * conv.groups
    if depthwise:
        new.groups = w.shape[0]
    return new


def _sliced_convnorm(cn: nn.Module, rows=None, cols=None, depthwise: bool = False) -> nn.Module:  # noqa: ANN001
    new = copy.deepcopy(cn)
    new.conv = _sliced_conv(cn.conv, rows, cols, depthwise)
    if rows is not None:
        bn = copy.deepcopy(cn.bn)
        bn.weight = nn.Parameter(cn.bn.weight.detach()[rows].clone())
        bn.bias = nn.Parameter(cn.bn.bias.detach()[rows].clone())
        bn.running_mean = cn.bn.running_mean[rows].clone()
        bn.running_var = cn.bn.running_var[rows].clone()
        bn.num_features = len(rows)
        new.bn = bn
    return new


def _set_channel_mask(module: nn.Module, mask: torch.Tensor | None) -> None:
    """Scale head h's channels of proj's NCHW input (head-major, d each) by mask[h], via a pre-hook."""
    install_mask_hook(
        module, mask, module.num_heads, lambda x, m: x * m.repeat_interleave(module.d).view(1, -1, 1, 1)
    )


def _head_rows(keep: list[int], width: int) -> torch.Tensor:
    return torch.tensor([k * width + j for k in keep for j in range(width)], dtype=torch.long)


class EfficientFormerV2AttentionAdapter(HeadAdapter):
    kind = "efficientformerv2_attention"
    has_attention_maps = False  # talking heads: a head's map is a mix of every head's logits
    # Three stages: the fourth stage's Downsample carries an Attention2dDownsample (another kind).
    example_config = ModelConfig(
        "timm:efficientformerv2_s0", 10, 64, {"depths": [1, 1, 2], "embed_dims": [16, 16, 32]}
    )

    def matches(self, module: nn.Module) -> bool:
        return type(module) is _attention2d() or (PRUNED is not None and type(module) is PRUNED)

    def set_head_mask(self, module: nn.Module, mask: torch.Tensor | None) -> None:
        _set_channel_mask(module, mask)

    def keep_heads(self, module: nn.Module, keep: list[int]) -> nn.Module:
        if not keep:
            raise ValueError("an EfficientFormerV2 attention block keeps at least one head")
        d = module.d
        rows = torch.tensor([k * d + j for k in keep for j in range(d)], dtype=torch.long)
        new = copy_without_mask(module)
        new.__class__ = _pruned_class()
        new.qk_heads = getattr(module, "qk_heads", module.num_heads)
        new.v = _sliced_convnorm(module.v, rows=rows)
        new.v_local = _sliced_convnorm(module.v_local, rows=rows, depthwise=True)
        new.proj = _sliced_convnorm(module.proj, cols=rows)
        th2 = module.talking_head2
        new.talking_head2 = _sliced_conv(th2, torch.tensor(keep, dtype=torch.long), None, depthwise=False)
        new.num_heads = len(keep)
        new.dh = d * len(keep)
        return new

    def head_weight_norms(self, module: nn.Module) -> torch.Tensor:
        h, d = module.num_heads, module.d
        v = module.v.conv.weight.detach().abs().reshape(h, d, -1).sum(dim=(1, 2))
        proj = module.proj.conv.weight.detach().abs().reshape(module.proj.conv.out_channels, h, d, -1)
        return (
            v + proj.sum(dim=(0, 2, 3)) + module.talking_head2.weight.detach().abs().reshape(h, -1).sum(dim=1)
        )


class EfficientFormerV2DownsampleAdapter(HeadAdapter):
    """`Attention2dDownsample`: per-head q/k (key_dim), v/v_local (d) channels and bias-table rows."""

    kind = "efficientformerv2_downsample_attention"
    has_attention_maps = True
    # num_vit=0: no Attention2d blocks, so the last stage's downsampling attention is the only kind.
    example_config = ModelConfig(
        "timm:efficientformerv2_s0",
        10,
        64,
        {"depths": [1, 1, 1, 1], "embed_dims": [16, 16, 32, 64], "num_vit": 0},
    )

    def matches(self, module: nn.Module) -> bool:
        return type(module) is _attention2d_downsample()

    def set_head_mask(self, module: nn.Module, mask: torch.Tensor | None) -> None:
        _set_channel_mask(module, mask)

    def keep_heads(self, module: nn.Module, keep: list[int]) -> nn.Module:
        if not keep:  # Downsample adds this branch to its strided conv; keep it a real attention
            raise ValueError("an EfficientFormerV2 downsampling attention block keeps at least one head")
        kd, d = module.key_dim, module.d
        qk_rows, v_rows = _head_rows(keep, kd), _head_rows(keep, d)
        new = copy_without_mask(module)
        new.q.proj = _sliced_convnorm(module.q.proj, rows=qk_rows)
        new.k = _sliced_convnorm(module.k, rows=qk_rows)
        new.v = _sliced_convnorm(module.v, rows=v_rows)
        new.v_local = _sliced_convnorm(module.v_local, rows=v_rows, depthwise=True)
        new.proj = _sliced_convnorm(module.proj, cols=v_rows)
        new.attention_biases = nn.Parameter(
            module.attention_biases.detach()[torch.tensor(keep, dtype=torch.long)].clone()
        )
        new.num_heads = len(keep)
        new.dh = d * len(keep)
        new.attention_bias_cache = {}
        new.train(module.training)  # timm's train() returns None, not the module
        return new

    def head_weight_norms(self, module: nn.Module) -> torch.Tensor:
        h, kd, d = module.num_heads, module.key_dim, module.d
        q = module.q.proj.conv.weight.detach().abs().reshape(h, kd, -1).sum(dim=(1, 2))
        k = module.k.conv.weight.detach().abs().reshape(h, kd, -1).sum(dim=(1, 2))
        v = module.v.conv.weight.detach().abs().reshape(h, d, -1).sum(dim=(1, 2))
        proj = module.proj.conv.weight.detach().abs().reshape(module.proj.conv.out_channels, h, d, -1)
        return q + k + v + proj.sum(dim=(0, 2, 3)) + module.attention_biases.detach().abs().sum(dim=1)

    def attention_maps(self, module: nn.Module, x: torch.Tensor) -> torch.Tensor:
        b = x.shape[0]
        q = module.q(x).reshape(b, module.num_heads, -1, module.N2).permute(0, 1, 3, 2)
        k = module.k(x).reshape(b, module.num_heads, -1, module.N)
        attn = (q @ k) * module.scale + module.attention_biases[:, module.attention_bias_idxs]
        return attn.softmax(dim=-1)


HEAD_ADAPTERS.register("efficientformerv2_attention", EfficientFormerV2AttentionAdapter())
HEAD_ADAPTERS.register("efficientformerv2_downsample_attention", EfficientFormerV2DownsampleAdapter())
