"""A device run that fails gives one line and exit 2 and leaves nothing running: an unreachable host,
a refused login, a changed or unknown host key, no Python, no numpy, no runtime, an OOM kill (137)
and a timeout, each against the real loopback ssh device; a failed gate on the device stays exit 1."""

from __future__ import annotations

import socket
import subprocess

import pytest
from helpers.artifacts import fp32_onnx, perturbed_onnx
from helpers.device import device_python, memory_limited_python, remove_cgroup, without_numpy_python

from edgeattn.device import DeviceConfig, open_device
from edgeattn.errors import DeviceError
from edgeattn.manifest import read_manifest, write_manifest

KEY = "attn_vgg11_linear"


def _one_line(err: str) -> str:
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 or err.count("error:") == 1, err  # one message (rich may wrap it)
    assert "Traceback" not in err
    return " ".join(err.split())


def _eval(run_cli, dev, url, config=None):
    return run_cli("eval", fp32_onnx(KEY), "--data", "builtin:digits", "--limit", "8", "--device", url,
                   "--ssh-config", config or dev.ssh_config)  # fmt: skip


def _config(dev, tmp_path, **changes) -> str:
    """The loopback device's ssh config with some settings replaced (another key, known_hosts, port)."""
    text = dev.ssh_config.read_text()
    for old, new in changes.items():
        text = text.replace(old, new)
    path = tmp_path / "ssh_config"
    path.write_text(text)
    return str(path)


def test_unreachable_host(run_cli, loopback_device):
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    code, _, err = _eval(run_cli, loopback_device, f"ssh://127.0.0.1:{port}?python=python3")
    assert code == 2
    assert "cannot reach 127.0.0.1 port" in _one_line(err) and "Connection refused" in err


def test_refused_login(run_cli, loopback_device, tmp_path):
    other = tmp_path / "other_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    config = _config(loopback_device, tmp_path, **{str(loopback_device.client_key): str(other)})
    code, _, err = _eval(run_cli, loopback_device, loopback_device.url(), config)
    assert code == 2
    message = _one_line(err)
    assert "refused the login" in message and "Permission denied" in message and "ssh-copy-id" in message


def test_changed_host_key(run_cli, loopback_device, tmp_path):
    other = tmp_path / "other_host_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    known = tmp_path / "known_hosts"
    known.write_text(f"[127.0.0.1]:{loopback_device.port} {other.with_suffix('.pub').read_text()}")
    config = _config(loopback_device, tmp_path, **{str(loopback_device.known_hosts): str(known)})
    code, _, err = _eval(run_cli, loopback_device, loopback_device.url(), config)
    assert code == 2
    message = _one_line(err)
    assert "host key of edgeattn-loopback changed" in message and "ssh-keygen -R" in message


def test_unknown_host_key(run_cli, loopback_device, tmp_path):
    known = tmp_path / "known_hosts"
    known.write_text("")
    config = _config(loopback_device, tmp_path, **{str(loopback_device.known_hosts): str(known)})
    code, _, err = _eval(run_cli, loopback_device, loopback_device.url(), config)
    assert code == 2 and "host key is not known" in _one_line(err)


def test_no_python_on_the_device(run_cli, loopback_device):
    code, _, err = _eval(run_cli, loopback_device, loopback_device.url(python="/opt/no/python3"))
    assert code == 2
    assert "there is no Python at '/opt/no/python3'" in _one_line(err) and "?python=" in err


def test_no_numpy_on_the_device(run_cli, loopback_device, tmp_path):
    bare = without_numpy_python(tmp_path)
    code, _, err = _eval(run_cli, loopback_device, loopback_device.url(python=bare))
    assert code == 2
    message = _one_line(err)
    assert "numpy is not installed" in message and f"{bare} -m pip install numpy" in message
    code, out, err = run_cli(
        "device", "check", loopback_device.url(python=bare), "--ssh-config", loopback_device.ssh_config
    )
    assert code == 2 and "numpy is not installed" in err and "not available" in out  # facts first, then why


def test_no_runtime_on_the_device(run_cli, loopback_device, tmp_path):
    numpy_only = device_python(onnxruntime=False)
    code, _, err = _eval(run_cli, loopback_device, loopback_device.url(python=numpy_only))
    assert code == 2
    message = _one_line(err)
    assert "onnxruntime is not installed" in message and "pip install onnxruntime" in message
    engine = tmp_path / "m.engine"  # an engine needs TensorRT there, which this device lacks
    engine.write_bytes(b"not a real plan: the device must refuse before reading it")
    manifest = read_manifest(fp32_onnx(KEY))
    manifest.target, manifest.precision = "tensorrt", "fp16"
    write_manifest(engine, manifest)
    code, _, err = run_cli("eval", engine, "--data", "builtin:digits", "--limit", "4", "--device",
                           loopback_device.url(), "--ssh-config", loopback_device.ssh_config)  # fmt: skip
    assert code == 2
    message = _one_line(err)
    assert "TensorRT is not installed" in message and "pip install tensorrt" in message
    assert loopback_device.wait_no_agents() == []


def test_a_checkpoint_does_not_run_on_a_device(run_cli, loopback_device, trained):
    code, _, err = run_cli("eval", trained(KEY), "--data", "builtin:digits", "--device", loopback_device.url(),
                           "--ssh-config", loopback_device.ssh_config)  # fmt: skip
    assert code == 2 and "runs in torch" in _one_line(err) and "export it" in err


def test_oom_kill_is_exit_2_and_leaves_nothing(loopback_device, tmp_path):
    limited = memory_limited_python(tmp_path, loopback_device.python, 300)
    if limited is None:
        pytest.skip("cgroup v1 memory limits cannot be set here (not root, or no memory controller)")
    wrapper, group = limited
    try:
        config = DeviceConfig(url=loopback_device.url(python=wrapper), ssh_config=loopback_device.ssh_config)
        with open_device(config) as dev:
            runner = dev.open_runner(fp32_onnx(KEY))
            import numpy as np

            with pytest.raises(DeviceError, match=r"was killed \(exit 137, SIGKILL\).*out of memory"):
                runner.predict(
                    np.zeros((3000, 3, 224, 224), np.uint8)
                )  # 450 MB of images for a 300 MB device
            runner.close()
        assert loopback_device.wait_no_agents() == []
    finally:
        remove_cgroup(group)


def test_timeout_stops_the_job_on_the_device(run_cli, loopback_device):
    code, _, err = run_cli("bench", fp32_onnx(KEY), "--seconds", "300", "--device", loopback_device.url(),
                           "--ssh-config", loopback_device.ssh_config, "--device-timeout", "6")  # fmt: skip
    assert code == 2
    message = _one_line(err)
    assert (
        "took longer than 6 s; its processes there were stopped" in message and "--device-timeout" in message
    )
    assert loopback_device.wait_no_agents() == []  # the agent and its process group are gone


def test_a_failed_gate_on_the_device_stays_exit_1(run_cli, loopback_device, tmp_path, trained):
    broken = perturbed_onnx(fp32_onnx(KEY), tmp_path / "broken.onnx", scale=0.6)
    code, _, err = run_cli("validate", broken, "--reference", trained(KEY), "--data", "builtin:digits", "--limit", "100",
                           "--device", loopback_device.url(), "--ssh-config", loopback_device.ssh_config)  # fmt: skip
    assert code == 1 and "max_top1_drop" in err  # (the intact artifact passes: test_device.py)


@pytest.mark.slow
def test_the_device_stops_on_its_own_when_edgeattn_dies(loopback_device):
    """The host is killed mid-benchmark (no cleanup runs): the agent's watchdog ends the job there."""
    import os
    import signal
    import sys
    import time

    cmd = [sys.executable, "-m", "edgeattn", "bench", str(fp32_onnx(KEY)), "--seconds", "300", "--device",
           loopback_device.url(), "--ssh-config", str(loopback_device.ssh_config), "--device-timeout", "4"]  # fmt: skip
    host = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while not loopback_device.agent_processes("serve") and time.monotonic() < deadline:
            time.sleep(0.2)
        assert loopback_device.agent_processes("serve"), "the benchmark never started on the device"
        time.sleep(1.0)  # the agent is timing now
    finally:
        os.killpg(host.pid, signal.SIGKILL)
        host.wait()
    killed = time.monotonic()
    assert loopback_device.agent_processes("serve")  # nobody stopped it from here...
    assert loopback_device.wait_no_agents(60) == []  # ...its watchdog did: 4 s + grace, then its group
    assert time.monotonic() - killed > 3
    loopback_device.stop_clients()  # the killed edgeattn's ssh master would linger for ControlPersist
