"""`timm:NAME`: any timm architecture, built with `pretrained=False` (weights only ever come from files).

The input spec (mean/std, interpolation, crop) is the model's own `pretrained_cfg`, so a model imported
from a timm release is preprocessed exactly as it was trained. Models whose config says
`fixed_input_size` (ViT, Swin, EfficientFormerV2, ...) are built for the configured input size
(`img_size`), which is how small test instances (32 px) work; other model options pass through to
`timm.create_model` unchanged (e.g. `depth`, `embed_dim`, `num_heads`).
"""

from __future__ import annotations

from typing import Any

from torch import nn

from edgeattn.models.config import InputSpec, ModelConfig
from edgeattn.models.registry import MODEL_SOURCES, ModelSource, ModelSpec

# timm modules whose models mix tokens with softmax attention (NNCF quantizes those as transformers).
TRANSFORMER_MODULES = (
    "vision_transformer",
    "vision_transformer_hybrid",
    "deit",
    "swin_transformer",
    "swin_transformer_v2",
    "efficientformer",
    "efficientformer_v2",
    "mobilevit",
    "levit",
    "beit",
    "eva",
    "cait",
    "xcit",
    "crossvit",
    "twins",
    "pvt_v2",
    "tiny_vit",
    "maxxvit",
    "fastvit",
)


def _pretrained_cfg(arch: str) -> dict[str, Any]:
    import timm

    cfg = timm.models.get_pretrained_cfg(arch)
    return cfg.to_dict() if cfg is not None else {}


class TimmSource(ModelSource):
    prefix = "timm"
    description = "any timm model (pretrained=False; weights via `edgeattn import`)"

    def spec(self, arch: str) -> ModelSpec:
        import timm

        if not timm.models.is_model(arch):
            raise self.unknown(arch, timm.list_models())
        pc = _pretrained_cfg(arch)
        size = int(pc.get("input_size", (3, 224, 224))[-1])
        return ModelSpec(
            name=f"timm:{arch}",
            family="timm",
            build=_builder(arch, size, bool(pc.get("fixed_input_size", False))),
            default_input_size=size,
            input_multiple=32 if size % 32 == 0 else 1,
            input_spec=_input_spec(pc),
            description=f"timm {arch}",
            transformer=timm.models.is_model_in_modules(arch, list(TRANSFORMER_MODULES)),
        )

    def search(self, pattern: str) -> list[str]:
        import timm

        return timm.list_models(f"*{pattern}*")


def _builder(arch: str, default_size: int, fixed_size: bool):
    def build(cfg: ModelConfig) -> nn.Module:
        import timm

        options = dict(cfg.options)
        if fixed_size and "img_size" not in options and cfg.input_size != default_size:
            options["img_size"] = cfg.input_size  # position tables / token grids sized for the input
        return timm.create_model(arch, pretrained=False, num_classes=cfg.num_classes, **options)

    return build


def _input_spec(pc: dict[str, Any]):
    def spec(cfg: ModelConfig) -> InputSpec:
        return InputSpec(
            size=(cfg.input_size, cfg.input_size),
            channels=int(pc.get("input_size", (3,))[0]),
            mean=tuple(float(v) for v in pc.get("mean", (0.485, 0.456, 0.406))),
            std=tuple(float(v) for v in pc.get("std", (0.229, 0.224, 0.225))),
            interpolation=str(pc.get("interpolation", "bilinear")),
            crop_pct=float(pc.get("crop_pct", 1.0)),
        )

    return spec


MODEL_SOURCES.register("timm", TimmSource())
