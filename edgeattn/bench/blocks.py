"""Latency of a model's attention blocks alone, before and after head removal.

Whole-model latency hides what pruning heads buys when the attention blocks are a small part of the
work (convolutions dominate VGG16 and MobileViT). Here each model's attention blocks, found through
`edgeattn.models.heads` (`HEAD_ADAPTERS`), are run on their own captured inputs: one real val image at
the deployment resolution goes through the model once with forward hooks that keep every block's
input, then each block is called on its input alone. Both models (all heads, pruned) are timed in
interleaved rounds (torch eager, the benchmark's thread count), so the ratio has an interval.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

ALL_HEADS, PRUNED = "attention blocks, all heads", "attention blocks, 50% heads pruned"


def captured_block_calls(ckpt: Path, images: Any) -> tuple[Callable[[], None], dict[str, Any]]:
    """A callable that runs every attention block of `ckpt` on its captured input, and facts about them."""
    import torch

    from edgeattn.checkpoint import load_checkpoint
    from edgeattn.models.heads import attention_blocks
    from edgeattn.runtime import open_runner

    handle = load_checkpoint(ckpt)
    model = handle.module.eval()
    blocks = attention_blocks(model)
    captured: dict[str, tuple[tuple[Any, ...], dict[str, Any]]] = {}
    hooks = [
        b.module.register_forward_pre_hook(
            lambda _m, args, kwargs, path=b.path: captured.setdefault(path, (args, kwargs)), with_kwargs=True
        )
        for b in blocks
    ]
    runner = open_runner(ckpt, "torch", threads=torch.get_num_threads())
    try:
        x = torch.from_numpy(runner.prepare(images))
    finally:
        runner.close()
    try:
        with torch.inference_mode():
            model(x)
    finally:
        for h in hooks:
            h.remove()
    calls = [(b.module, *captured[b.path]) for b in blocks if b.path in captured]

    def run() -> None:
        with torch.inference_mode():
            for module, args, kwargs in calls:
                module(*args, **kwargs)

    facts = {
        "blocks": len(calls),
        "heads": sum(b.num_heads for b in blocks if b.path in captured),
        "kinds": sorted({b.kind for b in blocks}),
    }
    return run, facts


def attention_block_latency(
    full_ckpt: Path, pruned_ckpt: Path, images: Any, *, rounds: int, turn_seconds: float, seed: int = 0
) -> dict[str, Any]:
    """Interleaved timing of the attention blocks of both models: medians, per-round ratio interval."""
    from edgeattn.bench.stats import speed_ratio_interval
    from edgeattn.interleave import time_interleaved

    full, full_facts = captured_block_calls(full_ckpt, images)
    pruned, pruned_facts = captured_block_calls(pruned_ckpt, images)
    result = time_interleaved(
        {ALL_HEADS: full, PRUNED: pruned}, rounds=rounds, turn_seconds=turn_seconds, seed=seed
    )
    interval = speed_ratio_interval(
        result.round_median_ms[ALL_HEADS], result.round_median_ms[PRUNED], seed=seed
    )
    return {
        "all_heads": {**full_facts, "median_ms": result.median_ms(ALL_HEADS)},
        "pruned": {**pruned_facts, "median_ms": result.median_ms(PRUNED)},
        "speedup": interval.to_dict(),
        "timing": result.to_dict(),
    }
