"""Give an input quantizer that re-quantizes an already quantized tensor the grid it already has.

NNCF places a quantizer per consumer where one tensor feeds several: a ReLU output read by a residual
Add and by a conv gets a quantizer at the ReLU's output (for the Add) and another at the conv's input,
each calibrated on its own. The conv's input is then quantized twice, to two different grids: in the
ONNX graph a float DequantizeLinear + QuantizeLinear pass over the whole feature map, and a second
rounding error. Copying the producer's quantizer into the consumer's makes that second quantizer an
identity (values already on the grid stay there), so the export's Q/DQ motion drops the pair
(`drop_requantize`) and the conv reads the uint8 tensor as it is. Exact: the model computes the same
as with the first quantizer alone. Measured on attn_vgg16 with its pre-norms folded (224², VNNI): one
float pass of 3.2 M values per attention block's qkv conv.
"""

from __future__ import annotations

from typing import Any

from torch import nn


def unify_requantizers(qmodel: nn.Module, graph: Any) -> int:
    """Copy each output quantizer into the input quantizers that read its tensor directly (same
    quantizer class and bits); returns how many were copied. `graph` is NNCF's graph of the float model."""
    from nncf.torch.function_hook.hook_storage import decode_hook_name
    from nncf.torch.function_hook.wrapper import get_hook_storage
    from nncf.torch.quantization.layers import BaseQuantizer

    outputs: dict[str, nn.Module] = {}
    inputs: list[tuple[str, int, nn.Module]] = []
    for name, hook in get_hook_storage(qmodel).named_hooks():
        if not isinstance(hook, BaseQuantizer):
            continue
        kind, op, port = decode_hook_name(name)
        if kind == "post_hooks" and port == 0:
            outputs[op] = hook
        elif kind == "pre_hooks":
            inputs.append((op, port, hook))
    known = {n.node_name for n in graph.get_all_nodes()}
    copied = 0
    for op, port, hook in inputs:
        if op not in known:
            continue
        for edge in graph.get_input_edges(graph.get_node_by_name(op)):
            source = outputs.get(edge.from_node.node_name)
            if edge.input_port_id != port or edge.output_port_id != 0 or source is None:
                continue
            if source is not hook and same_format(source, hook):
                hook.load_state_dict(source.state_dict())
                copied += 1
    return copied


def same_format(a: nn.Module, b: nn.Module) -> bool:
    """Whether `b` can take `a`'s parameters and then quantize exactly as `a` does: same quantizer
    class, bits, range convention and parameter shapes (per-tensor vs per-channel)."""
    if type(a) is not type(b) or a.num_bits != b.num_bits:
        return False
    if getattr(a, "narrow_range", None) != getattr(b, "narrow_range", None):
        return False
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(sa[k].shape == sb[k].shape for k in sa)
