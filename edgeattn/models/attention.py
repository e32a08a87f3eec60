"""Attention blocks for attn_vgg, all on NCHW feature maps with a residual connection.

`LinearAttention2d` is true O(N) kernelized attention (Katharopoulos et al. 2020, phi = elu + 1):
it never forms the N x N matrix, so it runs at 224 x 224. `SoftmaxAttention2d` is classic multi-head
self-attention (O(N^2): small inputs only). Neither uses positional terms, so both are equivariant to
a permutation of spatial positions. `SE`, `ECA` and `CBAM` are channel/spatial attentions without heads;
`psa` (PSANet's point-wise spatial attention, in `psa.py`) is spatial attention without heads.

Multi-head blocks keep q, k and v in one 1x1 conv whose output channels are ordered
[q heads | k heads | v heads]; pruning removes a head by slicing those rows and the matching
`proj` input columns. `head_mask` (one weight per head, None = all ones) multiplies each head's output
before `proj`: it is how head importance is measured and how pruning is checked against masking.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from edgeattn.models.psa import PointwiseSpatialAttention


class MultiHeadAttention2d(nn.Module):
    """Shared structure of the multi-head blocks: pre-norm, fused qkv, per-head mixing, proj, residual."""

    def __init__(
        self, channels: int, num_heads: int = 4, head_dim: int | None = None, norm: bool = True
    ) -> None:
        super().__init__()
        if head_dim is None:
            if channels % num_heads:
                raise ValueError(f"{channels} channels do not split into {num_heads} heads")
            head_dim = channels // num_heads
        self.channels = channels
        self.num_heads = num_heads
        self.head_dim = head_dim
        # norm=False: the pre-norm was folded into qkv (fold_norm) and the structure is rebuilt without it.
        self.norm: nn.Module = nn.BatchNorm2d(channels) if norm else nn.Identity()
        self.qkv = nn.Conv2d(channels, 3 * num_heads * head_dim, 1) if num_heads else None
        self.proj = nn.Conv2d(num_heads * head_dim, channels, 1) if num_heads else None
        self.head_mask: torch.Tensor | None = None

    def mix(
        self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, tokens: int | None = None
    ) -> torch.Tensor:
        """(B, heads, d, N) x3 -> (B, heads, d, N): tokens last, as NCHW stores them.

        `tokens` is N, taken from the block's input: read from q, k or v, an exported INT8 graph
        would dequantize that tensor a second time only to read its shape."""
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.num_heads == 0:  # every head pruned: the block is its residual path alone
            return x
        b, c, h, w = x.shape
        n = h * w
        # NCHW already holds each head as (d, N): reshaping is free, and no full-size transpose is
        # needed on the way in or out (they cost more than the matmuls at 224 x 224).
        q, k, v = self.qkv(self.norm(x)).reshape(b, 3, self.num_heads, self.head_dim, n).unbind(1)
        out = self.mix(q, k, v, n)
        if self.head_mask is not None:
            out = out * self.head_mask.view(1, -1, 1, 1).to(out.dtype)
        # (B, heads, d, N) -> (B, heads*d, H, W): channels are head-major, matching qkv's rows.
        return x + self.proj(out.reshape(b, self.num_heads * self.head_dim, h, w))

    @torch.no_grad()
    def fold_norm(self) -> None:
        """Fold the pre-norm BatchNorm into the qkv 1x1 conv: qkv(bn(x)) = qkv'(x), exact in float
        (no padding). Why: in an INT8 graph the BatchNorm's output is requantized for the conv, so it
        cannot be folded there and costs a float BatchNorm, a QuantizeLinear and layout transposes per
        block; folded first, the conv reads the residual stream, which is already quantized."""
        if not isinstance(self.norm, nn.BatchNorm2d):
            return
        bn = self.norm
        scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
        shift = bn.bias - bn.running_mean * scale
        if self.qkv is not None:
            weight = self.qkv.weight  # (out, in, 1, 1)
            self.qkv.bias.add_(weight[:, :, 0, 0] @ shift)
            weight.mul_(scale.view(1, -1, 1, 1))
        self.norm = nn.Identity()

    def extra_repr(self) -> str:
        return f"channels={self.channels}, num_heads={self.num_heads}, head_dim={self.head_dim}"


class LinearAttention2d(MultiHeadAttention2d):
    """Kernelized attention: phi(q) (phi(k)^T v) / (phi(q) sum phi(k)); O(N d^2) time, O(d^2) memory."""

    eps = 1e-6

    def mix(
        self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, tokens: int | None = None
    ) -> torch.Tensor:
        q = F.elu(q) + 1.0
        # phi(k) / N: numerator and denominator both scale by 1/N, so the result is the same, but the
        # sums over N positions stay O(1) instead of O(N) -- in FP16 (Core ML, TensorRT) the plain sums
        # overflow 65504 at 32x32 and give inf/inf = NaN.
        k = (F.elu(k) + 1.0) / (k.shape[-1] if tokens is None else tokens)
        # Written on (d, N) tiles: (phi(k)^T v)^T = v phi(k)^T, whose transposed operand runtimes fold
        # into the matmul, and phi(q) enters from the right, so the output stays (d, N).
        kv_t = v @ k.transpose(-1, -2)  # (B, heads, d, d)
        z = k.sum(dim=-1, keepdim=True).transpose(-1, -2) @ q  # (B, heads, 1, N)
        return (kv_t @ q) / (z + self.eps)


class SoftmaxAttention2d(MultiHeadAttention2d):
    """Multi-head softmax self-attention over all spatial positions (O(N^2): small inputs only)."""

    def mix(
        self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, tokens: int | None = None
    ) -> torch.Tensor:
        attn = (q.transpose(-1, -2) @ k) * (self.head_dim**-0.5)  # (B, heads, N, N)
        attn = attn.softmax(dim=-1)
        self.last_attention = attn.detach() if getattr(self, "keep_attention", False) else None
        return v @ attn.transpose(-1, -2)


class SqueezeExcite(nn.Module):
    """Squeeze-and-Excitation (Hu et al. 2018): channel gates from global average pooling."""

    num_heads = 0

    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        hidden = max(8, channels // reduction)
        self.fc1 = nn.Conv2d(channels, hidden, 1)
        self.fc2 = nn.Conv2d(hidden, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = x.mean((2, 3), keepdim=True)
        return x * torch.sigmoid(self.fc2(F.relu(self.fc1(s))))


class EfficientChannelAttention(nn.Module):
    """ECA (Wang et al. 2020): a 1-D conv across channels of the pooled descriptor, kernel from C."""

    num_heads = 0

    def __init__(self, channels: int, gamma: int = 2, b: int = 1) -> None:
        super().__init__()
        k = int(abs((math.log2(channels) + b) / gamma))
        k = k if k % 2 else k + 1
        self.conv = nn.Conv1d(1, 1, k, padding=k // 2, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = x.mean((2, 3))  # (B, C)
        s = self.conv(s.unsqueeze(1)).squeeze(1)
        return x * torch.sigmoid(s)[:, :, None, None]


class CBAM(nn.Module):
    """CBAM (Woo et al. 2018): channel attention (avg+max MLP) then spatial attention (7x7 conv)."""

    num_heads = 0

    def __init__(self, channels: int, reduction: int = 16, kernel_size: int = 7) -> None:
        super().__init__()
        hidden = max(8, channels // reduction)
        self.mlp = nn.Sequential(nn.Conv2d(channels, hidden, 1), nn.ReLU(), nn.Conv2d(hidden, channels, 1))
        self.spatial = nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ca = torch.sigmoid(self.mlp(x.mean((2, 3), keepdim=True)) + self.mlp(x.amax((2, 3), keepdim=True)))
        x = x * ca
        sa = torch.sigmoid(self.spatial(torch.cat([x.mean(1, keepdim=True), x.amax(1, keepdim=True)], 1)))
        return x * sa


ATTENTION_KINDS: dict[str, type[nn.Module] | None] = {
    "linear": LinearAttention2d,
    "softmax": SoftmaxAttention2d,
    "se": SqueezeExcite,
    "eca": EfficientChannelAttention,
    "cbam": CBAM,
    "psa": PointwiseSpatialAttention,
    "none": None,
}


def make_attention(
    kind: str, channels: int, num_heads: int, resolution: tuple[int, int] = (7, 7), norm: bool = True
) -> nn.Module:
    """The attention block `kind` for a `channels`-wide feature map of (at most) `resolution`;
    `norm=False` builds multi-head blocks whose pre-norm was folded into qkv."""
    cls = ATTENTION_KINDS[kind]
    if cls is None:
        return nn.Identity()
    if issubclass(cls, MultiHeadAttention2d):
        return cls(channels, num_heads, norm=norm)
    if cls is PointwiseSpatialAttention:  # its maps are sized by the feature resolution
        return cls(channels, resolution)
    return cls(channels)
