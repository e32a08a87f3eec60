"""Registers the timm families (MobileViT v1, EfficientFormer v1) in the zoo.

Models are always built with `pretrained=False`: weights come from files (see `checkpoint.py`), never
from a hub. EfficientFormer's attention bias table is sized for a 7x7 final feature map (224 input); for
other input sizes its attention modules are rebuilt for the real resolution (input / 32).
"""

from __future__ import annotations

import torch
from torch import nn

from edgeattn.models.config import InputSpec, ModelConfig
from edgeattn.models.registry import MODELS, ModelSpec

TIMM_MODELS = {
    "mobilevit_xxs": ("mobilevit", 256, "MobileViT-XXS (Mehta & Rastegari 2022), 1.27 M params"),
    "mobilevit_xs": ("mobilevit", 256, "MobileViT-XS, 2.3 M params"),
    "mobilevit_s": ("mobilevit", 256, "MobileViT-S, 5.6 M params"),
    "efficientformer_l1": ("efficientformer", 224, "EfficientFormer-L1 (Li et al. 2022), 12.3 M params"),
    "efficientformer_l3": ("efficientformer", 224, "EfficientFormer-L3, 31.4 M params"),
    "efficientformer_l7": ("efficientformer", 224, "EfficientFormer-L7, 82.2 M params"),
}


def _build(name: str, family: str):
    def build(cfg: ModelConfig) -> nn.Module:
        import timm

        model = timm.create_model(name, pretrained=False, num_classes=cfg.num_classes, **cfg.options)
        if family == "efficientformer":
            resize_efficientformer_attention(model, cfg.input_size // 32)
        return model

    return build


def resize_efficientformer_attention(model: nn.Module, resolution: int) -> None:
    """Rebuild EfficientFormer's attention modules for a `resolution` x `resolution` token grid."""
    from timm.models.efficientformer import Attention

    for parent in list(model.modules()):
        for child_name, child in list(parent.named_children()):
            if isinstance(child, Attention) and child.attention_biases.shape[1] != resolution * resolution:
                new = Attention(
                    dim=child.qkv.in_features,
                    key_dim=child.key_dim,
                    num_heads=child.num_heads,
                    attn_ratio=child.attn_ratio,
                    resolution=resolution,
                )
                with torch.no_grad():
                    new.qkv.load_state_dict(child.qkv.state_dict())
                    new.proj.load_state_dict(child.proj.state_dict())
                setattr(parent, child_name, new)


def _input_spec(name: str):
    def spec(cfg: ModelConfig) -> InputSpec:
        import timm

        pc = timm.models.get_pretrained_cfg(name).to_dict()
        return InputSpec(
            size=(cfg.input_size, cfg.input_size),
            mean=tuple(pc["mean"]),
            std=tuple(pc["std"]),
            interpolation=pc.get("interpolation", "bilinear"),
            crop_pct=float(pc.get("crop_pct", 1.0)),
        )

    return spec


for _name, (_family, _size, _desc) in TIMM_MODELS.items():
    MODELS.register(
        _name,
        ModelSpec(
            name=_name,
            family=_family,
            build=_build(_name, _family),
            default_input_size=_size,
            input_multiple=32,
            input_spec=_input_spec(_name),
            description=_desc,
        ),
    )
