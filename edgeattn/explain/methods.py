"""Explanation methods (`--method`), one `Method` per name in `METHODS`.

Grad-CAM and Grad-CAM++ come from the `grad-cam` package (pytorch_grad_cam), given the family's
default layer and its token-to-image reshape; `attention` and `rollout` read the blocks' own softmax
maps (see maps.py). Every method returns maps at the model's input size, scaled to [0, 1] per image,
so any two of them (or two models) can be compared pixel by pixel.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from edgeattn.errors import InputError
from edgeattn.explain.families import CamFamily, resolve_layer
from edgeattn.explain.maps import (
    BlockMaps,
    collect_maps,
    last_group,
    map_blocks,
    no_maps_error,
    received,
    rollout,
    to_image,
)
from edgeattn.registry import Registry


@dataclass
class Explanation:
    heat: np.ndarray  # (B, H, W) in [0, 1], at the model's input size
    layer: str  # what the maps were read from
    heads: np.ndarray | None = None  # (B, heads, H, W) per-head maps of `layer` (attention --heads)


@dataclass
class Subject:
    """What a method explains: the model, its family, its name, the batch and the target classes."""

    model: nn.Module
    family: CamFamily
    name: str
    x: torch.Tensor
    targets: list[int]

    @property
    def size(self) -> tuple[int, int]:
        return tuple(self.x.shape[-2:])


class Method:
    name: str = ""
    help: str = ""

    def explain(self, subject: Subject, layer: str | None, heads: bool) -> Explanation:
        raise NotImplementedError


METHODS: Registry[Method] = Registry("explain method")


def output_ndim(model: nn.Module, module: nn.Module, x: torch.Tensor) -> int:
    seen: list[int] = []
    hook = module.register_forward_hook(lambda _m, _i, out: seen.append(out.ndim))
    try:
        with torch.no_grad():
            model(x[:1])
    finally:
        hook.remove()
    if not seen:
        raise InputError("the chosen layer never runs in a forward pass", "pick another --layer")
    return seen[0]


class CamMethod(Method):
    """A gradient CAM from pytorch_grad_cam on one layer (default: the family's)."""

    def __init__(self, name: str, cls_name: str, help: str) -> None:
        self.name, self.cls_name, self.help = name, cls_name, help

    def explain(self, subject: Subject, layer: str | None, heads: bool) -> Explanation:
        import pytorch_grad_cam
        from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

        model, family = subject.model, subject.family
        default = family.default_layer(model)
        path = layer or default
        module = resolve_layer(model, path, default)
        reshape = family.reshape_transform(model, path, output_ndim(model, module, subject.x))
        cam_cls = getattr(pytorch_grad_cam, self.cls_name)
        with (
            torch.enable_grad(),
            cam_cls(model=model, target_layers=[module], reshape_transform=reshape) as cam,
        ):
            heat = cam(input_tensor=subject.x, targets=[ClassifierOutputTarget(t) for t in subject.targets])
        model.zero_grad(set_to_none=True)
        return Explanation(np.asarray(heat, dtype=np.float32), path)


def informative(collected: list[BlockMaps]) -> list[BlockMaps]:
    """Blocks attending over more than one token (a small input leaves MobileViT's last block one
    patch, whose attention is a constant 1); all blocks when none does."""
    return [b for b in collected if b.maps.shape[-1] > 1] or collected


class AttentionMethod(Method):
    name = "attention"
    help = "attention each token receives in one block (--layer; default the last), averaged over heads"

    def explain(self, subject: Subject, layer: str | None, heads: bool) -> Explanation:
        blocks = map_blocks(subject.model)
        if not blocks:
            raise no_maps_error(subject.name)
        paths = [b.path for b in blocks]
        if layer and layer not in paths:
            resolve_layer(subject.model, layer, paths[-1])  # unknown path: did-you-mean
            raise InputError(f"layer {layer!r} forms no attention maps", f"give one of: {', '.join(paths)}")
        chosen = [b for b in blocks if b.path == layer] if layer else blocks
        block = informative(collect_maps(subject.model, subject.x, chosen))[-1]
        scores = received(block.maps)
        model, family, size = subject.model, subject.family, subject.size
        avg = to_image(scores.mean(1, keepdim=True), family, model, block.path, size)
        per_head = to_image(scores, family, model, block.path, size) if heads else None
        return Explanation(avg[:, 0], block.path, per_head)


class RolloutMethod(Method):
    name = "rollout"
    help = "attention rollout over the last group of blocks that share a token set"

    def explain(self, subject: Subject, layer: str | None, heads: bool) -> Explanation:
        if layer:
            raise InputError("--layer does not apply to rollout", "drop --layer, or use --method attention")
        blocks = map_blocks(subject.model)
        if not blocks:
            raise no_maps_error(subject.name)
        group = last_group(informative(collect_maps(subject.model, subject.x, blocks)))
        heat = to_image(rollout(group), subject.family, subject.model, group[-1].path, subject.size)
        return Explanation(heat[:, 0], f"{group[0].path} … {group[-1].path}")


METHODS.register("gradcam", CamMethod("gradcam", "GradCAM", "Grad-CAM (Selvaraju et al. 2017) on --layer"))
METHODS.register(
    "gradcam++", CamMethod("gradcam++", "GradCAMPlusPlus", "Grad-CAM++ (Chattopadhyay et al. 2018)")
)
METHODS.register("attention", AttentionMethod())
METHODS.register("rollout", RolloutMethod())
