"""PSA: point-wise spatial attention (Zhao et al., "PSANet", ECCV 2018), for NCHW feature maps.

Every position i predicts an over-complete map of (2H-1) x (2W-1) weights, one per relative offset;
the H x W window of it centred on i is i's row of the position-to-position map (HW x HW). Two
branches: "collect" (position i gathers from every j with i's map) and "distribute" (position i sends
itself to every j with i's map; j sums what it receives). Each map is a softmax over positions.

The maps are gathered with an index over relative offsets, so the shapes are right for any channel
count and any feature size up to the one the block was built for (smaller maps use the centre of the
predicted window). The often-copied shortcut that reshapes a C x C product into C x H x W only runs
when C == H x W and is not used. Cost is O((HW)^2): small feature maps only, like softmax attention.
"""

from __future__ import annotations

import torch
from torch import nn


def _conv_bn_relu(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


def relative_index(
    h: int, w: int, max_h: int, max_w: int, device: torch.device | None = None
) -> torch.Tensor:
    """(HW, HW) index into the flattened (2*max_h-1) x (2*max_w-1) map: entry [i, j] is the channel
    that position i predicts for position j (relative offset j - i, centred at max_h-1, max_w-1)."""
    ys = torch.arange(h, device=device).repeat_interleave(w)
    xs = torch.arange(w, device=device).repeat(h)
    dy = ys[None, :] - ys[:, None] + (max_h - 1)
    dx = xs[None, :] - xs[:, None] + (max_w - 1)
    return dy * (2 * max_w - 1) + dx


class PointwiseSpatialAttention(nn.Module):
    """PSA block with a residual connection: x + proj([collect(x), distribute(x)])."""

    num_heads = 0

    def __init__(self, channels: int, resolution: tuple[int, int], reduction: int = 4) -> None:
        super().__init__()
        self.channels = channels
        self.max_h, self.max_w = int(resolution[0]), int(resolution[1])
        if self.max_h < 1 or self.max_w < 1:
            raise ValueError(f"PSA needs a positive feature size, got {resolution}")
        inner = max(8, channels // reduction)
        offsets = (2 * self.max_h - 1) * (2 * self.max_w - 1)
        self.reduce = nn.ModuleList([_conv_bn_relu(channels, inner) for _ in range(2)])
        self.predict = nn.ModuleList(
            [nn.Sequential(_conv_bn_relu(inner, inner), nn.Conv2d(inner, offsets, 1)) for _ in range(2)]
        )
        self.proj = _conv_bn_relu(2 * inner, channels)

    def maps(self, x: torch.Tensor, branch: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Reduced features (B, C', HW) and the branch's attention (B, HW_i, HW_j), softmax over j."""
        b, _, h, w = x.shape
        if h > self.max_h or w > self.max_w:
            raise ValueError(
                f"PSA built for {self.max_h}x{self.max_w} feature maps got {h}x{w}; build it for the larger size"
            )
        feats = self.reduce[branch](x)
        pred = self.predict[branch](feats).flatten(2).transpose(1, 2)  # (B, HW_i, offsets)
        index = relative_index(h, w, self.max_h, self.max_w, x.device)
        attn = torch.gather(pred, 2, index.unsqueeze(0).expand(b, -1, -1))  # (B, HW_i, HW_j)
        return feats.flatten(2), attn.softmax(dim=-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, h, w = x.shape
        feats, collect = self.maps(x, 0)
        gathered = feats @ collect.transpose(1, 2)  # out[:, :, i] = sum_j a_ij x_j
        feats_d, distribute = self.maps(x, 1)
        spread = feats_d @ distribute  # out[:, :, j] = sum_i a_ij x_i
        both = torch.cat([gathered, spread], dim=1).reshape(b, -1, h, w)
        return x + self.proj(both)

    def extra_repr(self) -> str:
        return f"channels={self.channels}, max_size=({self.max_h}, {self.max_w})"
