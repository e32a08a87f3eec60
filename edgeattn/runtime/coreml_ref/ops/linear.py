"""linear, matmul, einsum and scaled_dot_product_attention."""

from __future__ import annotations

import math

import torch

from edgeattn.runtime.coreml_ref.ops.args import flag
from edgeattn.runtime.coreml_ref.ops.registry import op


@op("linear")
def linear(x: torch.Tensor, weight: torch.Tensor, bias=None) -> torch.Tensor:
    """y = x W^T + b, W of shape [D_out, D_in]."""
    y = torch.matmul(x, weight.to(x.dtype).transpose(-1, -2))
    return y if bias is None else y + bias.to(x.dtype)


@op("matmul")
def matmul(x: torch.Tensor, y: torch.Tensor, transpose_x=None, transpose_y=None) -> torch.Tensor:
    """numpy matmul semantics (rank-1 operands, broadcast batch dims); optional transposes of the last two."""
    if flag(transpose_x) and x.dim() >= 2:
        x = x.transpose(-1, -2)
    if flag(transpose_y) and y.dim() >= 2:
        y = y.transpose(-1, -2)
    if x.dtype != y.dtype:
        x, y = x.float(), y.float()
    return torch.matmul(x, y)


@op("einsum", tuple_inputs=("values",))
def einsum(values: list[torch.Tensor], equation: str) -> torch.Tensor:
    return torch.einsum(str(equation), *values)


@op("scaled_dot_product_attention")
def scaled_dot_product_attention(query, key, value, attn_mask=None) -> torch.Tensor:
    scores = torch.matmul(query, key.transpose(-1, -2)) / math.sqrt(query.shape[-1])
    if attn_mask is not None:
        if attn_mask.dtype == torch.bool:
            scores = scores.masked_fill(~attn_mask, -math.inf)
        else:
            scores = scores + attn_mask
    return torch.matmul(torch.softmax(scores, dim=-1), value)
