"""Head importance scores, one registry entry per method: taylor (default), l1, entropy, random.

Every method returns one score per head of every block it is given (local head indices of the
model as it is now); higher means "keep". Scores are made comparable across blocks, because global
selection ranks heads of different blocks against each other:
- `taylor`: E_x |dL/d xi_h| — the loss's sensitivity to a per-head mask xi (Michel, Levy & Neubig
  2019), accumulated over calibration batches. Its unit is "loss", the same in every layer, so by
  default it is ranked as it is (`normalize="none"`); `normalize="layer"` L2-normalises it per layer
  as in that paper. Measured on mobilevit_xxs (4 heads per layer): per-layer normalisation erases
  the difference between redundant and important layers and picks worse than chance at 50 %;
  unnormalised it beats random on top-1 and loss (see docs/pruning.md);
- `l1`: L1 norm of the weights that belong to the head (its qkv rows and proj columns), L2-normalised
  per layer so that wide and narrow blocks compare;
- `entropy`: 1 - H/log N of the head's attention maps on calibration data (a focused head scores high,
  a uniform one near 0); only for blocks that form attention maps;
- `random`: uniform noise from `seed` — the baseline the others must beat.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from edgeattn.errors import InputError
from edgeattn.models.heads import AttentionBlock
from edgeattn.progress import make_progress
from edgeattn.registry import Registry


@dataclass
class ScoreData:
    """Preprocessed calibration inputs and labels the data-driven scores run on."""

    inputs: torch.Tensor
    labels: torch.Tensor
    batch_size: int = 32

    def batches(self):
        for i in range(0, len(self.labels), self.batch_size):
            yield self.inputs[i : i + self.batch_size], self.labels[i : i + self.batch_size]

    @property
    def num_batches(self) -> int:
        return math.ceil(len(self.labels) / self.batch_size)


ScoreFn = Callable[[nn.Module, list[AttentionBlock], ScoreData | None, int], dict[str, torch.Tensor]]
Normalization = Callable[[dict[str, torch.Tensor]], dict[str, torch.Tensor]]


@dataclass(frozen=True)
class ImportanceMethod:
    name: str
    score: ScoreFn
    needs_data: bool
    description: str
    needs_attention_maps: bool = False
    normalizable: bool = False  # raw scores share one unit across layers, so `normalize` applies


IMPORTANCE: Registry[ImportanceMethod] = Registry("importance score")
NORMALIZATIONS: Registry[Normalization] = Registry("score normalization")


def score_heads(
    method: str,
    model: nn.Module,
    blocks: list[AttentionBlock],
    data: ScoreData | None,
    seed: int = 0,
    normalize: str = "none",
) -> dict[str, torch.Tensor]:
    """Scores of every head in `blocks` (path -> float tensor of length num_heads)."""
    spec = IMPORTANCE.get(method)
    norm = NORMALIZATIONS.get(normalize)
    blocks = [b for b in blocks if b.num_heads > 0]
    if not blocks:
        return {}
    scores = {k: v.detach().float().cpu() for k, v in spec.score(model, blocks, data, seed).items()}
    return norm(scores) if spec.normalizable else scores


def check_method_fits(method: str, blocks: list[AttentionBlock]) -> ImportanceMethod:
    """Fail before any work when a method cannot score this model (e.g. entropy without maps)."""
    spec = IMPORTANCE.get(method)
    if spec.needs_attention_maps:
        without = sorted({b.kind for b in blocks if b.num_heads > 0 and not b.adapter.has_attention_maps})
        if without:
            raise InputError(
                f"importance {method!r} needs attention maps, which {', '.join(without)} attention blocks never form",
                "use --importance taylor or l1 for this model",
            )
    return spec


def _per_layer_l2(scores: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v / v.norm(p=2).clamp_min(1e-20) for k, v in scores.items()}


NORMALIZATIONS.register("none", lambda scores: scores)
NORMALIZATIONS.register("layer", _per_layer_l2)


# --------------------------------------------------------------------------------------------- taylor
def taylor_scores(
    model: nn.Module, blocks: list[AttentionBlock], data: ScoreData | None, seed: int
) -> dict[str, torch.Tensor]:
    """Michel et al. 2019: accumulate |dL/d mask_h| over calibration batches (mask = 1, eval mode)."""
    assert data is not None
    masks = {b.path: torch.ones(b.num_heads, requires_grad=True) for b in blocks}
    total = {b.path: torch.zeros(b.num_heads) for b in blocks}
    params = [p for p in model.parameters()]
    saved = [p.requires_grad for p in params]
    was_training = model.training
    model.eval()
    try:
        for p in params:
            p.requires_grad_(False)  # only the masks need gradients: no weight-gradient work
        for b in blocks:
            b.adapter.set_head_mask(b.module, masks[b.path])
        order = list(masks)
        with make_progress() as progress:
            task = progress.add_task("taylor importance", total=data.num_batches, status="")
            for x, y in data.batches():
                loss = F.cross_entropy(model(x), y, reduction="mean")
                grads = torch.autograd.grad(loss, [masks[k] for k in order], allow_unused=True)
                for k, g in zip(order, grads, strict=True):
                    if g is not None:
                        total[k] += g.detach().abs() * len(y)
                progress.update(task, advance=1)
    finally:
        for b in blocks:
            b.adapter.set_head_mask(b.module, None)
        for p, flag in zip(params, saved, strict=True):
            p.requires_grad_(flag)
        model.train(was_training)
    n = max(1, len(data.labels))
    return {k: v / n for k, v in total.items()}


# ------------------------------------------------------------------------------------------------- l1
def l1_scores(
    model: nn.Module, blocks: list[AttentionBlock], data: ScoreData | None, seed: int
) -> dict[str, torch.Tensor]:
    return _per_layer_l2({b.path: b.adapter.head_weight_norms(b.module).float() for b in blocks})


# -------------------------------------------------------------------------------------------- entropy
@torch.no_grad()
def entropy_scores(
    model: nn.Module, blocks: list[AttentionBlock], data: ScoreData | None, seed: int
) -> dict[str, torch.Tensor]:
    """1 - mean entropy / log(N) of each head's attention rows (recomputed from the block's input)."""
    assert data is not None
    sums = {b.path: torch.zeros(b.num_heads) for b in blocks}
    counts = dict.fromkeys(sums, 0)
    handles = []

    def make_hook(block: AttentionBlock):
        def hook(module: nn.Module, args: tuple, _out) -> None:
            maps = block.adapter.attention_maps(module, args[0]).float()  # (B, H, N, N)
            n = maps.shape[-1]
            ent = -(maps * maps.clamp_min(1e-12).log()).sum(-1)  # (B, H, N)
            sums[block.path] += (
                (1.0 - ent / max(math.log(n), 1e-12)).sum(dim=(0, 2)) if n > 1 else ent.new_ones(ent.shape[1])
            )
            counts[block.path] += maps.shape[0] * maps.shape[2] if n > 1 else 1

        return hook

    was_training = model.training
    model.eval()
    try:
        handles = [b.module.register_forward_hook(make_hook(b)) for b in blocks]
        with make_progress() as progress:
            task = progress.add_task("entropy importance", total=data.num_batches, status="")
            for x, _ in data.batches():
                model(x)
                progress.update(task, advance=1)
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    return {k: v / max(1, counts[k]) for k, v in sums.items()}


# --------------------------------------------------------------------------------------------- random
def random_scores(
    model: nn.Module, blocks: list[AttentionBlock], data: ScoreData | None, seed: int
) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return {b.path: torch.rand(b.num_heads, generator=gen) for b in blocks}


IMPORTANCE.register(
    "taylor",
    ImportanceMethod(
        "taylor",
        taylor_scores,
        True,
        "loss sensitivity to a head mask (Michel et al. 2019)",
        normalizable=True,
    ),
)
IMPORTANCE.register("l1", ImportanceMethod("l1", l1_scores, False, "L1 norm of the head's weights"))
IMPORTANCE.register(
    "entropy",
    ImportanceMethod(
        "entropy",
        entropy_scores,
        True,
        "focus (1 - normalised entropy) of the head's attention maps",
        needs_attention_maps=True,
    ),
)
IMPORTANCE.register("random", ImportanceMethod("random", random_scores, False, "uniform noise (baseline)"))
