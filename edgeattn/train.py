"""Training, distillation and evaluation of classifiers on an ImageSet.

One loop serves baseline training, recovery fine-tuning after pruning and QAT: AdamW, cosine schedule
with a short warm-up, label smoothing, light augmentation (random translation and brightness/contrast
jitter — no flips: digits and text are not mirror-symmetric), and optional knowledge distillation from
a teacher (Hinton et al. 2015: KL at temperature T, scaled by T^2).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from edgeattn.data.imageset import ImageSet
from edgeattn.models.config import InputSpec
from edgeattn.progress import make_progress


@dataclass
class TrainConfig:
    epochs: int = 8
    batch_size: int = 64
    lr: float = 2e-3
    weight_decay: float = 0.05
    label_smoothing: float = 0.1
    warmup_epochs: float = 0.5
    distill_alpha: float = 0.7  # weight of the distillation term when a teacher is given
    distill_temperature: float = 2.0
    seed: int = 0
    augment: bool = True


def augment_batch(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Random translation (up to 1/8 of the side, reflect padding) and brightness/contrast jitter."""
    b, _, h, w = x.shape
    pad = max(1, h // 8)
    padded = F.pad(x, (pad, pad, pad, pad), mode="reflect")
    dy = torch.randint(0, 2 * pad + 1, (b,), generator=generator)
    dx = torch.randint(0, 2 * pad + 1, (b,), generator=generator)
    out = torch.stack([padded[i, :, dy[i] : dy[i] + h, dx[i] : dx[i] + w] for i in range(b)])
    scale = 1.0 + 0.2 * (torch.rand(b, 1, 1, 1, generator=generator) - 0.5)
    shift = 0.2 * (torch.rand(b, 1, 1, 1, generator=generator) - 0.5)
    return out * scale + shift


def distillation_loss(student: torch.Tensor, teacher: torch.Tensor, temperature: float) -> torch.Tensor:
    t = temperature
    return (
        F.kl_div(
            F.log_softmax(student / t, -1),
            F.log_softmax(teacher / t, -1),
            reduction="batchmean",
            log_target=True,
        )
        * t
        * t
    )


def cosine_lr(step: int, total: int, warmup: int, base: float) -> float:
    if step < warmup:
        return base * (step + 1) / max(1, warmup)
    progress = (step - warmup) / max(1, total - warmup)
    return base * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def fit(
    model: nn.Module,
    data: ImageSet,
    spec: InputSpec,
    cfg: TrainConfig,
    teacher: nn.Module | None = None,
    description: str = "train",
    on_epoch_end=None,
    wrap_model=None,
    sampler_world: tuple[int, int] | None = None,
) -> list[dict]:
    """Train `model` in place; returns one log entry per epoch.

    `wrap_model` (e.g. DDP) wraps the module used for the forward pass; `sampler_world` = (rank, world)
    shards the data for distributed training.
    """
    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    if sampler_world is not None:
        data = data.shard(*sampler_world)
    ds = data.tensor_dataset(spec)
    loader = DataLoader(
        ds, batch_size=cfg.batch_size, shuffle=True, drop_last=len(ds) > cfg.batch_size, generator=gen
    )
    trainable = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(trainable, lr=cfg.lr, weight_decay=cfg.weight_decay, foreach=True)
    total = max(1, cfg.epochs * len(loader))
    warmup = int(cfg.warmup_epochs * len(loader))
    forward = wrap_model(model) if wrap_model else model
    if teacher is not None:
        teacher.eval()
    log: list[dict] = []
    step = 0
    with make_progress() as progress:
        task = progress.add_task(description, total=total, status="")
        for epoch in range(cfg.epochs):
            model.train()
            seen, loss_sum, correct = 0, 0.0, 0
            for x, y in loader:
                for group in opt.param_groups:
                    group["lr"] = cosine_lr(step, total, warmup, cfg.lr)
                if cfg.augment:
                    x = augment_batch(x, gen)
                logits = forward(x)
                loss = F.cross_entropy(logits, y, label_smoothing=cfg.label_smoothing)
                if teacher is not None:
                    with torch.no_grad():
                        t_logits = teacher(x)
                    a = cfg.distill_alpha
                    loss = (1 - a) * loss + a * distillation_loss(logits, t_logits, cfg.distill_temperature)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                step += 1
                seen += len(y)
                loss_sum += float(loss.detach()) * len(y)
                correct += int((logits.argmax(-1) == y).sum())
                progress.update(
                    task, advance=1, status=f"epoch {epoch + 1}/{cfg.epochs} loss {loss_sum / seen:.3f}"
                )
            entry = {
                "epoch": epoch + 1,
                "loss": loss_sum / max(1, seen),
                "train_top1": 100.0 * correct / max(1, seen),
            }
            model.eval()
            if on_epoch_end is not None:
                entry.update(on_epoch_end(epoch + 1) or {})
            log.append(entry)
    model.eval()
    return log


@torch.no_grad()
def predict_logits(model: nn.Module | callable, inputs: torch.Tensor, batch_size: int = 128) -> torch.Tensor:
    """Logits of `model` for preprocessed `inputs`, in batches (model in eval mode)."""
    if isinstance(model, nn.Module):
        model.eval()
    outs = [model(inputs[i : i + batch_size]).float() for i in range(0, len(inputs), batch_size)]
    return torch.cat(outs) if outs else torch.empty(0)


def topk_accuracy(logits: torch.Tensor, labels: torch.Tensor, k: int) -> float:
    k = min(k, logits.shape[-1])
    hits = (logits.topk(k, dim=-1).indices == labels[:, None]).any(-1)
    return 100.0 * float(hits.float().mean()) if len(labels) else float("nan")


def accuracy_report(logits: torch.Tensor, labels: torch.Tensor) -> dict:
    return {
        "top1": topk_accuracy(logits, labels, 1),
        "top5": topk_accuracy(logits, labels, 5),
        "n": int(len(labels)),
    }


def evaluate(model: nn.Module, data: ImageSet, spec: InputSpec) -> dict:
    """top-1 / top-5 of `model` on `data` (preprocessed with `spec`)."""
    logits = predict_logits(model, data.to_model_input(spec))
    return accuracy_report(logits, data.labels)


__all__ = [
    "TrainConfig",
    "TensorDataset",
    "accuracy_report",
    "evaluate",
    "fit",
    "predict_logits",
    "topk_accuracy",
]
