"""PSA (point-wise spatial attention): the gathered maps equal a per-position loop over relative offsets,
for several channel counts and resolutions (including ones where channels != H x W), and attn_vgg runs it."""

from __future__ import annotations

import pytest
import torch

from edgeattn.models.psa import PointwiseSpatialAttention


def perturbed(psa: PointwiseSpatialAttention) -> PointwiseSpatialAttention:
    torch.manual_seed(0)
    with torch.no_grad():
        for name, b in psa.named_buffers():
            if name.endswith("running_mean"):
                b.normal_(0.0, 0.1)
            elif name.endswith("running_var"):
                b.uniform_(0.5, 1.5)
        for p in psa.parameters():
            p.add_(torch.randn_like(p) * 0.3)
    return psa.eval()


def loop_reference(psa: PointwiseSpatialAttention, x: torch.Tensor) -> torch.Tensor:
    """Zhao et al.'s definition, position by position: the map predicted at i, centred on i."""
    b, _, h, w = x.shape
    outs = []
    for branch in range(2):
        feats = psa.reduce[branch](x)
        pred = psa.predict[branch](feats).reshape(b, 2 * psa.max_h - 1, 2 * psa.max_w - 1, h, w)
        out = torch.zeros_like(feats)
        for yi in range(h):
            for xi in range(w):
                window = pred[
                    :,
                    psa.max_h - 1 - yi : psa.max_h - 1 - yi + h,
                    psa.max_w - 1 - xi : psa.max_w - 1 - xi + w,
                    yi,
                    xi,
                ]
                a = window.reshape(b, h * w).softmax(-1).reshape(b, 1, h, w)
                if branch == 0:  # collect: i gathers from every j
                    out[:, :, yi, xi] = (a * feats).sum((2, 3))
                else:  # distribute: i sends itself to every j
                    out = out + a * feats[:, :, yi : yi + 1, xi : xi + 1]
        outs.append(out)
    return x + psa.proj(torch.cat(outs, 1))


@pytest.mark.parametrize(
    ("channels", "built", "size"),
    [(12, (6, 5), (6, 5)), (12, (6, 5), (4, 3)), (40, (3, 7), (3, 7)), (7, (1, 1), (1, 1))],
)
def test_psa_matches_the_per_position_definition(channels, built, size):
    psa = perturbed(PointwiseSpatialAttention(channels, built))
    x = torch.randn(2, channels, *size, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        got, want = psa(x), loop_reference(psa, x)
        assert got.shape == x.shape
        assert float((got - want).abs().max()) < 1e-5 * float(want.abs().max())
        # negative control: the attention really depends on position (a shuffled index would differ)
        assert float((got - x).abs().max()) > 1e-2


def test_psa_refuses_a_larger_map_than_it_was_built_for():
    psa = PointwiseSpatialAttention(8, (4, 4)).eval()
    with pytest.raises(ValueError, match="built for 4x4"):
        psa(torch.zeros(1, 8, 5, 4))


@pytest.mark.parametrize("input_size", [32, pytest.param(64, marks=pytest.mark.slow)])
def test_attn_vgg_with_psa_runs_and_exports(input_size, tmp_path):
    import numpy as np

    from edgeattn.models import ModelConfig, build_model
    from edgeattn.models.heads import attention_blocks
    from edgeattn.onnx.ort import run_outputs
    from edgeattn.onnx.torch_export import torch_to_onnx

    model = build_model(ModelConfig("attn_vgg11", 10, input_size, {"attention": "psa", "width": 0.25}))
    assert [b.kind for b in attention_blocks(model)] == ["psa"] * 5
    x = torch.randn(2, 3, input_size, input_size)
    torch_to_onnx(model, tmp_path / "m.onnx", input_shape=(2, 3, input_size, input_size), opset=17)
    with torch.no_grad():
        want = model(x).numpy()
    got = run_outputs(tmp_path / "m.onnx", x.numpy())
    assert float(np.abs(got - want).max()) < 1e-4 * max(1.0, float(np.abs(want).max()))
