"""The FP32 and INT8 models rebuilt at another input size, for timing at the deployment resolution.

Which layers win in INT8 depends on the feature-map sizes: a thin conv that loses at the 32-px
resolution a model was trained at can win at 224 px, where its maps are 49x larger and the int8
arithmetic outweighs the Q/DQ and layout changes around it. `--placement-size` therefore times the
placement's candidates at the size the model will serve. The weights and quantizer scales are the same
(they are per tensor or per channel, not per position); only a model whose shapes depend on the size
(EfficientFormer's per-position attention-bias tables) gets its tables resized bicubically, as
`edgeattn.bench.variants.at_resolution` does for checkpoints.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path

from torch import nn

from edgeattn.checkpoint import ModelHandle, fit_attention_bias_tables, load_state_into
from edgeattn.models import ModelConfig, build_model
from edgeattn.quantize.checkpoint import nncf_config_of, restore_quantized


def config_at_size(config: ModelConfig, size: int) -> ModelConfig:
    resized = copy.deepcopy(config)
    resized.input_size = size
    return resized


def fp32_at_size(config: ModelConfig, fp32: nn.Module, size: int) -> nn.Module:
    """`fp32`'s weights in the architecture built for `size` x `size` inputs."""
    module = build_model(config_at_size(config, size))
    state = dict(fp32.state_dict())
    fit_attention_bias_tables(module, state)
    load_state_into(module, state, Path(f"<{config.name} at {size} px>"), config.name)
    return module.eval()


def int8_at_size(config: ModelConfig, qmodel: nn.Module, size: int) -> nn.Module:
    """The NNCF model `qmodel` (same quantizers, scales and weights) built for `size` x `size` inputs."""
    plain = build_model(config_at_size(config, size))
    state = dict(qmodel.state_dict())
    fit_attention_bias_tables(plain, state)  # before the quantizers wrap it: the float model's shapes
    module = restore_quantized(plain, nncf_config_of(qmodel))
    load_state_into(module, state, Path(f"<int8 {config.name} at {size} px>"), config.name)
    return module.eval()


@dataclass(frozen=True)
class TimingSize:
    """Where the measured placement times: `shape` (batch 1), and the models rebuilt for it."""

    config: ModelConfig
    shape: tuple[int, ...]
    size: int | None  # None: the checkpoint's own size, models used as they are

    @classmethod
    def of(cls, handle: ModelHandle, size: int | None) -> TimingSize:
        native = tuple(handle.input_spec.size)
        if size is None or native == (size, size):
            return cls(handle.config, tuple(handle.input_spec.shape(1)), None)
        return cls(handle.config, (1, handle.input_spec.channels, size, size), size)

    def fp32(self, module: nn.Module) -> nn.Module:
        return module if self.size is None else fp32_at_size(self.config, module, self.size)

    def int8(self, qmodel: nn.Module) -> nn.Module:
        return qmodel if self.size is None else int8_at_size(self.config, qmodel, self.size)
