"""`edgeattn bench` end to end: each artifact in its own process, outputs written, bad input exit 2."""

from __future__ import annotations

import json

import pytest

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def pair(trained, tmp_path_factory):
    from edgeattn.bench.artifacts import peer_quantize_static, torch_onnx_export
    from edgeattn.checkpoint import load_checkpoint
    from edgeattn.data import load_split

    d = tmp_path_factory.mktemp("bench-cli")
    handle = load_checkpoint(trained("attn_vgg11_linear"))
    onnx = torch_onnx_export(handle, d / "m.onnx")
    calib = load_split("builtin:digits", "calib", handle.config.input_size).subset(16).images
    return onnx, peer_quantize_static(onnx, d / "m-int8.onnx", calib)


def test_cli_bench_isolated_writes_json_markdown_plot(run_cli, pair, tmp_path):
    onnx, int8 = pair
    out_json, md, png = tmp_path / "b.json", tmp_path / "b.md", tmp_path / "b.png"
    code, out, err = run_cli("bench", onnx, int8, "--batch", "1", "--batch", "2", "--threads", "1", "--pin", "--warmup", "1",
                             "--iters", "3", "--json", out_json, "--markdown", md, "--plot", png)  # fmt: skip
    assert code == 0, err
    assert "speed vs base" in out and "m-int8.onnx" in out and "environment:" in out
    data = json.loads(out_json.read_text())
    assert data["format"] == "edgeattn.bench" and data["baseline"] == "m.onnx"
    rows = data["rows"]
    assert len(rows) == 4 and {r["batch"] for r in rows} == {1, 2}
    assert all(r["pinned_cpus"] == [min(r["pinned_cpus"])] for r in rows)  # pinned to one CPU (threads=1)
    pids = {r["artifact"]: r for r in rows}
    assert len(pids) == 2
    assert data["env"]["settings"]["pin"] is True and data["env"]["cpu"]["model"]
    assert "| m.onnx |" in md.read_text()
    assert png.read_bytes()[:8] == PNG_MAGIC


def test_cli_bench_time_budget(run_cli, pair, tmp_path):
    onnx, _ = pair
    code, out, err = run_cli(
        "bench", onnx, "--seconds", "0.2", "--warmup", "0", "--threads", "1", "--json", tmp_path / "b.json"
    )
    assert code == 0, err
    row = json.loads((tmp_path / "b.json").read_text())["rows"][0]
    # The budget, not the minimum of 5 runs, decided how long it timed: the runs cover most of it.
    assert row["iterations"] > 5 and row["iterations"] * row["mean_ms"] >= 0.5 * 200 and row["is_baseline"]


def test_cli_bench_bad_input_exit_2(run_cli, pair, tmp_path):
    """Each failure: one line naming problem and fix, exit 2, no output file; the worker's own errors
    (onnxruntime refusing a well-formed but invalid graph) travel back from the subprocess."""
    import onnx
    from onnx import TensorProto, helper

    from edgeattn.manifest import read_manifest, write_manifest

    onnx_path, _ = pair
    x = helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 3, 32, 32])
    y = helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 10])
    graph = helper.make_graph([helper.make_node("NoSuchOp", ["input"], ["logits"])], "g", [x], [y])
    invalid = tmp_path / "invalid.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(invalid))
    write_manifest(invalid, read_manifest(onnx_path))
    out_json = tmp_path / "never.json"
    code, out, err = run_cli("bench", invalid, onnx_path, "--iters", "2", "--warmup", "0", "--json", out_json)
    assert code == 2 and "onnxruntime cannot load" in err and "Traceback" not in err
    assert not out_json.exists()  # nothing half-written
    corrupt = tmp_path / "c.onnx"
    corrupt.write_bytes(b"not an onnx model")
    write_manifest(corrupt, read_manifest(onnx_path))
    code, _, err = run_cli("bench", onnx_path, corrupt, "--json", out_json)
    assert code == 2 and "not a readable ONNX model" in err and not out_json.exists()
    code, _, err = run_cli("bench", onnx_path, "--iters", "3", "--seconds", "1")
    assert code == 2 and "--iters and --seconds" in err
    code, _, err = run_cli("bench", tmp_path / "missing.onnx")
    assert code == 2 and "does not exist" in err
    code, _, err = run_cli("bench", onnx_path, "--runtime", "openvino")
    assert code == 2 and "unknown runtime" in err
