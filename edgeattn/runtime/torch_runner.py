"""Runs an edgeattn checkpoint (FP32, pruned or quantized) in torch eager mode."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from edgeattn.runtime.base import RUNNERS, Runner


class TorchRunner(Runner):
    kind = "torch"
    suffixes = (".pt", ".pth")

    @classmethod
    def preflight(cls, path: Path) -> None:
        from edgeattn.checkpoint import FORMAT, read_payload
        from edgeattn.errors import InputError

        payload = read_payload(path)
        if payload.get("format") != FORMAT:
            raise InputError(
                f"{path} is not an edgeattn checkpoint",
                "create one with `edgeattn train` or `edgeattn import`",
            )

    def __init__(self, path: Path, threads: int | None = None, **_: object) -> None:
        from edgeattn.checkpoint import load_checkpoint

        if threads:
            torch.set_num_threads(threads)
        self.handle = load_checkpoint(path)
        self.module = self.handle.module.eval()
        self.input_spec = self.handle.input_spec
        self.num_classes = self.handle.config.num_classes
        self.precision = "int8" if self.handle.kind != "fp32" else "fp32"
        self.runtime = f"torch {torch.__version__} eager ({self.handle.kind})"

    @torch.no_grad()
    def run(self, x: np.ndarray) -> np.ndarray:
        return self.module(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))).float().numpy()


RUNNERS.register("torch", TorchRunner)
