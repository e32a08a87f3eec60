"""`edgeattn quantize --device URL`: the measured placement timed by the device's agent, and
`--cpu-int8 auto` decided by the device's CPU. The device is `local?python=<this interpreter>`: the
real agent in a subprocess through the local transport (shipping, framing, the agent's own
onnxruntime sessions), nothing mocked. Speed is never asserted beyond a 20x-MACs negative control.
"""

from __future__ import annotations

import json
import random
import sys

import numpy as np
import onnx
import pytest
from helpers.digits import write_digits_npz
from onnx import TensorProto, helper, numpy_helper

from edgeattn.device import agent, open_device
from edgeattn.device.cpu import cpu_int8
from edgeattn.interleave import time_interleaved
from edgeattn.quantize.placement import choose_policy
from edgeattn.quantize.result import QuantizeReport
from edgeattn.quantize.timing import PLACEMENT_TIMERS, DevicePlacementTimer, LocalOrtTimer, timer_name

KEY = "attn_vgg11_linear"


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> str:
    return write_digits_npz(tmp_path_factory.mktemp("data") / "digits200.npz", 200)


def device_url(cache) -> str:
    """This machine as a device: the same agent as on a board, in another process (cache: tmp)."""
    return f"local?python={sys.executable}&dir={cache}"


def conv_chain(depth: int, channels: int = 16, side: int = 32) -> onnx.ModelProto:
    """`depth` 3x3 convolutions in a row, dynamic batch (as the placement's timed graphs)."""
    rng = np.random.default_rng(depth)
    nodes, inits, prev = [], [], "x"
    for i in range(depth):
        w = (rng.standard_normal((channels, channels, 3, 3)) * 0.1).astype(np.float32)
        inits.append(numpy_helper.from_array(w, f"w{i}"))
        nodes.append(helper.make_node("Conv", [prev, f"w{i}"], [f"y{i}"], pads=[1, 1, 1, 1]))
        prev = f"y{i}"
    graph = helper.make_graph(
        nodes,
        f"chain{depth}",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", channels, side, side])],
        [helper.make_tensor_value_info(prev, TensorProto.FLOAT, ["N", channels, side, side])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def test_agent_times_shipped_models_interleaved_per_round(tmp_path):
    """Two real graphs, 1 vs 20 convolutions (20x the MACs), timed by the agent on the device: one
    per-round median per model and round, and the 20x graph measures slower (ordering only)."""
    small, big = conv_chain(1), conv_chain(20)
    cache = tmp_path / "cache"
    with open_device(device_url(cache)) as dev:
        timer = PLACEMENT_TIMERS.get(timer_name("auto", on_device=True))(dev)
        assert isinstance(timer, DevicePlacementTimer)
        seen: list[int] = []
        try:
            times = timer.time([small, big], seconds=2.0, min_rounds=4, max_rounds=6, on_round=seen.append)
            assert len(times) == 2 and 4 <= len(times[0]) == len(times[1]) <= 6 and seen == [len(times[0])]
            assert all(ms > 0 and np.isfinite(ms) for per in times for ms in per)
            assert np.median(times[1]) > 2 * np.median(times[0]), times  # 20x the work, generously
            shipped = sorted(cache.glob("artifacts/*/placement-candidate-*.onnx"))
            assert len(shipped) == 2  # by content hash, once each
            assert timer.time([small, big], seconds=1.0, min_rounds=2, max_rounds=2)  # reuses the copies
            assert sorted(cache.glob("artifacts/*/placement-candidate-*.onnx")) == shipped
            assert "on device local (python " in timer.describe()
        finally:
            timer.close()
    assert not list(cache.glob("artifacts/*/placement-candidate-*"))  # throwaway candidates removed


def test_agent_restates_the_host_interleaving():
    """The agent's compact copy of `time_interleaved` runs the same shuffled orders for a seed and
    returns one median per round and callable."""
    calls: list[int] = []
    runs = [lambda i=i: calls.append(i) for i in range(3)]
    medians, iterations, orders = agent.time_interleaved(runs, 5, 0.001, 1, 3, 0.0, 7)
    host = time_interleaved({str(i): fn for i, fn in enumerate(runs)}, rounds=5, turn_seconds=0.001,
                            warmup=1, max_iterations=3, settle_s=0.0, seed=7)  # fmt: skip
    assert [[int(n) for n in order] for order in host.orders] == orders
    assert [len(m) for m in medians] == [5, 5, 5] and len(iterations) == 3
    rng = random.Random(7)
    expected = []
    for _ in range(5):
        order = [0, 1, 2]
        rng.shuffle(order)
        expected.append(order)
    assert orders == expected and expected != [[0, 1, 2]] * 5  # really shuffled


def test_timer_choice_follows_the_device():
    assert timer_name("auto", on_device=False) == "local" and timer_name("auto", on_device=True) == "device"
    assert timer_name("local", on_device=True) == "local"
    assert isinstance(PLACEMENT_TIMERS.get("local")(None), LocalOrtTimer)
    from edgeattn.errors import InputError

    with pytest.raises(InputError, match="no --device was given"):
        PLACEMENT_TIMERS.get("device")(None)


def test_device_cpu_decides_the_policy_and_is_named():
    """A device's facts block (a Graviton's /proc/cpuinfo, as its agent parses it) decides the policy,
    and the reason says whose CPU it was."""
    facts = agent.cpu_facts(
        "processor\t: 0\nFeatures\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics asimddp\n"
    )
    policy = choose_policy("onnxruntime", "auto", facts, owner="device ssh://pi@host")
    assert policy.label == "onnxruntime/arm-dotprod"
    assert policy.reason.startswith("device ssh://pi@host (") and " has asimddp" in policy.reason


def one_line(err: str) -> str:
    """The error as one line (rich may wrap it on the terminal)."""
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 or err.count("error:") == 1, err
    assert "Traceback" not in err
    return " ".join(err.split())


def _quantize(run_cli, trained, data, tmp_path, *args):
    out, js = tmp_path / "q.pt", tmp_path / "q.json"
    code, stdout, stderr = run_cli(
        "quantize", trained(KEY), "--data", data, "--calib-size", "16", "--out", out, "--json", js, *args
    )
    return code, stdout, stderr, out, js


def test_cli_measured_placement_times_on_the_device(trained, data, run_cli, tmp_path):
    cache = tmp_path / "cache"
    url = device_url(cache)
    code, stdout, stderr, out, js = _quantize(
        run_cli,
        trained,
        data,
        tmp_path,
        "--placement",
        "measured",
        "--placement-budget",
        "5",
        "--device",
        url,
    )
    assert code == 0, stderr
    report = QuantizeReport.model_validate(json.loads(js.read_text()))
    m = report.measured
    assert m is not None and out.exists()
    assert "CPU on device local (python " in m.timer and sys.executable in m.timer, m.timer
    assert "measured placement (onnxruntime" in " ".join(stdout.split())
    assert m.fp32_ms > 0 and m.int8_ms > 0 and m.recommended in ("int8", "fp32")
    assert "on device local (python" in report.placement  # the placement's description says where it timed
    # cpu-int8 auto came from the device's facts (this machine's CPU here, named as the device's)
    assert report.policy == f"onnxruntime/{cpu_int8().kind}"
    assert report.policy_reason.startswith("device local (python "), report.policy_reason
    assert list(cache.glob("agent-*.py")) and not list(cache.glob("artifacts/*/placement-candidate-*"))


def test_cli_cpu_int8_auto_reads_the_device(trained, data, run_cli, tmp_path):
    code, stdout, stderr, _, js = _quantize(
        run_cli, trained, data, tmp_path, "--device", device_url(tmp_path / "cache")
    )
    assert code == 0, stderr
    summary = json.loads(js.read_text())
    assert summary["policy"] == f"onnxruntime/{cpu_int8().kind}" and summary["measured"] is None
    assert summary["policy_reason"].startswith("device local (python ")
    assert cpu_int8().evidence() in summary["policy_reason"]
    assert "placement onnxruntime/" in stdout and "device local (python" in " ".join(stdout.split())


@pytest.mark.parametrize(
    ("device", "extra", "problem"),
    [
        ("ftp://host", (), "ftp"),
        (
            "local?python=/opt/no/python3",
            ("--placement", "measured"),
            "there is no Python at '/opt/no/python3'",
        ),
        (
            "local?python=SELF",
            ("--placement", "measured", "--runtime", "tensorrt"),
            "(on a --device too: its agent times onnxruntime sessions only), not tensorrt",
        ),
    ],
)
def test_bad_device_input_is_one_line_and_writes_nothing(
    trained, data, run_cli, tmp_path, device, extra, problem
):
    device = device.replace("SELF", sys.executable) + f"&dir={tmp_path / 'cache'}" * device.startswith(
        "local"
    )
    code, _, stderr, out, js = _quantize(run_cli, trained, data, tmp_path, "--device", device, *extra)
    assert code == 2 and problem in one_line(stderr)
    assert not out.exists() and not js.exists()


def test_unreachable_device_is_one_line_before_any_work(trained, data, run_cli, tmp_path, monkeypatch):
    import shutil

    if shutil.which("ssh") is None:
        pytest.skip("ssh is not installed (apt-get install openssh-client; .ci/run does it)")
    monkeypatch.delenv("EDGEATTN_SSH_CONFIG", raising=False)
    code, _, stderr, out, _ = _quantize(
        run_cli, trained, data, tmp_path, "--placement", "measured", "--device", "ssh://nobody@127.0.0.1:1"
    )
    assert code == 2 and "cannot reach 127.0.0.1 port 1" in one_line(stderr)
    assert not out.exists()


def test_device_without_onnxruntime_is_one_line(trained, data, run_cli, tmp_path):
    import subprocess

    from helpers.device import device_python

    try:
        numpy_only = device_python(onnxruntime=False)
    except (RuntimeError, subprocess.CalledProcessError) as exc:  # e.g. no package index reachable
        pytest.skip(f"cannot build a device Python with numpy only (venv + pip install numpy): {exc}")
    url = f"local?python={numpy_only}&dir={tmp_path / 'cache'}"
    code, _, stderr, out, _ = _quantize(
        run_cli, trained, data, tmp_path, "--placement", "measured", "--device", url
    )
    message = one_line(stderr)
    assert code == 2 and "onnxruntime is not installed" in message
    assert f"{numpy_only} -m pip install onnxruntime" in message
    assert not out.exists()


RECIPE = """
name: quantize-on-device
model: {{checkpoint: {ckpt}}}
data: builtin:digits
devices:
  here: "{url}"
quantize:
  device: {device}
  ptq: {{calib_size: 16, placement: measured, placement_budget: 5{extra}}}
export: {{targets: [{{target: onnx, precisions: [int8]}}]}}
validate: {{enabled: false}}
bench: {{enabled: false}}
"""


@pytest.mark.slow  # a whole run (PTQ, measured placement, export, evaluation): about 80 s on 2 cores
def test_a_recipe_quantizes_for_its_device(run_cli, trained, tmp_path):
    """`quantize.device` names a `devices:` entry: the measured placement is timed by its agent."""
    recipe = tmp_path / "q.yaml"
    url = device_url(tmp_path / "cache")
    recipe.write_text(RECIPE.format(ckpt=trained(KEY), url=url, device="here", extra=""))
    code, out, err = run_cli("run", recipe, "--out-root", tmp_path / "runs")
    assert code == 0, out + err
    record = tmp_path / "runs" / "quantize-on-device" / "quantize" / ".ptq.step.json"
    report = QuantizeReport.model_validate(json.loads(record.read_text())["result"])
    assert report.measured is not None and "CPU on device here (local (python " in report.measured.timer
    assert report.policy_reason.startswith("device here (local (python "), report.policy_reason


@pytest.mark.parametrize(
    ("device", "extra", "problem"),
    [
        ("hre", "", "unknown device 'hre' — did you mean 'here'?"),
        (
            "local",
            ", placement_timer: device",
            "placement_timer device times on a device, but quantize.device is local",
        ),
    ],
)
def test_a_recipe_with_a_bad_quantize_device_is_refused(run_cli, trained, tmp_path, device, extra, problem):
    recipe = tmp_path / "q.yaml"
    recipe.write_text(
        RECIPE.format(ckpt=trained(KEY), url="ssh://pi@raspberrypi", device=device, extra=extra)
    )
    code, out, err = run_cli("recipe", "check", recipe)
    assert code == 2 and problem in " ".join((out + err).split()), out + err
