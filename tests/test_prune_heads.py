"""Structural head removal: pruned models equal the masked original, reload exactly, export to ONNX.

Runs on untrained tiny models whose weights are perturbed so that every head matters (EfficientFormer's
layer scales start at 1e-5, which would hide a wrong slice), scored on a small .npz data set.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers.models import TINY, tiny_config

HEADED = ["mobilevit_xxs", "efficientformer_l1", "attn_vgg11_linear", "attn_vgg11_softmax"]
TOL = 1e-5


def perturbed_handle(key: str, seed: int = 0):
    from edgeattn.checkpoint import ModelHandle

    torch.manual_seed(seed)
    handle = ModelHandle.new(tiny_config(key))
    with torch.no_grad():
        for name, p in handle.module.named_parameters():
            if name.endswith("gamma"):  # LayerScale: make the attention branch count
                p.fill_(1.0)
            elif name.endswith("attention_biases"):
                p.normal_(0.0, 1.0)
        for name, b in handle.module.named_buffers():  # BatchNorm statistics away from the identity
            if name.endswith("running_mean"):
                b.normal_(0.0, 0.1)
            elif name.endswith("running_var"):
                b.uniform_(0.5, 1.5)
    handle.module.eval()
    return handle


@pytest.fixture(scope="module")
def small_npz(tmp_path_factory):
    """400 of scikit-learn's 8x8 digits upscaled to 32x32 RGB: splits of 240 / 60 / 100 images."""
    from sklearn.datasets import load_digits

    d = load_digits()
    imgs = (d.images[:400] / 16.0 * 255).astype(np.uint8)
    imgs = np.kron(imgs, np.ones((1, 4, 4), dtype=np.uint8))[:, None].repeat(3, axis=1)
    path = tmp_path_factory.mktemp("prune_data") / "digits.npz"
    np.savez(path, images=imgs, labels=d.target[:400].astype(np.int64))
    return str(path)


@pytest.fixture(scope="module")
def ckpts(tmp_path_factory):
    from edgeattn.checkpoint import save_checkpoint

    root = tmp_path_factory.mktemp("prune_ckpts")
    cache: dict[str, object] = {}

    def get(key: str):
        if key not in cache:
            cache[key] = save_checkpoint(perturbed_handle(key), root / f"{key}.pt")
        return cache[key]

    return get


def _inputs(key: str, n: int = 4, seed: int = 1) -> torch.Tensor:
    s = TINY[key]["input_size"]
    return torch.randn(n, 3, s, s, generator=torch.Generator().manual_seed(seed))


@torch.no_grad()
def _masked_reference(
    original: torch.nn.Module, heads_kept: dict[str, list[int]], x: torch.Tensor
) -> torch.Tensor:
    from edgeattn.prune import masked_heads

    with masked_heads(original, heads_kept):
        return original(x)


# ------------------------------------------------------------------------------------ done-when checks
@pytest.mark.parametrize("key", HEADED)
def test_all_heads_kept_equals_original(key, ckpts, small_npz, tmp_path):
    from edgeattn.checkpoint import load_checkpoint
    from edgeattn.prune import prune_checkpoint

    report = prune_checkpoint(
        ckpts(key), small_npz, tmp_path / "p.pt", ratio=0.0, importance="l1", val_size=8
    )
    pruned, original = load_checkpoint(tmp_path / "p.pt"), load_checkpoint(ckpts(key))
    assert report.heads.removed == 0
    assert all(
        len(k) == n
        for k, n in zip(
            pruned.config.heads_kept.values(), [b.heads_original for b in report.blocks], strict=True
        )
    )
    x = _inputs(key)
    with torch.no_grad():
        assert float((pruned.module(x) - original.module(x)).abs().max()) < TOL


@pytest.mark.parametrize(
    ("key", "importance"),
    [
        ("mobilevit_xxs", "taylor"),
        ("efficientformer_l1", "taylor"),
        ("attn_vgg11_linear", "l1"),
        ("attn_vgg11_softmax", "entropy"),
    ],
)
def test_removed_heads_equal_masked_original(key, importance, ckpts, small_npz, tmp_path):
    from edgeattn.checkpoint import load_checkpoint
    from edgeattn.models.heads import attention_blocks
    from edgeattn.prune import prune_checkpoint

    report = prune_checkpoint(
        ckpts(key), small_npz, tmp_path / "p.pt", ratio=0.5, importance=importance, val_size=8, calib_size=16
    )
    pruned, original = load_checkpoint(tmp_path / "p.pt"), load_checkpoint(ckpts(key))
    kept = pruned.config.heads_kept
    total = sum(b.heads_original for b in report.blocks)
    assert sum(len(k) for k in kept.values()) == total - round(total * 0.5)
    # The pruned model really is smaller: fewer heads in the module, fewer parameters and MACs.
    assert (
        sum(b.num_heads for b in attention_blocks(pruned.module, with_headless=False))
        == total - report.heads.removed
    )
    assert report.params.after < report.params.before and report.macs.after < report.macs.before
    x = _inputs(key)
    with torch.no_grad():
        out = pruned.module(x)
        full = original.module(x)
    ref = _masked_reference(original.module, kept, x)
    assert float((out - ref).abs().max()) < TOL
    assert float((out - full).abs().max()) > 100 * TOL, "removing half the heads must change the output"


@pytest.mark.parametrize("key", ["mobilevit_xxs", "efficientformer_l1", "attn_vgg11_linear"])
def test_block_without_heads_becomes_residual_only(key):
    """All heads of one block removed: the block adds nothing (= original with the branch's proj zeroed)."""
    from edgeattn.models.heads import attention_blocks, replace_module
    from edgeattn.prune.structural import clone_model

    model = perturbed_handle(key).module
    block = attention_blocks(model, with_headless=False)[-1]
    pruned = clone_model(model)
    replace_module(pruned, block.path, block.adapter.keep_heads(pruned.get_submodule(block.path), []))
    zeroed = clone_model(model)
    with torch.no_grad():
        proj = zeroed.get_submodule(block.path).proj
        proj.weight.zero_()
        proj.bias.zero_()
        x = _inputs(key)
        assert float((pruned(x) - zeroed(x)).abs().max()) < TOL
        assert float((pruned(x) - model(x)).abs().max()) > 10 * TOL
    assert [b.num_heads for b in attention_blocks(pruned, with_headless=False)][-1] == 0


@pytest.mark.parametrize("key", HEADED)
def test_head_masks_are_differentiable(key):
    """taylor importance needs d loss / d mask: every head of every block gets a gradient."""
    from edgeattn.models.heads import attention_blocks

    model = perturbed_handle(key).module
    blocks = attention_blocks(model, with_headless=False)
    masks = [torch.ones(b.num_heads, requires_grad=True) for b in blocks]
    for b, m in zip(blocks, masks, strict=True):
        b.adapter.set_head_mask(b.module, m)
    try:
        model(_inputs(key)).logsumexp(-1).sum().backward()
    finally:
        for b in blocks:
            b.adapter.set_head_mask(b.module, None)
    for b, m in zip(blocks, masks, strict=True):
        assert m.grad is not None and bool((m.grad.abs() > 0).all()), b.path


def test_taylor_scores_are_loss_units_unless_normalised_per_layer():
    """`none` keeps the scale that differs between layers (global ranking relies on it); `layer` is
    the same scores divided by each layer's L2 norm (Michel et al. 2019)."""
    from edgeattn.models.heads import attention_blocks
    from edgeattn.prune.importance import ScoreData, score_heads

    model = perturbed_handle("mobilevit_xxs").module
    blocks = attention_blocks(model, with_headless=False)
    data = ScoreData(_inputs("mobilevit_xxs", n=8), torch.arange(8) % 10, batch_size=4)
    raw = score_heads("taylor", model, blocks, data, normalize="none")
    unit = score_heads("taylor", model, blocks, data, normalize="layer")
    norms = torch.stack([v.norm() for v in raw.values()])
    assert float(norms.max() / norms.min()) > 1.5, "layers should differ in loss sensitivity"
    for path, v in raw.items():
        torch.testing.assert_close(unit[path], v / v.norm(), rtol=1e-5, atol=1e-8)
        assert float(unit[path].norm()) == pytest.approx(1.0, abs=1e-5)
    # non-normalizable methods ignore the option (l1 is per-layer by construction)
    assert all(
        torch.equal(a, b)
        for a, b in zip(
            score_heads("l1", model, blocks, None, normalize="none").values(),
            score_heads("l1", model, blocks, None, normalize="layer").values(),
            strict=True,
        )
    )


def test_reprune_keeps_original_indices_and_residual_only_blocks(ckpts, small_npz, tmp_path):
    """Pruning a pruned model: heads_kept still names original heads; min 0 empties blocks (reported)."""
    from edgeattn.checkpoint import load_checkpoint
    from edgeattn.prune import prune_checkpoint

    key = "mobilevit_xxs"
    first = prune_checkpoint(
        ckpts(key),
        small_npz,
        tmp_path / "a.pt",
        heads=9,
        importance="random",
        scope="per-layer",
        seed=3,
        val_size=8,
    )
    assert all(len(k) == 3 for k in first.heads_kept.values())
    second = prune_checkpoint(
        tmp_path / "a.pt",
        small_npz,
        tmp_path / "b.pt",
        heads=20,
        importance="l1",
        min_heads_per_block=0,
        iterative_steps=2,
        val_size=16,
    )
    kept = second.heads_kept
    assert sum(len(k) for k in kept.values()) == 7
    assert all(set(kept[p]) <= set(first.heads_kept[p]) for p in kept)
    assert (
        second.residual_only_blocks == [p for p, k in kept.items() if not k] and second.residual_only_blocks
    )
    pruned, original = load_checkpoint(tmp_path / "b.pt"), load_checkpoint(ckpts(key))
    x = _inputs(key)
    nonempty = {p: k for p, k in kept.items() if k}
    with torch.no_grad():
        # Residual-only blocks drop the branch entirely; compare against the original with those zeroed.
        for p in second.residual_only_blocks:
            original.module.get_submodule(p).proj.weight.zero_()
            original.module.get_submodule(p).proj.bias.zero_()
        ref = _masked_reference(original.module, nonempty, x)
        assert float((pruned.module(x) - ref).abs().max()) < TOL


@pytest.mark.parametrize("scope", ["global", "per-layer"])
def test_target_macs_is_met(scope, ckpts, small_npz, tmp_path):
    from edgeattn.prune import prune_checkpoint

    key = "attn_vgg11_linear"
    from edgeattn.checkpoint import load_checkpoint
    from edgeattn.models.heads import heads_per_block
    from edgeattn.models.profile import count_macs
    from edgeattn.prune import head_mac_costs

    model = load_checkpoint(ckpts(key)).module
    base = count_macs(model, TINY[key]["input_size"])
    costs = head_mac_costs(model, TINY[key]["input_size"], base)
    floor = base - sum(
        costs[p] * (n - 1) for p, n in heads_per_block(model).items()
    )  # one head left per block
    budget = base - 0.5 * (base - floor)
    report = prune_checkpoint(
        ckpts(key), small_npz, tmp_path / "m.pt", target_macs=budget, importance="l1", scope=scope, val_size=8
    )
    assert report.macs.after <= budget
    assert report.heads.removed > 0


def test_pruned_models_export_to_onnx_and_run(tmp_path):
    """A pruned MobileViT (one block residual-only) and EfficientFormer export and run in onnxruntime."""
    import onnxruntime as ort

    from edgeattn.checkpoint import load_checkpoint, save_checkpoint
    from edgeattn.models.heads import attention_blocks
    from edgeattn.prune import keep_local

    for key in ("mobilevit_xxs", "efficientformer_l1"):
        handle = perturbed_handle(key)
        blocks = attention_blocks(handle.module, with_headless=False)
        keep = {b.path: list(range(1, b.num_heads, 2)) for b in blocks}
        if len(blocks) > 1:
            keep[blocks[0].path] = []
        keep_local(handle.module, keep)
        handle.config.heads_kept = keep
        save_checkpoint(handle, tmp_path / f"{key}.pt")
        model = load_checkpoint(tmp_path / f"{key}.pt").module
        x = _inputs(key, n=1)
        onnx_path = tmp_path / f"{key}.onnx"
        torch.onnx.export(
            model,
            (x,),
            str(onnx_path),
            opset_version=17,
            dynamo=False,
            input_names=["input"],
            output_names=["logits"],
        )
        sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
        got = sess.run(None, {"input": x.numpy()})[0]
        with torch.no_grad():
            want = model(x).numpy()
        np.testing.assert_allclose(got, want, atol=1e-4, rtol=1e-4)


def test_heatmap_png(tmp_path):
    from edgeattn.prune import head_importance_heatmap

    blocks = [
        {"path": "a", "scores": [0.1, 0.9, 0.5, None], "kept": [1, 2]},
        {"path": "b", "scores": [0.3, 0.2], "kept": []},
    ]
    path = head_importance_heatmap(blocks, tmp_path / "h.png", "t")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
