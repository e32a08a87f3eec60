"""Devices: URLs, the agent's preprocessing against `Runner.prepare`, and real runs on a loopback ssh
device (OpenSSH's sshd on 127.0.0.1 with throwaway keys; a Python with only numpy and onnxruntime):
`device check`, predictions equal to this machine's, validate / compare / eval / bench with
`--device`, artifacts copied once and checked by sha256. Latency values are never asserted."""

from __future__ import annotations

import json
import os
import subprocess
import xml.etree.ElementTree as ET

import numpy as np
import pytest
import torch
from helpers.artifacts import copy_artifact, fp32_onnx, int8_onnx

from edgeattn.bench.env import cpu_info
from edgeattn.data import load_split
from edgeattn.device import DeviceConfig, agent, open_device, parse_device_url
from edgeattn.errors import InputError
from edgeattn.fileio import sha256_of
from edgeattn.models.config import InputSpec
from edgeattn.runtime import Runner, open_runner

KEY = "attn_vgg11_linear"


# ------------------------------------------------------------------------------------------- URLs
@pytest.mark.parametrize(
    "text,scheme,host,user,port,python",
    [
        ("local", "local", "", None, None, None),
        ("ssh://jetson", "ssh", "jetson", None, None, None),
        ("ssh://pi@10.0.0.7:2222?python=/home/pi/venv/bin/python", "ssh", "10.0.0.7", "pi", 2222, "/home/pi/venv/bin/python"),
    ],
)  # fmt: skip
def test_device_urls_parse(text, scheme, host, user, port, python):
    url = parse_device_url(text)
    assert (url.scheme, url.host, url.user, url.port, url.python) == (scheme, host, user, port, python)
    assert url.in_process is (text == "local")


@pytest.mark.parametrize(
    "text,message",
    [
        ("ssh://pi:secret@raspberrypi", "contains a password"),
        ("ssh://host:99999", "bad port"),
        ("ssh://?python=/usr/bin/python3", "names no host"),
        ("ssh://host?py=/usr/bin/python3", "unknown parameter"),
        ("ssh://host/home/pi", "has a path"),
        ("ssh://-oProxyCommand=touch%20x", "cannot start with '-'"),
        ("adb://0123456789", "unknown device transport 'adb'"),
        ("jetson", "not a device URL"),
    ],
)
def test_bad_device_urls_are_one_line_errors(text, message):
    with pytest.raises(InputError, match=message) as err:
        DeviceConfig.build(flags={"url": "--device"}, url=text)
    assert "\n" not in err.value.one_line()


# ------------------------------------------------------------------------------- agent preprocessing
def _runner(spec: InputSpec, image_input: bool = False) -> Runner:
    runner = Runner()
    runner.input_spec, runner.image_input = spec, image_input
    return runner


@pytest.mark.parametrize("interpolation", ["bilinear", "bicubic"])
@pytest.mark.parametrize("crop_pct", [1.0, 0.875])
@pytest.mark.parametrize("hw", [(48, 48), (80, 100), (41, 37), (200, 150)])
def test_agent_prepares_images_like_runner_prepare(interpolation, crop_pct, hw):
    spec = InputSpec(size=(48, 48), mean=(0.5, 0.4, 0.3), std=(0.2, 0.25, 0.3), interpolation=interpolation, crop_pct=crop_pct)  # fmt: skip
    images = torch.randint(0, 256, (2, 3, *hw), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    want = _runner(spec).prepare(images)
    got = agent.prepare(images.numpy(), spec.to_dict(), False)
    assert got.dtype == np.float32 and got.shape == want.shape
    assert np.abs(got - want).max() <= 1e-4
    raw = agent.prepare(images.numpy(), spec.to_dict(), True)  # image_input: resized, not normalised
    assert np.abs(raw - _runner(spec, image_input=True).prepare(images)).max() <= 2e-3
    if hw != (48, 48) and crop_pct == 1.0:  # negative control: the other kernel is visibly different
        other = {**spec.to_dict(), "interpolation": "bicubic" if interpolation == "bilinear" else "bilinear"}
        assert np.abs(agent.prepare(images.numpy(), other, False) - want).max() > 1e-2


def test_agent_reads_int8_dot_product_flags():
    arm = "processor\t: 0\nFeatures\t: fp asimd evtstrm asimddp i8mm sve\nCPU part\t: 0xd4f\n\n"
    facts = agent.cpu_facts(arm)
    assert facts["int8_dot_product"] and facts["int8_dot_flags"] == ["asimddp", "i8mm"]
    assert facts["simd_flags"] == ["asimd", "asimddp", "i8mm", "sve"]
    assert agent.cpu_facts("flags\t: sse4_2 avx2 fma\n")["int8_dot_flags"] == []
    assert cpu_info() == agent.cpu_facts()  # the benchmark's environment and the device use one parser


# --------------------------------------------------------------------------------- loopback device
def _ssh(dev, *args, **kwargs) -> list[str]:
    return [*args, "--device", dev.url(**kwargs), "--ssh-config", str(dev.ssh_config)]


def test_device_check_reports_what_the_device_is(run_cli, loopback_device):
    dev = loopback_device
    code, out, err = run_cli(
        "device", "check", dev.url(alias=False), "--ssh-config", dev.ssh_config, "--json"
    )
    assert code == 0, err
    facts = json.loads(out)
    here = cpu_info()
    assert facts["url"] == f"ssh://{dev.user}@127.0.0.1:{dev.port}"
    assert facts["cpu"]["simd_flags"] == here["simd_flags"]  # the same machine, seen through ssh
    assert facts["cpu"]["int8_dot_product"] == here["int8_dot_product"]
    assert facts["python_executable"] == dev.python and facts["memory_mb"] > 0
    import onnxruntime

    ort = facts["runtimes"]["onnxruntime"]
    assert ort["version"] == onnxruntime.__version__ and "CPUExecutionProvider" in ort["providers"]
    assert facts["runtimes"]["tensorrt"]["importable"] is False
    for module in ("torch", "edgeattn"):  # the device really has neither
        assert subprocess.run([dev.python, "-c", f"import {module}"], capture_output=True, cwd="/").returncode
    code, out, _ = run_cli("device", "check", dev.url(), "--ssh-config", dev.ssh_config)
    assert code == 0
    text = " ".join(out.split())
    assert "int8 dot-product" in text and "onnxruntime" in text and "runs: .onnx on onnxruntime" in text
    assert dev.wait_no_agents() == []


def test_device_check_local(run_cli, tmp_path):
    import sys

    code, out, _ = run_cli("device", "check", f"local?dir={tmp_path}", "--json")  # the agent's cache: tmp
    assert code == 0
    facts = json.loads(out)
    assert facts["url"] == "local" and facts["python_executable"] == sys.executable
    assert facts["cpu"] == cpu_info() and list(tmp_path.glob("agent-*.py"))


@pytest.mark.parametrize("artifact", ["fp32", "int8"])
def test_predictions_on_the_device_equal_this_machines(loopback_device, artifact):
    path = fp32_onnx(KEY) if artifact == "fp32" else int8_onnx(KEY)
    here = open_runner(path)
    size = here.input_spec.size[0]
    images = load_split("builtin:digits", "val", size).subset(96).images
    config = DeviceConfig(url=loopback_device.url(), ssh_config=loopback_device.ssh_config)
    with open_device(config) as dev:
        there = dev.open_runner(path)
        try:
            assert there.runtime.endswith("on ssh://edgeattn-loopback")
            got, want = there.predict(images, batch_size=32), here.predict(images, batch_size=32)
            assert got.shape == want.shape == (96, 10)
            assert np.abs(got - want).max() <= 1e-5 and (got.argmax(1) == want.argmax(1)).all()
            x = here.prepare(images[:5])
            assert np.abs(there.run(x) - here.run(x)).max() <= 1e-5
            if artifact == "fp32":  # images of another size: the agent resizes them like Runner.prepare
                other = load_split("builtin:digits", "val", size + 11).subset(32).images
                got, want = there.predict(other), here.predict(other)
                assert np.abs(got - want).max() <= 1e-3 and (got.argmax(1) == want.argmax(1)).all()
        finally:
            there.close()
    assert loopback_device.wait_no_agents() == []


def test_validate_compare_eval_and_bench_on_the_device(run_cli, loopback_device, tmp_path, trained):
    dev = loopback_device
    ckpt, fp32, int8 = trained(KEY), fp32_onnx(KEY), int8_onnx(KEY)
    common = ["--reference", ckpt, "--data", "builtin:digits", "--limit", "150"]

    code, _, err = run_cli("validate", fp32, *common, "--json", tmp_path / "here.json")
    assert code == 0, err
    files = [
        "--json",
        tmp_path / "there.json",
        "--junit",
        tmp_path / "there.xml",
        "--markdown",
        tmp_path / "there.md",
    ]
    code, out, err = run_cli("validate", fp32, *common, *files, *_ssh(dev))
    assert code == 0, err
    here, there = (json.loads((tmp_path / f"{n}.json").read_text()) for n in ("here", "there"))
    assert "device" not in here and there["device"]["url"] == "ssh://edgeattn-loopback"
    assert there["device"]["runtimes"]["onnxruntime"]["importable"]
    assert there["artifact_info"]["runtime"].endswith("on ssh://edgeattn-loopback")
    for metric in ("artifact_top1", "agreement", "kl", "max_abs_logit_error"):
        assert there["metrics"][metric] == pytest.approx(here["metrics"][metric], abs=1e-6), metric
    assert "Artifact measured on: ssh://edgeattn-loopback" in (tmp_path / "there.md").read_text()
    props = {
        p.get("name"): p.get("value") for p in ET.parse(tmp_path / "there.xml").getroot().iter("property")
    }
    assert props["device"].startswith("ssh://edgeattn-loopback: ")
    assert "artifact measured on: ssh://edgeattn-loopback" in " ".join(out.split())

    code, _, err = run_cli(
        "eval", int8, "--data", "builtin:digits", "--limit", "150", "--json", tmp_path / "e.json", *_ssh(dev)
    )
    assert code == 0, err
    local = run_cli(
        "eval", int8, "--data", "builtin:digits", "--limit", "150", "--json", tmp_path / "l.json"
    )[0]
    assert local == 0
    e, local_e = (json.loads((tmp_path / n).read_text()) for n in ("e.json", "l.json"))
    assert e["top1"] == local_e["top1"] and e["device"]["name"] == "ssh://edgeattn-loopback"

    code, _, err = run_cli("compare", fp32, int8, *common, "--json", tmp_path / "c.json", *_ssh(dev))
    assert code == 0, err
    c = json.loads((tmp_path / "c.json").read_text())
    assert c["device"]["url"] == "ssh://edgeattn-loopback"
    assert all(r["runtime"].endswith("on ssh://edgeattn-loopback") for r in c["rows"])

    args = ["bench", fp32, int8, "--iters", "3", "--warmup", "1", "--batch", "1", "--batch", "2"]
    code, out, err = run_cli(
        *args, "--json", tmp_path / "b.json", "--markdown", tmp_path / "b.md", *_ssh(dev)
    )
    assert code == 0, err
    b = json.loads((tmp_path / "b.json").read_text())
    assert len(b["rows"]) == 4 and not b["skipped"]
    assert {r["device"] for r in b["rows"]} == {"ssh://edgeattn-loopback"}
    assert all(r["iterations"] == 3 and r["timer"].startswith("wall clock") for r in b["rows"])
    assert b["device"]["cpu"] == b["env"]["cpu"]  # the environment is the device's
    assert b["env"]["versions"]["onnxruntime"] == b["device"]["runtimes"]["onnxruntime"]["version"]
    assert "Measured on: ssh://edgeattn-loopback" in (tmp_path / "b.md").read_text()
    assert "measured on: ssh://edgeattn-loopback" in " ".join(out.split())
    assert dev.wait_no_agents() == []


def test_artifacts_are_copied_once_and_checked_by_sha256(run_cli, loopback_device, tmp_path):
    dev = loopback_device
    art = copy_artifact(fp32_onnx(KEY), tmp_path / "m.onnx")
    sha = sha256_of(art)
    evaluate = ["eval", art, "--data", "builtin:digits", "--limit", "20", *_ssh(dev)]
    assert run_cli(*evaluate)[0] == 0
    copy = dev.cache_dir / "artifacts" / sha[:32] / "m.onnx"
    assert sha256_of(copy) == sha
    first = copy.stat().st_mtime_ns
    assert run_cli(*evaluate)[0] == 0
    assert copy.stat().st_mtime_ns == first  # cached: not copied again
    assert len(list(dev.cache_dir.glob("agent-*.py"))) == 1  # one agent, named by its content hash

    with open(copy, "ab") as fh:  # the cached copy goes bad on the device
        fh.write(b"\0")
    code, _, err = run_cli(*evaluate)
    assert code == 2 and "does not match its sha256" in " ".join(err.split())
    assert not copy.exists()  # removed, so the next run copies it again
    assert run_cli(*evaluate)[0] == 0 and sha256_of(copy) == sha

    before = sorted(p.name for p in (dev.cache_dir / "artifacts").iterdir())
    with open(art, "ab") as fh:  # the artifact here no longer matches its manifest
        fh.write(b"\0")
    code, _, err = run_cli(*evaluate)
    assert code == 2 and "does not match the sha256 in its manifest" in err
    assert sorted(p.name for p in (dev.cache_dir / "artifacts").iterdir()) == before  # nothing copied
    assert dev.wait_no_agents() == []


def test_ssh_config_from_the_environment(run_cli, loopback_device, monkeypatch):
    monkeypatch.setenv("EDGEATTN_SSH_CONFIG", str(loopback_device.ssh_config))
    code, out, err = run_cli("device", "check", loopback_device.url(), "--json")
    assert code == 0, err
    assert json.loads(out)["python_executable"] == loopback_device.python
    assert os.environ["EDGEATTN_SSH_CONFIG"] == str(loopback_device.ssh_config)


def test_local_with_another_python_runs_through_the_agent(run_cli, loopback_device, tmp_path):
    """`local?python=...` is this machine as a device: the same agent, another interpreter."""
    url = f"local?python={loopback_device.python}&dir={tmp_path / 'cache'}"
    args = ["eval", fp32_onnx(KEY), "--data", "builtin:digits", "--limit", "40"]
    code, _, err = run_cli(*args, "--json", tmp_path / "there.json", "--device", url)
    assert code == 0, err
    assert run_cli(*args, "--json", tmp_path / "here.json")[0] == 0
    there, here = (json.loads((tmp_path / n).read_text()) for n in ("there.json", "here.json"))
    assert there["top1"] == here["top1"] and there["device"]["python_executable"] == loopback_device.python
    assert there["runtime"].endswith(f"on local (python {loopback_device.python})")
    assert list((tmp_path / "cache").glob("agent-*.py"))
