"""Fixtures and session setup only; the code tests share lives in tests/helpers (`from helpers.models
import ...`), which pytest can import because it puts tests/ on sys.path.
"""

from __future__ import annotations

import os

import pytest
import torch
from helpers.models import trained_checkpoint

os.environ.setdefault("EDGEATTN_QUIET", "1")
torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


@pytest.fixture(scope="session")
def trained():
    """`trained(key, epochs=3)` -> path of a cached trained tiny checkpoint."""
    return trained_checkpoint


@pytest.fixture()
def tensorrt_gpu():
    """For `gpu` tests: skips without TensorRT + a CUDA GPU (fails instead with EDGEATTN_REQUIRE_GPU=1)."""
    from helpers.gpu import require_tensorrt_gpu

    require_tensorrt_gpu()


@pytest.fixture()
def run_cli(capsys):
    """Run the edgeattn CLI in-process; returns (exit_code, stdout, stderr)."""
    from edgeattn.cli.app import main

    def run(*args: str) -> tuple[int, str, str]:
        try:
            main([str(a) for a in args])
            code = 0
        except SystemExit as exc:
            code = int(exc.code or 0) if not isinstance(exc.code, str) else 1
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run


@pytest.fixture(scope="session")
def loopback_sshd(tmp_path_factory):
    """A real ssh device: OpenSSH's sshd on 127.0.0.1 only, throwaway host and client keys; its
    default Python is this interpreter (see `loopback_device` for a device without torch)."""
    import sys

    from helpers.device import start_sshd, unavailable_reason

    reason = unavailable_reason()
    if reason:
        pytest.skip(f"no loopback ssh device: {reason}")
    device = start_sshd(tmp_path_factory.mktemp("device"), sys.executable)
    yield device
    device.stop()


@pytest.fixture(scope="session")
def loopback_device(loopback_sshd):
    """The loopback ssh device with a Python that has numpy and onnxruntime only (no torch, no
    edgeattn), built once and cached."""
    import dataclasses
    import subprocess

    from helpers.device import device_python

    try:
        python = device_python()
    except (RuntimeError, subprocess.CalledProcessError) as exc:  # e.g. no package index reachable
        pytest.skip(f"cannot build the device's Python (venv + pip install numpy onnxruntime): {exc}")
    return dataclasses.replace(loopback_sshd, python=python)
