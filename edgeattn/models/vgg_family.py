"""Registers attn_vgg11/13/16/19 in the zoo."""

from __future__ import annotations

from torch import nn

from edgeattn.models.attn_vgg import VGG_LAYOUTS, AttnVGG
from edgeattn.models.config import IMAGENET_MEAN, IMAGENET_STD, InputSpec, ModelConfig
from edgeattn.models.registry import MODELS, ModelSpec

VGG_DEFAULTS = {
    "attention": "linear",
    "num_heads": 4,
    "head": "small",
    "width": 1.0,
    "batch_norm": False,
    "attention_norm": "batchnorm",
}


def _build(layout: str):
    def build(cfg: ModelConfig) -> nn.Module:
        opts = {**VGG_DEFAULTS, **cfg.options}
        unknown = set(opts) - set(VGG_DEFAULTS) - {"dropout"}
        if unknown:
            raise ValueError(f"unknown attn_vgg options: {sorted(unknown)}")
        return AttnVGG(layout=layout, num_classes=cfg.num_classes, input_size=cfg.input_size, **opts)

    return build


def _input_spec(cfg: ModelConfig) -> InputSpec:
    return InputSpec(size=(cfg.input_size, cfg.input_size), mean=IMAGENET_MEAN, std=IMAGENET_STD)


for _layout in VGG_LAYOUTS:
    MODELS.register(
        f"attn_{_layout}",
        ModelSpec(
            name=f"attn_{_layout}",
            family="attn_vgg",
            build=_build(_layout),
            default_input_size=224,
            input_multiple=32,
            input_spec=_input_spec,
            description=f"{_layout.upper()} with an attention block after each conv stage",
            default_options=dict(VGG_DEFAULTS),
        ),
    )
