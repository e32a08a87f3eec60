"""attn_vgg: VGG11/13/16/19 (Simonyan & Zisserman 2015) with an attention block after each conv stage.

With `attention="none"` and `head="classic"` at 224 x 224 the network is exactly torchvision's VGG
(VGG16: 138.36 M parameters, 15.5 G MACs), so counts can be checked against the paper. The "small"
head (global average pool + one linear layer) suits the small inputs used on the edge and in tests.
"""

from __future__ import annotations

import torch
from torch import nn

from edgeattn.models.attention import ATTENTION_KINDS, MultiHeadAttention2d, make_attention

# attention_norm: the multi-head blocks' pre-norm, a BatchNorm, or "folded" into their qkv convs
# (fold_for_inference; exact in float), the structure an INT8 checkpoint of a folded model rebuilds.
ATTENTION_NORMS = ("batchnorm", "folded")

# Channels per conv layer, one list per stage; each stage ends in a 2x2 max-pool.
VGG_LAYOUTS: dict[str, list[list[int]]] = {
    "vgg11": [[64], [128], [256, 256], [512, 512], [512, 512]],
    "vgg13": [[64, 64], [128, 128], [256, 256], [512, 512], [512, 512]],
    "vgg16": [[64, 64], [128, 128], [256, 256, 256], [512, 512, 512], [512, 512, 512]],
    "vgg19": [[64, 64], [128, 128], [256, 256, 256, 256], [512, 512, 512, 512], [512, 512, 512, 512]],
}


class AttnVGG(nn.Module):
    def __init__(
        self,
        layout: str = "vgg16",
        num_classes: int = 1000,
        attention: str = "linear",
        num_heads: int = 4,
        head: str = "small",
        width: float = 1.0,
        batch_norm: bool = False,
        dropout: float = 0.5,
        input_size: int = 224,
        attention_norm: str = "batchnorm",
    ) -> None:
        super().__init__()
        if attention not in ATTENTION_KINDS:
            raise ValueError(f"unknown attention kind {attention!r}")
        if attention_norm not in ATTENTION_NORMS:
            raise ValueError(
                f"unknown attention_norm {attention_norm!r} (one of {', '.join(ATTENTION_NORMS)})"
            )
        if head not in ("small", "classic"):
            raise ValueError(f"unknown classifier head {head!r}")
        self.attention_kind = attention
        stages: list[nn.Module] = []
        in_ch = 3
        for index, stage_channels in enumerate(VGG_LAYOUTS[layout]):
            side = max(1, input_size // 2**index)  # the stage's feature map, before its pool
            layers: list[nn.Module] = []
            for ch in stage_channels:
                ch = max(8, int(round(ch * width)))
                layers.append(nn.Conv2d(in_ch, ch, 3, padding=1))
                if batch_norm:
                    layers.append(nn.BatchNorm2d(ch))
                layers.append(nn.ReLU(inplace=True))
                in_ch = ch
            stages.append(
                nn.ModuleDict(
                    {
                        "convs": nn.Sequential(*layers),
                        "attn": make_attention(
                            attention, in_ch, num_heads, (side, side), norm=attention_norm == "batchnorm"
                        ),
                        "pool": nn.MaxPool2d(2, 2),
                    }
                )
            )
        self.stages = nn.ModuleList(stages)
        if head == "classic":
            self.avgpool: nn.Module = nn.AdaptiveAvgPool2d((7, 7))
            self.classifier = nn.Sequential(
                nn.Flatten(1),
                nn.Linear(in_ch * 49, 4096),
                nn.ReLU(inplace=True),
                nn.Dropout(dropout),
                nn.Linear(4096, 4096),
                nn.ReLU(inplace=True),
                nn.Dropout(dropout),
                nn.Linear(4096, num_classes),
            )
        else:
            self.avgpool = nn.AdaptiveAvgPool2d(1)
            self.classifier = nn.Sequential(
                nn.Flatten(1), nn.Dropout(dropout * 0.4), nn.Linear(in_ch, num_classes)
            )

    def fold_for_inference(self) -> dict[str, str]:
        """Fold every multi-head block's pre-norm into its qkv conv (exact in float); returns the
        model options that rebuild the folded structure (edgeattn.models.fold)."""
        for stage in self.stages:
            if isinstance(stage["attn"], MultiHeadAttention2d):
                stage["attn"].fold_norm()
        return {"attention_norm": "folded"}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for stage in self.stages:
            x = stage["pool"](stage["attn"](stage["convs"](x)))
        return self.classifier(self.avgpool(x))
