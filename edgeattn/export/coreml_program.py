"""The `torch.export` program coremltools converts: the model's normalisation folded in front (for
image inputs), decomposed to ATen, minus the ops coremltools' torch frontend cannot convert."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


class FoldedPreprocess(nn.Module):
    """0..255 RGB in, the model's normalisation ((x / 255 - mean) / std per channel) folded in front."""

    def __init__(self, model: nn.Module, mean: tuple[float, ...], std: tuple[float, ...]) -> None:
        super().__init__()
        self.model = model
        std_t = torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1)
        mean_t = torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1)
        self.register_buffer("scale", 1.0 / (255.0 * std_t))
        self.register_buffer("shift", -mean_t / std_t)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x * self.scale + self.shift)


def export_program(module: nn.Module, example: torch.Tensor, dynamic: Any) -> Any:
    """`torch.export` + ATen decompositions, then `drop_aliases`."""
    program = torch.export.export(module, (example,), dynamic_shapes=dynamic).run_decompositions({})
    drop_aliases(program)
    return program


def drop_aliases(program: Any) -> None:
    """Remove `aten.alias` nodes (no-op views, e.g. timm Swin's `drop_path` Identity under torch 2.14),
    which coremltools 9's torch frontend cannot convert: their users read the aliased tensor instead."""
    graph = program.graph_module.graph
    changed = False
    for node in list(graph.nodes):
        if node.target is torch.ops.aten.alias.default and all(u.op != "output" for u in node.users):
            node.replace_all_uses_with(node.args[0])
            graph.erase_node(node)
            changed = True
    if changed:
        program.graph_module.recompile()
