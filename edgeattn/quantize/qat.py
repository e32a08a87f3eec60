"""Quantization-aware training: fine-tune the PTQ model with its fake-quant in place, distilling
from the FP32 model (edgeattn.train.fit: AdamW, cosine LR, progress), optionally under DDP.

The loss is distillation only (no label term): QAT's job is to give the FP32 model's answers in INT8,
which is what the drift gates measure. With a label term, a model that is still learning kept learning
during QAT (measured on the tiny attn_vgg11 at 70 % top-1: +1.5 pp top-1 but only 93.5 % agreement
with its FP32 source, against 95.5 % with distillation only).

Weight decay is off: AdamW would otherwise shrink the trainable quantizer scales every step.
BatchNorm layers keep their running statistics (they run in inference mode during QAT): the
statistics of small fine-tuning batches would otherwise drift away from those the quantizer ranges
were calibrated with, and the model that is trained is exactly the one that is deployed (BN folded).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

from torch import nn

from edgeattn.data.imageset import ImageSet
from edgeattn.data.stream import FileSet
from edgeattn.models.config import InputSpec
from edgeattn.quantize.distributed import DistContext, ddp_wrapper
from edgeattn.train import TrainConfig, fit


def run_qat(
    model: nn.Module,
    teacher: nn.Module,
    train_set: ImageSet | FileSet,
    spec: InputSpec,
    *,
    epochs: int,
    lr: float,
    batch_size: int,
    seed: int = 0,
    ctx: DistContext | None = None,
    on_epoch_end: Callable[[int], dict | None] | None = None,
) -> list[dict]:
    cfg = TrainConfig(
        epochs=epochs, batch_size=batch_size, lr=lr, weight_decay=0.0, warmup_epochs=0.0, distill_alpha=1.0
    )
    for p in teacher.parameters():
        p.requires_grad_(False)
    with frozen_batchnorm(model):
        return fit(
            model,
            train_set,
            spec,
            cfg,
            seed=seed,
            teacher=teacher,
            description="QAT" if ctx is None else f"QAT rank {ctx.rank}/{ctx.world}",
            on_epoch_end=on_epoch_end,
            wrap_model=ddp_wrapper(ctx) if ctx is not None else None,
            sampler_world=(ctx.rank, ctx.world) if ctx is not None else None,
        )


@contextlib.contextmanager
def frozen_batchnorm(model: nn.Module) -> Iterator[None]:
    """Run every BatchNorm of `model` with its running statistics, even when fit() calls train()."""

    def use_running_stats(module: nn.Module, _inputs: tuple) -> None:
        module.training = False

    handles = [
        m.register_forward_pre_hook(use_running_stats)
        for m in model.modules()
        if isinstance(m, nn.modules.batchnorm._BatchNorm)
    ]
    try:
        yield
    finally:
        for h in handles:
            h.remove()
