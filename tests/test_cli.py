"""CLI conventions: help with examples, JSON output, exit codes, atomic writes."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from edgeattn.fileio import atomic_output


def test_help_lists_commands_and_examples(run_cli):
    code, out, _ = run_cli("--help")
    assert code == 0 and "train" in out and "profile" in out
    for command in ("train", "prune", "quantize", "export", "validate", "bench", "run"):
        code, out, _ = run_cli(command, "--help")
        assert code == 0 and re.search(r"Examples?:", out), f"{command} --help shows no example"


def test_python_dash_m_entry_point():
    done = subprocess.run(
        [sys.executable, "-m", "edgeattn", "--version"], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0 and done.stdout.startswith("edgeattn ")


def test_usage_errors_exit_2(run_cli):
    code, _, err = run_cli("train", "--bogus-flag")
    assert code == 2 and "bogus" in err


def test_unknown_model_suggests_a_name(run_cli):
    code, _, err = run_cli("profile", "mobilevit_xxz")
    assert code == 2 and "did you mean 'mobilevit_xxs'" in err


def test_profile_json_has_heads_per_block(run_cli, tmp_path):
    code, out, err = run_cli(
        "profile", "mobilevit_xxs", "--input-size", "64", "--json", str(tmp_path / "p.json")
    )
    assert code == 0, err
    data = json.loads((tmp_path / "p.json").read_text())
    assert data["heads"] == 36 and len(data["heads_per_block"]) == 9


def test_profile_reports_headless_blocks(run_cli, tmp_path):
    from edgeattn.checkpoint import ModelHandle, save_checkpoint
    from edgeattn.models import ModelConfig

    path = save_checkpoint(
        ModelHandle.new(ModelConfig("attn_vgg11", 10, 32, {"attention": "se", "width": 0.25})),
        tmp_path / "se.pt",
    )
    code, out, _ = run_cli("profile", str(path), "--json-stdout")
    assert code == 0
    data = json.loads(out)
    assert (
        data["heads"] == 0
        and len(data["headless_blocks"]) == 5
        and set(data["headless_blocks"].values()) == {"se"}
    )


def test_models_table_json(run_cli, tmp_path):
    code, _, err = run_cli("models", "--json", str(tmp_path / "m.json"))
    assert code == 0, err
    rows = {r["name"]: r for r in json.loads((tmp_path / "m.json").read_text())}
    assert len(rows) == 10
    assert rows["mobilevit_xxs"]["attention_blocks"] == 9 and rows["mobilevit_xxs"]["heads"] == 36


def test_atomic_output_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out.bin"
    with pytest.raises(RuntimeError):
        with atomic_output(target) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("writer died")
    assert list(tmp_path.iterdir()) == []


def test_train_and_eval_end_to_end(run_cli, tmp_path):
    ckpt = tmp_path / "tiny.pt"
    code, _, err = run_cli(
        "train",
        "--model",
        "attn_vgg11",
        "--input-size",
        "32",
        "--epochs",
        "1",
        "--option",
        "width=0.25",
        "--option",
        "batch_norm=true",
        "--out",
        str(ckpt),
        "--json",
        str(tmp_path / "train.json"),
    )
    assert code == 0, err
    trained = json.loads((tmp_path / "train.json").read_text())["val"]
    code, out, err = run_cli(
        "eval", str(ckpt), "--data", "builtin:digits", "--json", str(tmp_path / "eval.json")
    )
    assert code == 0, err
    result = json.loads((tmp_path / "eval.json").read_text())
    # eval of the saved checkpoint (runner path) agrees with train's own evaluation (in-memory path)
    assert result["n"] == trained["n"] == 900 and result["top1"] == pytest.approx(trained["top1"])
    assert f"{result['top1']:.2f}" in out


def test_train_refuses_unwritable_out_before_work(run_cli, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code, _, err = run_cli("train", "--model", "attn_vgg11", "--out", str(blocker / "sub" / "m.pt"))
    assert code == 2 and "cannot write" in err
