"""torch.distributed for QAT under `torchrun`: DDP over gloo, data sharded by a `DistributedSampler`
(edgeattn.train.loop.training_sampler), rank 0 writes files.

Training runs on CPU tensors (edgeattn.train.fit keeps data and model on the CPU), so the backend is
gloo even where GPUs exist; NCCL needs CUDA tensors and would only pay off once fit() moves batches to
a device.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistContext:
    rank: int
    world: int
    backend: str

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def launched_by_torchrun() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def init_distributed() -> DistContext | None:
    """Join the process group torchrun set up (env://); None when running as a single process."""
    if not launched_by_torchrun():
        return None
    if not dist.is_initialized():
        dist.init_process_group(backend="gloo")
    return DistContext(dist.get_rank(), dist.get_world_size(), dist.get_backend())


def ddp_wrapper(ctx: DistContext):
    """`wrap_model` for train.fit: DistributedDataParallel over the (NNCF-wrapped) model."""
    from torch.nn.parallel import DistributedDataParallel

    def wrap(model: torch.nn.Module) -> torch.nn.Module:
        return DistributedDataParallel(model)

    return wrap


def barrier(ctx: DistContext | None) -> None:
    if ctx is not None and dist.is_initialized():
        dist.barrier()


def shutdown(ctx: DistContext | None) -> None:
    if ctx is not None and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
