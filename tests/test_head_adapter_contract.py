"""The head-adapter contract, checked for every registered adapter on the small real model it names.

Iterates `HEAD_ADAPTERS` (not a hand-written list): an adapter added later is covered by registering
it with an `example_config`. Models are made input-sensitive first (layer scales to 1, bias tables and
BatchNorm statistics perturbed, classifier scaled so logits are order 1), and every tolerance is
relative to the logit spread, so a wrong slice cannot hide under tiny initial weights.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from edgeattn.models.heads import HEAD_ADAPTERS, attention_blocks

HEADED = [name for name, a in HEAD_ADAPTERS.items() if a.has_heads and a.example_config is not None]
EXEMPT = {"residual_only"}  # only ever the result of pruning; covered by test_prune_heads.py


def test_every_adapter_with_heads_names_an_example_model():
    missing = [
        n for n, a in HEAD_ADAPTERS.items() if a.has_heads and a.example_config is None and n not in EXEMPT
    ]
    assert not missing, f"adapters without example_config (contract untested): {missing}"
    issue_kinds = {
        "timm_attention",
        "multihead_attention",
        "swin_window_attention",
        "efficientformerv2_attention",
        "efficientformerv2_downsample_attention",
        "torchvision_swin_attention",
        "torchvision_swin_v2_attention",
    }
    assert issue_kinds <= set(HEADED), issue_kinds - set(HEADED)


def sensitive_handle(name: str, seed: int = 0):
    from edgeattn.checkpoint import ModelHandle

    torch.manual_seed(seed)
    handle = ModelHandle.new(HEAD_ADAPTERS.get(name).example_config)
    model = handle.module
    with torch.no_grad():
        for pname, p in model.named_parameters():
            if pname.endswith(("gamma", "gamma1", "gamma2", "ls1.gamma", "ls2.gamma")):
                p.fill_(1.0)
            elif pname.endswith(("attention_biases", "relative_position_bias_table")):
                p.normal_(0.0, 1.0)
            elif p.dim() >= 2:
                p.add_(torch.randn_like(p) * (float(p.std()) * 0.5 or 0.05))  # break zero inits
        for bname, b in model.named_buffers():
            if bname.endswith("running_mean"):
                b.normal_(0.0, 0.1)
            elif bname.endswith("running_var"):
                b.uniform_(0.5, 1.5)
        model.eval()
        last = [m for m in model.modules() if isinstance(m, torch.nn.Linear)][-1]
        feats = []
        hook = last.register_forward_pre_hook(lambda _m, args: feats.append(args[0]))
        logits = model(inputs(name))
        hook.remove()
        last.weight.mul_(1.0 / spread(logits))
        if last.bias is not None:  # centre the logits: the input-independent part would dwarf errors
            last.bias.copy_(-(feats[0].mean(0) @ last.weight.T))
    return handle


def inputs(name: str, n: int = 6, seed: int = 1) -> torch.Tensor:
    s = HEAD_ADAPTERS.get(name).example_config.input_size
    return torch.randn(n, 3, s, s, generator=torch.Generator().manual_seed(seed))


def spread(logits: torch.Tensor) -> float:
    """How much the logits move between inputs (the scale every tolerance is relative to)."""
    return float((logits - logits.mean(0)).std().clamp_min(1e-12))


def removal_plan(model: torch.nn.Module) -> dict[str, list[int]]:
    """Drop one head per block (two in blocks with four or more), keeping at least one."""
    plan = {}
    for b in attention_blocks(model, with_headless=False):
        drop = {0, b.num_heads - 1} if b.num_heads >= 4 else {b.num_heads - 1}
        plan[b.path] = [h for h in range(b.num_heads) if h not in drop] or [0]
    return plan


def pruned_copy(model: torch.nn.Module, plan: dict[str, list[int]]) -> torch.nn.Module:
    from edgeattn.prune.structural import clone_model, keep_local

    pruned = clone_model(model)
    keep_local(pruned, plan)
    return pruned.eval()


@pytest.fixture(scope="module", params=HEADED)
def case(request):
    name = request.param
    handle = sensitive_handle(name)
    x = inputs(name)
    with torch.no_grad():
        y = handle.module(x)
    return name, handle, x, y


def test_model_is_input_sensitive(case):
    """The negative control for every tolerance below: logits are order 1 and differ between inputs."""
    _, _, _, y = case
    assert 0.3 < spread(y) < 3.0
    assert float(y.abs().max()) < 30 * spread(y), "a large input-independent part would dwarf errors"


def test_all_heads_kept_equals_original(case):
    name, handle, x, y = case
    full = {b.path: list(range(b.num_heads)) for b in attention_blocks(handle.module, with_headless=False)}
    assert full, f"{name}'s example model has no {name} blocks"
    blocks = attention_blocks(handle.module, with_headless=False)
    assert {b.kind for b in blocks} == {name}
    from edgeattn.models.heads import replace_module
    from edgeattn.prune.structural import clone_model

    same = clone_model(handle.module)
    for b in attention_blocks(same, with_headless=False):  # force the structural path, even for "all"
        replace_module(same, b.path, b.adapter.keep_heads(b.module, list(range(b.num_heads))))
    with torch.no_grad():
        assert float((same.eval()(x) - y).abs().max()) < 1e-4 * spread(y)


def test_removed_heads_equal_masked_heads(case):
    from edgeattn.prune.structural import masked_heads

    name, handle, x, y = case
    plan = removal_plan(handle.module)
    pruned = pruned_copy(handle.module, plan)
    with torch.no_grad():
        out = pruned(x)
        with masked_heads(handle.module, plan):
            ref = handle.module(x)
        after = handle.module(x)
    assert float((after - y).abs().max()) == 0.0, "the mask must be removed afterwards"
    assert float((out - ref).abs().max()) < 1e-4 * spread(y)
    assert float((out - y).abs().max()) > 1e-2 * spread(y), "removing heads must change the output"
    kept = sum(b.num_heads for b in attention_blocks(pruned, with_headless=False))
    assert kept == sum(len(v) for v in plan.values())


def test_masks_are_differentiable(case):
    name, handle, x, _ = case
    blocks = attention_blocks(handle.module, with_headless=False)
    masks = [torch.ones(b.num_heads, requires_grad=True) for b in blocks]
    for b, m in zip(blocks, masks, strict=True):
        b.adapter.set_head_mask(b.module, m)
    try:
        handle.module(x).logsumexp(-1).sum().backward()
    finally:
        for b in blocks:
            b.adapter.set_head_mask(b.module, None)
        handle.module.zero_grad(set_to_none=True)
    for b, m in zip(blocks, masks, strict=True):
        assert m.grad is not None and bool((m.grad.abs() > 0).all()), b.path


def test_pruned_checkpoint_rebuilds_from_heads_kept(case, tmp_path):
    import dataclasses

    from edgeattn.checkpoint import ModelHandle, load_checkpoint, save_checkpoint

    name, handle, x, _ = case
    plan = removal_plan(handle.module)
    pruned = pruned_copy(handle.module, plan)
    config = dataclasses.replace(handle.config, heads_kept=plan)
    save_checkpoint(ModelHandle(pruned, config, handle.input_spec), tmp_path / "p.pt")
    payload = torch.load(tmp_path / "p.pt", weights_only=True)  # plain data: nothing executes
    assert payload["config"]["heads_kept"] == plan
    again = load_checkpoint(tmp_path / "p.pt")
    with torch.no_grad():
        assert torch.equal(again.module(x), pruned(x))


def test_pruned_model_exports_to_onnx_and_matches(case, tmp_path):
    from edgeattn.onnx.ort import run_outputs
    from edgeattn.onnx.torch_export import torch_to_onnx

    name, handle, x, y = case
    pruned = pruned_copy(handle.module, removal_plan(handle.module))
    torch_to_onnx(
        pruned, tmp_path / "p.onnx", input_shape=(1, *x.shape[1:]), opset=17, dynamic_batch=(1, None)
    )
    got = np.concatenate([run_outputs(tmp_path / "p.onnx", x[i : i + 1].numpy()) for i in range(len(x))])
    with torch.no_grad():
        want = pruned(x).numpy()
    assert float(np.abs(got - want).max()) < 1e-3 * spread(y)


@pytest.mark.slow
def test_pruned_model_quantizes_and_int8_onnx_runs(case, tmp_path):
    import dataclasses

    from edgeattn.checkpoint import ModelHandle, load_checkpoint, save_checkpoint
    from edgeattn.onnx.ort import run_outputs
    from edgeattn.quantize import quantize_checkpoint
    from edgeattn.quantize.onnx_export import export_quantized_onnx

    name, handle, x, y = case
    plan = removal_plan(handle.module)
    config = dataclasses.replace(handle.config, heads_kept=plan)
    save_checkpoint(
        ModelHandle(pruned_copy(handle.module, plan), config, handle.input_spec), tmp_path / "p.pt"
    )
    size = config.input_size
    rng = np.random.default_rng(0)
    images = rng.integers(0, 255, size=(120, size, size, 3), dtype=np.uint8)
    np.savez(tmp_path / "d.npz", images=images, labels=np.arange(120) % 10)
    quantize_checkpoint(tmp_path / "p.pt", str(tmp_path / "d.npz"), tmp_path / "q.pt", calib_size=32)
    q = load_checkpoint(tmp_path / "q.pt")
    export_quantized_onnx(q, tmp_path / "q.onnx")
    out = run_outputs(tmp_path / "q.onnx", x[:1].numpy())
    assert out.shape == (1, 10) and np.isfinite(out).all()
