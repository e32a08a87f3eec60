"""The training loop of classifiers on an ImageSet or FileSet (training, distillation; evaluation lives
in edgeattn.evaluation).

One loop serves baseline training, recovery fine-tuning after pruning and QAT: AdamW, cosine schedule
with a short warm-up, label smoothing, augmentation (`TrainConfig.augment`: timm's own train transform
on image files, `edgeattn.data.augment`; on the in-memory sets light random translation and
brightness/contrast jitter — no flips: digits and text are not mirror-symmetric), and optional
knowledge distillation from a teacher (Hinton et al. 2015: KL at temperature T, scaled by T^2).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset, DistributedSampler, RandomSampler, Sampler

from edgeattn.data.augment import EpochSeeded, resolve_augment, training_dataset
from edgeattn.data.imageset import ImageSet
from edgeattn.data.loader import make_loader
from edgeattn.data.stream import FileSet
from edgeattn.models.config import InputSpec
from edgeattn.progress import make_progress
from edgeattn.train.config import TrainConfig


def seed_everything(seed: int) -> None:
    """Seed torch's global generator and ask for deterministic kernels where torch has them (on the
    CPU, every op these models train with has one; `warn_only` keeps an op without one running)."""
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)


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


def training_sampler(
    ds: Dataset, gen: torch.Generator, seed: int, mode: str, world: tuple[int, int] | None
) -> Sampler:
    """Shuffled indices: from `gen` on one process; under torchrun (`world` = (rank, world size)) a
    `DistributedSampler` seeded by `seed` (disjoint shards, reshuffled by `set_epoch`). With timm's
    augmentation each index comes with its image's seed (`EpochSeeded`)."""
    if world is not None:
        rank, size = world
        base: Sampler = DistributedSampler(ds, num_replicas=size, rank=rank, shuffle=True, seed=seed)
    else:
        base = RandomSampler(ds, generator=gen)
    return EpochSeeded(base, seed) if mode == "timm" else base


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
    data: ImageSet | FileSet,
    spec: InputSpec,
    cfg: TrainConfig,
    *,
    seed: int = 0,
    teacher: nn.Module | None = None,
    description: str = "train",
    on_epoch_end: Callable[[int], dict | None] | None = None,
    wrap_model: Callable[[nn.Module], nn.Module] | None = None,
    sampler_world: tuple[int, int] | None = None,
) -> list[dict]:
    """Train `model` in place; returns one log entry per epoch. (`cfg.teacher` is a checkpoint path for
    `train_checkpoint`; here the teacher is the loaded module.)

    `wrap_model` (e.g. DDP) wraps the module used for the forward pass; `sampler_world` = (rank, world)
    shards the data for distributed training (`training_sampler`).
    """
    seed_everything(seed)
    gen = torch.Generator().manual_seed(seed)
    mode = resolve_augment(cfg.augment, data)
    ds = training_dataset(data, spec, mode)
    sampler = training_sampler(ds, gen, seed, mode, sampler_world)
    n = len(sampler)
    workers = min(data.loader_workers, max(1, n // cfg.batch_size)) if n > cfg.batch_size else 0
    # Files decode in workers; the order (from `gen` or the distributed sampler's seed) and, with timm's
    # augmentation, each image's own seed (`EpochSeeded`) decide the batches: same seed, same bytes.
    loader = make_loader(
        ds,
        batch_size=cfg.batch_size,
        sampler=sampler,
        drop_last=n > cfg.batch_size,
        # The loader draws its workers' base seed from this generator once per iterator: per epoch
        # without workers, once with persistent ones. For files it must not move the order, or the
        # bytes would depend on --workers; in-memory sets keep the one generator they always had.
        generator=gen if isinstance(data, ImageSet) else torch.Generator().manual_seed(seed),
        workers=workers,
        collate_fn=getattr(ds, "collate", None),  # files: (x, y, undecodable files)
        persistent=True,
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
            if isinstance(sampler, (DistributedSampler, EpochSeeded)):
                sampler.set_epoch(epoch)
            model.train()
            seen, loss_sum, correct = 0, 0.0, 0
            for x, y, *bad in loader:
                if bad and bad[0]:
                    data.check_bad(bad[0])  # a FileSet: stop naming the file, or skip it
                if len(y) == 0:
                    continue
                for group in opt.param_groups:
                    group["lr"] = cosine_lr(step, total, warmup, cfg.lr)
                if mode == "light":
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
                "images": seen,  # this process's (its shard's, under torchrun)
            }
            model.eval()
            if on_epoch_end is not None:
                entry.update(on_epoch_end(epoch + 1) or {})
            log.append(entry)
    model.eval()
    return log
