"""`torchvision:NAME`: any torchvision classifier, built with `weights=None` (no download).

The input spec comes from the default weights' transform preset (crop size, resize size, mean/std,
interpolation), read from the weights enum without fetching anything; crop_pct = crop / resize, as timm
writes it. Model options pass through to the builder (e.g. `image_size` for ViT). A torchvision model
*class* (`torchvision:VisionTransformer`) is also accepted with its constructor arguments as options,
for shapes the named builders fix (depth, width): that is how small test instances are made. A named
builder takes such options too (`torchvision:vit_b_16` with `num_layers=2`): the arguments it passes
its class are read by watching it build on the meta device, and the options override them.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from edgeattn.models.config import IMAGENET_MEAN, IMAGENET_STD, InputSpec, ModelConfig
from edgeattn.models.registry import MODEL_SOURCES, ModelSource, ModelSpec

TRANSFORMER_PREFIXES = ("vit_", "swin_", "maxvit_", "VisionTransformer", "SwinTransformer", "MaxVit")


def _classifiers() -> list[str]:
    import torchvision.models as tvm

    return tvm.list_models(module=tvm)


def _classes() -> dict[str, type[nn.Module]]:
    import torchvision.models as tvm

    return {
        n: c
        for n, c in vars(tvm).items()
        if isinstance(c, type) and issubclass(c, nn.Module) and not n.startswith("_")
    }


def _preset(arch: str) -> dict[str, Any]:
    """Crop/resize/mean/std/interpolation of the default weights' transform (no download)."""
    import torchvision.models as tvm

    try:
        weights = tvm.get_model_weights(arch).DEFAULT
        t = weights.transforms()
    except (ValueError, AttributeError, TypeError):
        return {}
    crop, resize = getattr(t, "crop_size", None), getattr(t, "resize_size", None)
    if not crop:
        return {}
    out: dict[str, Any] = {"size": int(crop[0])}
    if resize:
        out["crop_pct"] = round(int(crop[0]) / int(resize[0]), 4)
    out["mean"] = tuple(float(v) for v in getattr(t, "mean", IMAGENET_MEAN))
    out["std"] = tuple(float(v) for v in getattr(t, "std", IMAGENET_STD))
    interp = getattr(t, "interpolation", None)
    out["interpolation"] = str(getattr(interp, "value", "bilinear"))
    return out


class TorchvisionSource(ModelSource):
    prefix = "torchvision"
    description = "any torchvision classifier (weights=None; weights via `edgeattn import`)"

    def spec(self, arch: str) -> ModelSpec:
        names = _classifiers()
        if arch not in names and arch not in _classes():
            raise self.unknown(arch, names, what="classifier")
        preset = _preset(arch) if arch in names else {}
        size = int(preset.get("size", 224))
        return ModelSpec(
            name=f"torchvision:{arch}",
            family="torchvision",
            build=_builder(arch, arch in names, size),
            default_input_size=size,
            input_multiple=32 if size % 32 == 0 else 1,
            input_spec=_input_spec(preset),
            description=f"torchvision {arch}",
            transformer=arch.startswith(TRANSFORMER_PREFIXES),
        )

    def search(self, pattern: str) -> list[str]:
        return [n for n in _classifiers() if pattern.lower() in n.lower()]


def _builder(arch: str, named: bool, default_size: int):
    def build(cfg: ModelConfig) -> nn.Module:
        import torchvision.models as tvm

        if named:
            options = dict(cfg.options)
            if arch.startswith("vit_") and "image_size" not in options and cfg.input_size != default_size:
                options["image_size"] = cfg.input_size  # ViT's position embedding is sized for the input
            try:
                return tvm.get_model(arch, weights=None, num_classes=cfg.num_classes, **options)
            except TypeError as exc:
                if "multiple values for keyword argument" not in str(exc):
                    raise
            cls, fixed = _builder_arguments(arch)  # an option overrides what the builder fixes
            return cls(**{**fixed, **options, "num_classes": cfg.num_classes})
        return _classes()[arch](num_classes=cfg.num_classes, **cfg.options)

    return build


def _builder_arguments(arch: str) -> tuple[type[nn.Module], dict[str, Any]]:
    """The model class a named builder makes and every constructor argument it passes (`vit_b_16` ->
    VisionTransformer(patch_size=16, num_layers=12, ...)), read by watching the builder construct it on
    the meta device (no memory, no download), so options may override depth and width as well."""
    import inspect
    import sys

    import torch
    import torchvision.models as tvm

    with torch.device("meta"):
        cls = type(tvm.get_model(arch, weights=None))
    code, seen = cls.__init__.__code__, {}

    def watch(frame, event, _arg):  # noqa: ANN001, ANN202
        if event == "call" and frame.f_code is code and not seen:
            seen.update(frame.f_locals)

    previous = sys.getprofile()
    sys.setprofile(watch)
    try:
        with torch.device("meta"):
            tvm.get_model(arch, weights=None)
    finally:
        sys.setprofile(previous)
    params = inspect.signature(cls.__init__).parameters
    fixed = {n: seen[n] for n, p in params.items() if n != "self" and p.kind is p.POSITIONAL_OR_KEYWORD}
    fixed.update(next((seen[n] for n, p in params.items() if p.kind is p.VAR_KEYWORD), {}))
    return cls, fixed


def _input_spec(preset: dict[str, Any]):
    def spec(cfg: ModelConfig) -> InputSpec:
        return InputSpec(
            size=(cfg.input_size, cfg.input_size),
            mean=tuple(preset.get("mean", IMAGENET_MEAN)),
            std=tuple(preset.get("std", IMAGENET_STD)),
            interpolation=str(preset.get("interpolation", "bilinear")),
            crop_pct=float(preset.get("crop_pct", 1.0)),
        )

    return spec


MODEL_SOURCES.register("torchvision", TorchvisionSource())
