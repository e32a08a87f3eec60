"""Every command the documentation shows runs, on tiny inputs (how they are made small: the
docstring of tests/helpers/docs.py). A documented command that stops working fails `make test`;
commands that run whole recipes run under `make test-all` (slow)."""

from __future__ import annotations

import shlex
import subprocess
import sys

import pytest
from helpers.docs import (
    OUTPUT_OPTIONS,
    DocCommand,
    documents,
    help_examples,
    input_paths,
    needs_device,
    prepare_workdir,
    provide,
    shrink_sizes,
    tokens_of,
    unavailable_here,
)
from helpers.models import REPO

from edgeattn.device import SSH_CONFIG_ENV

DOCS = documents()
EXAMPLES = help_examples()


def run_documented(command: DocCommand, workdir, run_cli, device_url: str | None = None) -> str | None:
    """Run one command in `workdir`; returns why it was skipped, or None. Fails on a non-zero exit."""
    words = shrink_sizes(tokens_of(command.text, device_url), workdir)
    reason = unavailable_here(words)
    if reason:
        return f"{command.source}: {reason}"
    model = words[words.index("--model") + 1] if "--model" in words else None
    placement = "tensorrt" if words[:3] == ["edgeattn", "check", "tensorrt"] else "onnxruntime"
    for path in input_paths(words):
        reason = provide(workdir / path, workdir, model, placement)
        if reason:
            return f"{command.source}: {reason}"
    if words[0] == "edgeattn":
        code, out, err = run_cli(*words[1:])
    else:  # torchrun ... -m edgeattn ...
        proc = subprocess.run(
            [sys.executable, "-m", "torch.distributed.run", *words[1:]],
            cwd=workdir,
            capture_output=True,
            text=True,
        )
        code, out, err = proc.returncode, proc.stdout, proc.stderr
    shown = shlex.join(words)
    assert code == 0, (
        f"{command.source}: `{command.text}` (run as `{shown}`) exited {code}\n{out[-2000:]}\n{err[-2000:]}"
    )
    for i, word in enumerate(words[:-1]):
        if word in OUTPUT_OPTIONS:
            assert (workdir / words[i + 1]).exists(), (
                f"{command.source}: {shown} did not write {words[i + 1]}"
            )
    return None


def run_all(commands: list[DocCommand], tmp_path, run_cli, monkeypatch, request, with_slow: bool) -> None:
    prepare_workdir(tmp_path)
    monkeypatch.chdir(tmp_path)
    device_url = None
    if any(needs_device(c.text) for c in commands):
        device = request.getfixturevalue("loopback_device")
        monkeypatch.setenv(SSH_CONFIG_ENV, str(device.ssh_config))
        device_url = device.url()
    skipped = []
    for command in commands:
        if command.slow and not with_slow:
            continue
        reason = run_documented(command, tmp_path, run_cli, device_url)
        if reason:
            skipped.append(reason)
    if skipped and len(skipped) == len(commands):
        pytest.skip("; ".join(skipped))


@pytest.mark.parametrize("doc", DOCS, ids=[d.name for d in DOCS])
def test_documented_commands_run(doc, tmp_path, run_cli, monkeypatch, request):
    run_all(doc.commands, tmp_path, run_cli, monkeypatch, request, with_slow=False)


@pytest.mark.slow
@pytest.mark.parametrize("doc", [d for d in DOCS if any(c.slow for c in d.commands)], ids=lambda d: d.name)
def test_documented_commands_run_with_whole_recipes(doc, tmp_path, run_cli, monkeypatch, request):
    run_all(doc.commands, tmp_path, run_cli, monkeypatch, request, with_slow=True)


@pytest.mark.parametrize(
    "example",
    [pytest.param(e, marks=pytest.mark.slow) if e.slow else e for e in EXAMPLES],
    ids=[e.text[:60] for e in EXAMPLES],
)
def test_help_examples_run(example, tmp_path, run_cli, monkeypatch, request):
    run_all([example], tmp_path, run_cli, monkeypatch, request, with_slow=True)


def test_the_harness_finds_the_documented_commands():
    """Negative control for the collection: the docs do show commands, and a broken one fails."""
    assert len(EXAMPLES) >= 12 and sum(len(d.commands) for d in DOCS) >= 8
    assert any(c.text.startswith("edgeattn validate") for d in DOCS for c in d.commands)
    assert (REPO / "README.md").read_text().count("```") >= 2


def test_a_broken_documented_command_fails(tmp_path, run_cli, monkeypatch):
    prepare_workdir(tmp_path)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(AssertionError, match="exited 2"):
        run_documented(
            DocCommand("negative control", "edgeattn eval model.onnx --data no/such/data"), tmp_path, run_cli
        )
