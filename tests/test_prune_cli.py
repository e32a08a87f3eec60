"""`edgeattn prune` end to end, and its bad-input contract: exit 2, one line, nothing written."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from helpers.models import tiny_config

from edgeattn.data import load_split
from edgeattn.evaluation import evaluate


def _npz(path, n: int, classes: int = 10, size: int = 32):
    rng = np.random.default_rng(0)
    np.savez(
        path, images=rng.integers(0, 256, (n, 3, size, size), dtype=np.uint8), labels=np.arange(n) % classes
    )
    return str(path)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """Untrained tiny checkpoints (linear and se attention) and small .npz data sets."""
    from edgeattn.checkpoint import ModelHandle, save_checkpoint

    root = tmp_path_factory.mktemp("prune_cli_inputs")
    torch.manual_seed(0)
    return {
        "linear": str(save_checkpoint(ModelHandle.new(tiny_config("attn_vgg11_linear")), root / "linear.pt")),
        "se": str(save_checkpoint(ModelHandle.new(tiny_config("attn_vgg11_se")), root / "se.pt")),
        "data": _npz(root / "ok.npz", 200),
        "tiny_data": _npz(root / "tiny.npz", 40),  # calibration split: 6 images
        "three_classes": _npz(root / "three.npz", 200, classes=3),
    }


BAD = {
    "ratio_one": (["--ratio", "1.0"], "outside [0, 1)"),
    "ratio_negative": (["--ratio", "-0.1"], "outside [0, 1)"),
    "more_heads_than_exist": (["--heads", "100"], "has only 20"),
    "min_heads_blocks_it": (["--heads", "20"], "--min-heads-per-block 0"),
    "no_target": ([], "exactly one pruning target"),
    "two_targets": (["--ratio", "0.5", "--heads", "3"], "exactly one pruning target"),
    "unknown_importance": (["--ratio", "0.5", "--importance", "magnitude"], "unknown importance score"),
    "unknown_scope": (["--ratio", "0.5", "--scope", "blocks"], "unknown pruning scope"),
    "entropy_without_maps": (["--ratio", "0.5", "--importance", "entropy"], "needs attention maps"),
    "macs_unreachable": (["--target-macs", "1k"], "cannot be reached"),
    "macs_unreadable": (["--target-macs", "lots"], "cannot read --target-macs"),
    "zero_steps": (["--ratio", "0.5", "--iterative-steps", "0"], "iterative-steps"),
    "unknown_normalization": (["--ratio", "0.5", "--normalize", "softmax"], "unknown score normalization"),
}


def _assert_failed_cleanly(code, err, tmp_path, expected):
    assert code == 2, err
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), err
    assert expected in lines[0], lines[0]
    assert "Traceback" not in err
    assert list(tmp_path.iterdir()) == [], "nothing may be written on bad input"


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_exits_2_and_writes_nothing(case, inputs, run_cli, tmp_path):
    args, expected = BAD[case]
    code, _, err = run_cli(
        "prune",
        inputs["linear"],
        "--data",
        inputs["data"],
        "--out",
        tmp_path / "p.pt",
        "--report-dir",
        tmp_path / "rep",
        *args,
    )
    _assert_failed_cleanly(code, err, tmp_path, expected)


@pytest.mark.parametrize(
    ("ckpt", "data", "expected"),
    [
        ("se", "data", "no heads to prune"),
        ("linear", "tiny_data", "needs at least 16"),
        ("linear", "three_classes", "has 3"),
        ("missing", "data", "does not exist"),
    ],
)
def test_unusable_model_or_data_exits_2(ckpt, data, expected, inputs, run_cli, tmp_path):
    path = inputs.get(ckpt, str(tmp_path.parent / "missing.pt"))
    code, _, err = run_cli(
        "prune",
        path,
        "--data",
        inputs[data],
        "--out",
        tmp_path / "p.pt",
        "--report-dir",
        tmp_path / "rep",
        "--ratio",
        "0.5",
    )
    _assert_failed_cleanly(code, err, tmp_path, expected)


def test_headless_blocks_are_named_in_the_error(inputs, run_cli, tmp_path):
    code, _, err = run_cli(
        "prune", inputs["se"], "--data", inputs["data"], "--out", tmp_path / "p.pt", "--heads", "1"
    )
    assert code == 2 and "se × 5" in err


def test_prune_cli_end_to_end(trained, run_cli, tmp_path_factory):
    """Trained tiny attn_vgg (linear): taylor, 50 %, 1 epoch distillation fine-tune, report files, reload.

    Scored and fine-tuned on 400 plain scikit-learn digits (.npz) to keep the default run fast.
    """
    from sklearn.datasets import load_digits

    from edgeattn.checkpoint import load_checkpoint
    from edgeattn.models.heads import heads_per_block

    d = load_digits()
    imgs = np.kron((d.images[:400] / 16.0 * 255).astype(np.uint8), np.ones((1, 4, 4), dtype=np.uint8))
    data = tmp_path_factory.mktemp("prune_e2e_data") / "digits.npz"
    np.savez(data, images=imgs[:, None].repeat(3, axis=1), labels=d.target[:400].astype(np.int64))
    tmp_path = tmp_path_factory.mktemp("prune_e2e")
    ckpt = trained("attn_vgg11_linear")
    out, rep = tmp_path / "pruned.pt", tmp_path / "report"
    code, stdout, err = run_cli(
        "prune",
        ckpt,
        "--data",
        data,
        "--ratio",
        "0.5",
        "--finetune-epochs",
        "1",
        "--out",
        out,
        "--report-dir",
        rep,
        "--json",
        tmp_path / "r.json",
        "--calib-size",
        "32",
    )
    assert code == 0, err
    assert "top-1" in stdout and "stages.0.attn" in stdout
    report = json.loads((tmp_path / "r.json").read_text())
    assert {p.name for p in rep.iterdir()} == {"prune_report.json", "prune_report.md", "head_importance.png"}
    assert "Heads per block" in (rep / "prune_report.md").read_text()
    assert report["heads"] == {"before": 20, "after": 10, "removed": 10}
    assert report["finetune"]["distill"] is True and len(report["finetune"]["log"]) == 1
    handle = load_checkpoint(out)
    val = load_split(str(data), "val", 32)
    assert report["top1"]["after_finetune"] == pytest.approx(
        evaluate(handle.module, val, handle.input_spec)["top1"]
    )
    # taylor ranking: in every block, the heads removed are scored below the heads kept
    for b in report["blocks"]:
        removed = [s for i, s in enumerate(b["scores"]) if i not in b["kept"]]
        kept = [s for i, s in enumerate(b["scores"]) if i in b["kept"]]
        assert kept and max(removed, default=float("-inf")) <= min(kept), b
    assert sum(heads_per_block(handle.module).values()) == 10
    assert handle.config.heads_kept == report["heads_kept"]
    assert handle.history[-1]["step"] == "prune"
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "pruned.pt",
        "r.json",
        "report",
    ]  # no temp files left
