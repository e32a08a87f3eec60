"""`edgeattn train --init CKPT --lora R`: LoRA on the attention projections (peft), the classifier
trained fully, adapters merged before saving — the checkpoint is the plain architecture."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from helpers.models import trained_checkpoint

from edgeattn.fileio import sha256_of

VGG = "attn_vgg11_linear"  # tiny trained attn_vgg11 (linear multi-head attention), 32x32, 10 digits

pytest.importorskip("peft", reason="peft is not installed (pip install 'edgeattn[lora]')")


def digits_npz(path, classes: int = 10, n: int = 200) -> str:
    """A few scikit-learn digits at 32x32 as an .npz (only the first `classes` classes)."""
    from sklearn.datasets import load_digits

    d = load_digits()
    keep = np.flatnonzero(d.target < classes)[:n]
    images = np.kron((d.images[keep] / 16.0 * 255).astype(np.uint8), np.ones((4, 4), dtype=np.uint8))
    np.savez(path, images=np.repeat(images[:, None], 3, axis=1), labels=d.target[keep])
    return str(path)


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    return digits_npz(tmp_path_factory.mktemp("lora") / "digits.npz")


def lora_run(run_cli, out, data, *extra: str) -> dict:
    report = out.with_suffix(".json")
    args = ["train", "--init", trained_checkpoint(VGG), "--data", data, "--epochs", "1", "--batch-size", "32"]
    code, stdout, err = run_cli(*args, *extra, "--out", out, "--json", report)
    assert code == 0, stdout + err
    return json.loads(report.read_text())


def test_lora_fine_tune_saves_the_plain_model(run_cli, tmp_path, digits):
    from edgeattn.checkpoint import load_checkpoint

    init = torch.load(trained_checkpoint(VGG), map_location="cpu", weights_only=True)
    result = lora_run(run_cli, tmp_path / "lora.pt", digits, "--lora", "4")
    full = sum(p.numel() for p in load_checkpoint(trained_checkpoint(VGG)).module.parameters())
    assert 0 < result["params"]["trainable"] < full / 10  # a full fine-tune trains all `full`
    assert result["params"]["total"] > full  # the adapters' own parameters, while training
    saved = torch.load(tmp_path / "lora.pt", map_location="cpu", weights_only=True)
    assert saved["config"] == init["config"]  # the architecture it started from, no peft wrapper
    assert set(saved["state_dict"]) == set(init["state_dict"])
    assert not [k for k in saved["state_dict"] if "lora_" in k or "modules_to_save" in k]
    params = {n for n, _ in load_checkpoint(tmp_path / "lora.pt").module.named_parameters()}
    changed = {k for k in params if not torch.equal(saved["state_dict"][k], init["state_dict"][k])}
    assert {"stages.0.attn.qkv.weight", "stages.0.attn.proj.weight"} <= changed  # adapters merged in
    assert {"classifier.2.weight", "classifier.2.bias"} <= changed  # the head trained fully
    convs = [k for k in params if ".convs." in k or ".norm." in k]  # neither attention projection nor head
    assert convs and not (set(convs) & changed)
    assert saved["history"][-1]["lora"]["rank"] == 4
    # The saved model is what prune/quantize/export take: it runs and still classifies.
    code, out, err = run_cli("eval", tmp_path / "lora.pt", "--data", digits, "--split", "val")
    assert code == 0, out + err
    # Same seed, same bytes (adapter init, data order and merge are all seeded/deterministic).
    lora_run(run_cli, tmp_path / "again.pt", digits, "--lora", "4")
    assert sha256_of(tmp_path / "again.pt") == sha256_of(tmp_path / "lora.pt")


def test_merged_model_equals_the_adapted_model():
    """merge_and_unload must give exactly the function the adapters computed (non-zero adapters)."""
    from edgeattn.checkpoint import load_checkpoint
    from edgeattn.train.lora import add_lora, lora_plan, merge_lora

    handle = load_checkpoint(trained_checkpoint(VGG))
    torch.manual_seed(0)
    plan = lora_plan(handle.module, 10, "attn_vgg11")
    assert plan.targets and all(".attn" in t or "qkv" in t or "proj" in t for t in plan.targets), plan
    wrapped = add_lora(handle.module, plan, 4, None)
    with torch.no_grad():
        for name, p in wrapped.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.05)  # B starts at zero: give the adapters something to merge
    x = torch.randn(4, 3, 32, 32)
    wrapped.eval()
    with torch.no_grad():
        adapted = wrapped(x)
        merged = merge_lora(wrapped)(x)
        plain = load_checkpoint(trained_checkpoint(VGG)).module(x)
    assert torch.allclose(adapted, merged, atol=1e-4)
    assert (adapted - plain).abs().max() > 1e-3  # negative control: the adapters do change the output


def test_new_classes_get_a_new_head(run_cli, tmp_path):
    three = digits_npz(tmp_path / "three.npz", classes=3, n=120)
    lora_run(run_cli, tmp_path / "three.pt", three, "--lora", "2")
    saved = torch.load(tmp_path / "three.pt", map_location="cpu", weights_only=True)
    assert saved["config"]["num_classes"] == 3
    code, out, err = run_cli("eval", tmp_path / "three.pt", "--data", three)
    assert code == 0, out + err


def test_bad_input_is_exit_2(run_cli, tmp_path, digits, monkeypatch):
    ckpt = trained_checkpoint(VGG)

    def check(args, *words):
        code, out, err = run_cli("train", "--data", digits, "--out", tmp_path / "x.pt", *args)
        assert code == 2, out + err
        assert len(err.strip().splitlines()) == 1 and all(w in err for w in words), err
        assert not (tmp_path / "x.pt").exists()

    check(["--model", "attn_vgg11", "--lora", "4"], "--lora", "--init")
    check([], "--model", "--init")
    check(["--init", ckpt, "--model", "mobilevit_xxs"], "--model mobilevit_xxs", "drop --model")
    check(["--init", ckpt, "--lora", "0"], "--lora 0")
    monkeypatch.setitem(__import__("sys").modules, "peft", None)  # peft not installed
    check(["--init", ckpt, "--lora", "4"], "peft", "edgeattn[lora]")
