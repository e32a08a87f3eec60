"""The zoo: every model builds, runs, exports to ONNX and round-trips; counts match the papers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from edgeattn.checkpoint import ModelHandle, load_checkpoint, save_checkpoint
from edgeattn.models import ModelConfig, all_model_specs, build_model
from edgeattn.models.attention import LinearAttention2d, SoftmaxAttention2d
from edgeattn.models.heads import attention_blocks
from edgeattn.models.profile import count_macs, count_params

SMALL_OPTIONS = {"attn_vgg": {"width": 0.25}}
HEAVY = {"efficientformer_l3", "efficientformer_l7", "mobilevit_s"}


def small_config(name: str, family: str, size: int = 64) -> ModelConfig:
    return ModelConfig(name, 10, size, dict(SMALL_OPTIONS.get(family, {})))


@pytest.mark.parametrize("spec", all_model_specs(), ids=lambda s: s.name)
def test_every_model_builds_runs_and_round_trips(spec, tmp_path):
    cfg = small_config(spec.name, spec.family)
    handle = ModelHandle.new(cfg)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        y = handle.module(x)
    assert y.shape == (2, 10) and torch.isfinite(y).all()
    path = save_checkpoint(handle, tmp_path / "m.pt")
    again = load_checkpoint(path)
    with torch.no_grad():
        assert torch.equal(again.module(x), y)
    assert again.config == cfg


def _onnx_roundtrip(model: torch.nn.Module, size: int, path) -> float:
    import onnxruntime as ort

    x = torch.randn(1, 3, size, size)
    torch.onnx.export(
        model, (x,), str(path), input_names=["input"], output_names=["logits"], opset_version=17, dynamo=False
    )
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = sess.run(None, {"input": x.numpy()})[0]
    with torch.no_grad():
        want = model(x).numpy()
    return float(np.abs(got - want).max())


@pytest.mark.parametrize("spec", [s for s in all_model_specs() if s.name not in HEAVY], ids=lambda s: s.name)
def test_models_export_to_onnx(spec, tmp_path):
    model = build_model(small_config(spec.name, spec.family))
    assert _onnx_roundtrip(model, 64, tmp_path / "m.onnx") < 1e-4


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(HEAVY))
def test_heavy_models_export_to_onnx(name, tmp_path):
    model = build_model(ModelConfig(name, 10, 64))
    assert _onnx_roundtrip(model, 64, tmp_path / "m.onnx") < 1e-4


@pytest.mark.parametrize("kind", ["linear", "softmax", "se", "eca", "cbam"])
def test_attn_vgg_attention_kinds(kind):
    model = build_model(ModelConfig("attn_vgg11", 10, 32, {"attention": kind, "width": 0.25, "num_heads": 2}))
    blocks = attention_blocks(model)
    assert len(blocks) == 5 and {b.kind for b in blocks} == {kind}
    expected_heads = 2 if kind in ("linear", "softmax") else 0
    assert all(b.num_heads == expected_heads for b in blocks)
    assert model(torch.randn(1, 3, 32, 32)).shape == (1, 10)


@pytest.mark.parametrize("cls", [LinearAttention2d, SoftmaxAttention2d])
def test_self_attention_is_permutation_equivariant(cls):
    torch.manual_seed(0)
    block = cls(16, num_heads=4).eval()
    x = torch.randn(2, 16, 6, 5)
    perm = torch.randperm(30)
    flat = x.flatten(2)
    x_perm = flat[:, :, perm].reshape_as(x)
    with torch.no_grad():
        y = block(x).flatten(2)[:, :, perm]
        y_perm = block(x_perm).flatten(2)
    torch.testing.assert_close(y, y_perm, atol=1e-5, rtol=1e-5)


def test_linear_attention_is_linear_in_tokens():
    """Kernelized attention must never build the N x N matrix: memory stays flat as N grows."""
    block = LinearAttention2d(8, num_heads=2).eval()
    with torch.no_grad():
        y = block(torch.randn(1, 8, 224, 224))  # N = 50,176: an N x N float matrix would need 10 GB
    assert y.shape == (1, 8, 224, 224)


def test_linear_attention_matches_explicit_formula():
    torch.manual_seed(0)
    block = LinearAttention2d(8, num_heads=2).eval()
    q, k, v = torch.randn(3, 1, 2, 10, 4).unbind(0)  # (B, heads, N, d)
    fq, fk = torch.nn.functional.elu(q) + 1, torch.nn.functional.elu(k) + 1
    sim = fq @ fk.transpose(-1, -2)  # (1, 2, N, N): the quadratic form, for reference only
    want = (sim @ v) / sim.sum(-1, keepdim=True)
    got = block.mix(*(t.transpose(-1, -2) for t in (q, k, v)))  # mix takes and gives (B, heads, d, N)
    torch.testing.assert_close(got.transpose(-1, -2), want, atol=1e-5, rtol=1e-4)


def test_softmax_attention_matches_explicit_formula():
    torch.manual_seed(0)
    block = SoftmaxAttention2d(8, num_heads=2).eval()
    q, k, v = torch.randn(3, 1, 2, 10, 4).unbind(0)  # (B, heads, N, d)
    want = ((q @ k.transpose(-1, -2)) * 4**-0.5).softmax(-1) @ v
    got = block.mix(*(t.transpose(-1, -2) for t in (q, k, v)))
    torch.testing.assert_close(got.transpose(-1, -2), want, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize(
    "name,size,options,params_m,macs_g",
    [
        ("mobilevit_xxs", 256, {}, 1.27, 0.34),  # MobileViT paper / timm: 1.3 M params, 0.34 G MACs
        ("efficientformer_l1", 224, {}, 12.3, 1.3),  # EfficientFormer paper: 12.3 M params, 1.3 G MACs
        ("attn_vgg16", 224, {"attention": "none", "head": "classic"}, 138.4, 15.5),  # VGG16: 138.4 M, 15.5 G
    ],
)
def test_counts_match_published_figures(name, size, options, params_m, macs_g):
    model = build_model(ModelConfig(name, 1000, size, options))
    assert count_params(model) / 1e6 == pytest.approx(params_m, abs=0.05)
    assert count_macs(model, size) / 1e9 == pytest.approx(macs_g, rel=0.05)


def test_published_head_counts():
    assert sum(b.num_heads for b in attention_blocks(build_model(ModelConfig("mobilevit_xxs", 10, 64)))) == 36
    blocks = attention_blocks(build_model(ModelConfig("efficientformer_l1", 10, 64)))
    assert [(b.kind, b.num_heads) for b in blocks] == [("efficientformer_attention", 8)]


def test_bad_model_configs_are_refused():
    from edgeattn.errors import InputError

    with pytest.raises(InputError, match="did you mean"):
        build_model(ModelConfig("mobilevit_xxx", 10, 64))
    with pytest.raises(InputError, match="multiple of 32"):
        build_model(ModelConfig("mobilevit_xxs", 10, 50))
    with pytest.raises(InputError, match="options"):
        build_model(ModelConfig("attn_vgg11", 10, 32, {"attention": "bogus"}))
