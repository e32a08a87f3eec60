"""Where to look inside each model family: its default Grad-CAM layer and its token-to-image reshape.

Grad-CAM needs a layer with a spatial output; attention maps need to know which image position each
token stands for. Both differ per family (a VGG stage is already an image; EfficientFormer's last stage
is a flat sequence of r x r tokens; MobileViT unfolds a feature map into patch-position batches), so
each family registers one `CamFamily` in `CAM_FAMILIES`, keyed by `ModelSpec.family`.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable

import torch
from torch import nn

from edgeattn.errors import InputError
from edgeattn.models.heads import attention_blocks
from edgeattn.registry import Registry

TokenGrid = Callable[[torch.Tensor], torch.Tensor]  # (B', N, C) tokens -> (B, C, H, W) image


def square_tokens(t: torch.Tensor) -> torch.Tensor:
    """(B, N, C) with N = r * r tokens in row-major order -> (B, C, r, r)."""
    b, n, c = t.shape
    r = math.isqrt(n)
    if r * r != n:
        raise ValueError(f"{n} tokens do not form a square grid")
    return t.transpose(1, 2).reshape(b, c, r, r)


class CamFamily:
    """Defaults of one family; the base class suits models whose layers output (B, C, H, W)."""

    def default_layer(self, model: nn.Module) -> str:
        raise NotImplementedError

    def token_grid(self, model: nn.Module, path: str) -> TokenGrid:
        """How tokens of the layer at `path` map back onto the image (square row-major by default)."""
        return square_tokens

    def reshape_transform(self, model: nn.Module, path: str, ndim: int) -> TokenGrid | None:
        """grad-cam's reshape_transform for a layer whose output has `ndim` dimensions."""
        if ndim == 4:
            return None
        if ndim == 3:
            return self.token_grid(model, path)
        raise InputError(
            f"layer {path!r} outputs {ndim}-d tensors, not a spatial map",
            f"pick a layer with an image-shaped output, e.g. {self.default_layer(model)}",
        )


CAM_FAMILIES: Registry[CamFamily] = Registry("model family")


def last_attention_path(model: nn.Module) -> str | None:
    blocks = attention_blocks(model, with_headless=False)
    return blocks[-1].path if blocks else None


class VGGFamily(CamFamily):
    """attn_vgg: the last conv stage (before its attention block and pool), as for any CNN."""

    def default_layer(self, model: nn.Module) -> str:
        return f"stages.{len(model.stages) - 1}.convs"


class EfficientFormerFamily(CamFamily):
    """EfficientFormer: the last block of the last stage, a (B, r*r, C) token sequence."""

    def default_layer(self, model: nn.Module) -> str:
        last = len(model.stages) - 1
        return f"stages.{last}.blocks.{len(model.stages[last].blocks) - 1}"


class MobileViTFamily(CamFamily):
    """MobileViT: the last transformer layer of the last MobileViT block.

    A MobileViT block unfolds its (B, C, H, W) map into (B * P, N, C): one sequence of N patches per
    position inside a p_h x p_w patch (P = p_h * p_w); the fold back mirrors timm's `MobileVitBlock`.
    """

    def default_layer(self, model: nn.Module) -> str:
        path = last_attention_path(model)
        if path is None:
            raise InputError("this MobileViT has no attention block left", "pass --layer")
        return path.rsplit(".", 1)[0]  # the transformer layer around the attention

    def token_grid(self, model: nn.Module, path: str) -> TokenGrid:
        owner, sep, _ = path.partition(".transformer")
        if not sep:
            return square_tokens
        ph, pw = model.get_submodule(owner).patch_size

        def fold(t: torch.Tensor) -> torch.Tensor:
            bp, n, c = t.shape
            r = math.isqrt(n)
            x = t.reshape(bp // (ph * pw), ph * pw, n, c).permute(0, 3, 2, 1)  # (B, C, N, P)
            x = x.reshape(-1, c, r, r, ph, pw).permute(0, 1, 2, 4, 3, 5)
            return x.reshape(-1, c, r * ph, r * pw)

        return fold


CAM_FAMILIES.register("attn_vgg", VGGFamily())
CAM_FAMILIES.register("efficientformer", EfficientFormerFamily())
CAM_FAMILIES.register("mobilevit", MobileViTFamily())


def resolve_layer(model: nn.Module, path: str, example: str) -> nn.Module:
    """The module at `path`, or one line naming the closest paths that exist."""
    modules = dict(model.named_modules())
    if path in modules and path:
        return modules[path]
    close = difflib.get_close_matches(path, [p for p in modules if p], n=3, cutoff=0.6)
    hint = f"did you mean {', '.join(close)}?" if close else f"give a dotted module path, e.g. {example}"
    raise InputError(f"model has no layer {path!r}", hint)
