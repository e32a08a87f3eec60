"""Running one documented command, or a document's commands in order, in a temporary workdir
(tests/test_docs_commands.py, tests/test_docs_help_examples.py)."""

from __future__ import annotations

import shlex
import subprocess
import sys

import pytest

from edgeattn.device import SSH_CONFIG_ENV
from helpers.docs import (
    OUTPUT_OPTIONS,
    DocCommand,
    input_paths,
    needs_device,
    prepare_workdir,
    provide,
    shrink_sizes,
    tokens_of,
    unavailable_here,
)


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
