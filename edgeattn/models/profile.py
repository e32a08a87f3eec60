"""Parameter and MAC counts, the way papers count them.

MACs come from torch's FlopCounterMode (matmul, conv, bmm and attention kernels; elementwise ops are
not counted, as in the published figures) divided by two.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
from torch import nn

from edgeattn.models.heads import attention_blocks


@dataclass
class ModelProfile:
    name: str
    family: str
    input_size: int
    params: int
    macs: int
    attention_blocks: int
    heads: int
    heads_per_block: dict[str, int] = field(default_factory=dict)
    headless_blocks: dict[str, str] = field(default_factory=dict)  # path -> kind (SE/ECA/CBAM)

    def to_dict(self) -> dict:
        return asdict(self)


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@torch.no_grad()
def count_macs(model: nn.Module, input_size: int, channels: int = 3) -> int:
    from torch.utils.flop_counter import FlopCounterMode

    was_training = model.training
    model.eval()
    try:
        with FlopCounterMode(display=False) as counter:
            model(torch.zeros(1, channels, input_size, input_size))
    finally:
        model.train(was_training)
    return int(counter.get_total_flops() // 2)


def profile_model(model: nn.Module, name: str, family: str, input_size: int) -> ModelProfile:
    blocks = attention_blocks(model)
    with_heads = [b for b in blocks if b.adapter.has_heads]
    return ModelProfile(
        name=name,
        family=family,
        input_size=input_size,
        params=count_params(model),
        macs=count_macs(model, input_size),
        attention_blocks=len(blocks),
        heads=sum(b.num_heads for b in with_heads),
        heads_per_block={b.path: b.num_heads for b in with_heads},
        headless_blocks={b.path: b.kind for b in blocks if not b.adapter.has_heads},
    )
