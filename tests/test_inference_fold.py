"""Exact inference folds before quantization (attn_vgg's pre-norm into qkv) and the unified
requantizers: the folded model computes the same, rebuilds from its config, prunes, and its INT8
graph reads each qkv conv's input on the grid its producer already quantized it to."""

from __future__ import annotations

import onnx
import pytest
import torch
from torch import nn

from edgeattn.checkpoint import ModelHandle, load_checkpoint
from edgeattn.errors import InputError
from edgeattn.models import ModelConfig, build_model
from edgeattn.models.attention import MultiHeadAttention2d
from edgeattn.models.fold import fold_for_inference
from edgeattn.models.heads import HEAD_ADAPTERS

KEY = "attn_vgg11_linear"


def _randomized(kind: str) -> ModelHandle:
    """A tiny attn_vgg11 whose BatchNorms are far from identity, so a wrong fold shows."""
    torch.manual_seed(0)
    config = ModelConfig("attn_vgg11", 10, 32, {"attention": kind, "width": 0.25, "batch_norm": True})
    module = build_model(config).eval()
    for m in module.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.normal_()
            m.running_var.uniform_(0.3, 3.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.normal_()
    handle = ModelHandle.new(config)
    handle.module = module
    return handle


@pytest.mark.parametrize("kind", ["linear", "softmax"])
def test_fold_is_exact_and_the_config_rebuilds_it(kind):
    handle = _randomized(kind)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        before = handle.module(x)
    folded = fold_for_inference(handle)
    blocks = [m for m in folded.module.modules() if isinstance(m, MultiHeadAttention2d)]
    assert blocks and all(isinstance(b.norm, nn.Identity) for b in blocks)
    assert folded.config.options["attention_norm"] == "folded"
    with torch.no_grad():
        after = folded.module(x)
    torch.testing.assert_close(after, before, atol=1e-5, rtol=1e-5)
    rebuilt = build_model(folded.config)  # what an INT8 checkpoint of the folded model loads into
    rebuilt.load_state_dict(folded.module.state_dict(), strict=True)
    with torch.no_grad():
        torch.testing.assert_close(rebuilt.eval()(x), after)


def test_model_without_a_fold_is_unchanged():
    config = ModelConfig("mobilevit_xxs", 10, 64, {})
    handle = ModelHandle.new(config)
    handle.module = build_model(config).eval()
    assert fold_for_inference(handle) is handle


def test_unknown_attention_norm_is_refused():
    with pytest.raises(InputError, match="attention_norm"):
        build_model(ModelConfig("attn_vgg11", 10, 32, {"attention_norm": "layernorm"}))


def test_a_folded_block_still_prunes_heads():
    handle = fold_for_inference(_randomized("linear"))
    block = next(m for m in handle.module.modules() if isinstance(m, MultiHeadAttention2d))
    adapter = HEAD_ADAPTERS.get("linear")
    x = torch.randn(1, block.channels, 8, 8)
    mask = torch.tensor([1.0, 0.0, 1.0, 1.0])
    with torch.no_grad():
        block.head_mask = mask
        masked = block(x)
        block.head_mask = None
        kept = adapter.keep_heads(block, [0, 2, 3]).eval()
        assert isinstance(kept.norm, nn.Identity)
        torch.testing.assert_close(kept(x), masked, atol=1e-5, rtol=1e-5)


@pytest.fixture(scope="module")
def ptq(tmp_path_factory):
    """PTQ through the CLI of an attn_vgg11 wide enough (width 0.5) that its last qkv convs are INT8."""
    from edgeattn.checkpoint import save_checkpoint
    from edgeattn.cli.app import main

    d = tmp_path_factory.mktemp("fold")
    torch.manual_seed(0)
    config = ModelConfig("attn_vgg11", 10, 32, {"attention": "linear", "width": 0.5, "batch_norm": True})
    handle = ModelHandle.new(config)
    save_checkpoint(handle, d / "fp32.pt")
    out = d / "int8.pt"
    try:
        main(
            [
                "quantize",
                str(d / "fp32.pt"),
                "--data",
                "builtin:digits",
                "--calib-size",
                "16",
                "--out",
                str(out),
            ]
        )
    except SystemExit as exc:
        assert exc.code in (0, None), f"quantize exited {exc.code}"
    return out


def _requantizations(model: onnx.ModelProto) -> list[str]:
    """QuantizeLinear nodes that read a DequantizeLinear's output: a tensor quantized twice."""
    produced_by = {o: n for n in model.graph.node for o in n.output}
    return [
        n.name
        for n in model.graph.node
        if n.op_type == "QuantizeLinear"
        and getattr(produced_by.get(n.input[0]), "op_type", "") == "DequantizeLinear"
    ]


def _qkv_input_quantizers(module: nn.Module) -> list[nn.Module]:
    from nncf.torch.function_hook.hook_storage import decode_hook_name
    from nncf.torch.function_hook.wrapper import get_hook_storage

    found = []
    for name, hook in get_hook_storage(module).named_hooks():
        kind, op, port = decode_hook_name(name)
        if kind == "pre_hooks" and "qkv" in op and port == 0:
            found.append(hook)
    return found


def test_int8_model_is_folded_and_reads_each_qkv_input_on_its_producers_grid(ptq, tmp_path):
    from edgeattn.quantize.onnx_export import export_quantized_onnx

    handle = load_checkpoint(ptq)
    assert handle.config.options["attention_norm"] == "folded"
    blocks = [m for m in handle.module.modules() if isinstance(m, MultiHeadAttention2d)]
    assert blocks and all(isinstance(b.norm, nn.Identity) for b in blocks)
    assert _qkv_input_quantizers(handle.module)  # the int8 qkv convs the check below is about
    export_quantized_onnx(handle, tmp_path / "int8.onnx", dynamic_batch=True)
    assert _requantizations(onnx.load(str(tmp_path / "int8.onnx"))) == []

    # Negative control: the same model with its qkv input quantizers moved off the producer's grid
    # quantizes those inputs twice, and the check above sees it.
    with torch.no_grad():
        for q in _qkv_input_quantizers(handle.module):
            (q.input_range if hasattr(q, "input_range") else q.scale).mul_(1.1)  # asymmetric / symmetric
    export_quantized_onnx(handle, tmp_path / "moved.onnx", dynamic_batch=True)
    assert _requantizations(onnx.load(str(tmp_path / "moved.onnx")))


def test_unify_copies_only_between_quantizers_of_one_format():
    """A per-channel or other-bits quantizer cannot take a per-tensor one's parameters."""
    from nncf.common.quantization.structs import QuantizationScheme
    from nncf.torch.quantization.layers import AsymmetricQuantizer, PTQuantizerSpec

    from edgeattn.quantize.unify import same_format

    def quantizer(shape: tuple[int, ...], bits: int = 8) -> nn.Module:
        spec = PTQuantizerSpec(num_bits=bits, mode=QuantizationScheme.ASYMMETRIC, signedness_to_force=None,
                               narrow_range=False, half_range=False, scale_shape=shape, logarithm_scale=False)  # fmt: skip
        return AsymmetricQuantizer(spec)

    assert same_format(quantizer((1,)), quantizer((1,)))
    assert not same_format(quantizer((1,)), quantizer((4, 1, 1, 1)))
    assert not same_format(quantizer((1,)), quantizer((1,), bits=7))
