"""ONNX Runtime Web in real headless Chromium: FP32 logits equal Python onnxruntime's, an INT8 QDQ model
agrees on top-1 within the INT8 gates, the page shows the right class for a dropped digit (checked in
the page, screenshot saved), and the documented commands work on a web export.

Skipped, with the reason, only where no Chromium is installed (.ci/run installs Debian's)."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from helpers.artifacts import fp32_onnx, int8_onnx, perturbed_onnx
from helpers.web import KEY, digit_png, need_browser, need_ort_files, web_site

from edgeattn.data import load_split
from edgeattn.runtime import open_runner
from edgeattn.web import ortfiles
from edgeattn.web.browser import Browser
from edgeattn.web.server import LocalServer

pytestmark = pytest.mark.browser

FP32_ATOL = 1e-4
INT8_MIN_AGREEMENT = 95.0  # the demo recipe's int8 gates
INT8_MAX_TOP1_GAP = 2.0


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    need_browser()
    need_ort_files()
    return web_site(tmp_path_factory.mktemp("web") / "site", dynamic_batch=(1, 16, 64))


@pytest.fixture(scope="module")
def val():
    return load_split("builtin:digits", "val", 32)


def logits(path, images, runtime=None, **options):
    runner = open_runner(path, runtime, **options)
    try:
        return runner.predict(images), runner
    finally:
        runner.close()


def test_fp32_logits_match_python_onnxruntime(site, val, tmp_path):
    images = val.subset(96, seed=1).images
    native, _ = logits(site / "model.onnx", images)
    web, runner = logits(site, images, threads=2)
    assert np.abs(web - native).max() <= FP32_ATOL
    # Every run says what ran: versions, isolation, effective threads, session time.
    info = runner.web
    assert info["ort_web"] == ortfiles.VERSION and "Chrome" in info["browser"]
    assert info["cross_origin_isolated"] and info["simd"] and info["threads"] == 2
    assert info["session_ms"] > 0 and runner.run_ms is not None and runner.run_ms > 0
    assert "onnxruntime-web 1.30.0 (wasm, 2 thread(s), SIMD, cross-origin isolated)" in runner.runtime
    # Negative control: a model with slightly different weights is caught by the same tolerance.
    other = perturbed_onnx(site / "model.onnx", tmp_path / "perturbed.onnx", scale=0.02)
    web_other, _ = logits(other, images, "ort-web")
    assert np.abs(web_other - native).max() > FP32_ATOL


def test_int8_qdq_agrees_with_python_onnxruntime_within_int8_gates(val):
    q = int8_onnx(KEY)
    native, _ = logits(q, val.images)
    web, runner = logits(q, val.images, "ort-web")
    assert runner.precision == "int8"
    agreement = 100.0 * float(np.mean(native.argmax(1) == web.argmax(1)))
    labels = val.labels.numpy()
    gap = 100.0 * abs(float(np.mean(native.argmax(1) == labels)) - float(np.mean(web.argmax(1) == labels)))
    assert agreement >= INT8_MIN_AGREEMENT and gap <= INT8_MAX_TOP1_GAP, (agreement, gap)
    assert np.abs(web - native).max() > 0  # the browser's int8 kernels really ran (not a copy of the inputs)


def test_fp16_site_runs_in_the_browser_within_the_fp32_gates(tmp_path, trained):
    from edgeattn.validate import validate_artifact

    need_browser()
    need_ort_files()
    site16 = web_site(tmp_path / "site16", precision="fp16")
    report = validate_artifact(site16, trained(KEY), "builtin:digits", limit=48)
    assert report.artifact_info["precision"] == "fp16" and report.artifact_info["kind"] == "ort-web"
    assert (
        report.passed and report.metrics.max_abs_logit_error > 1e-4
    )  # FP16 arithmetic really ran: not bit-equal


def _confident_images(site, val, n=2):
    """Val images Python onnxruntime classifies right with a clear margin, of different classes."""
    native, _ = logits(site / "model.onnx", val.images)
    ranked = np.sort(native, axis=1)
    margin = ranked[:, -1] - ranked[:, -2]
    chosen, seen = [], set()
    for i in np.argsort(-margin):
        label = int(val.labels[i])
        if native[i].argmax() == label and label not in seen:
            chosen.append(int(i))
            seen.add(label)
        if len(chosen) == n:
            return chosen
    pytest.fail("the tiny model classifies too few val images right")


def _page_result(page) -> dict:
    page.wait_for("['done', 'error'].includes(document.getElementById('status').dataset.state)", 60)
    return page.evaluate(
        "({state: document.getElementById('status').dataset.state, status: document.getElementById('status').textContent,"
        " top: [...document.querySelectorAll('#top5 li')].map(li => li.dataset.class),"
        " latency: document.getElementById('latency').textContent, backend: document.getElementById('backend').textContent,"
        " threads: document.getElementById('threads').textContent, runtime: document.getElementById('runtime').textContent,"
        " note_hidden: document.getElementById('isolation-note').hidden})"
    )


def test_page_shows_top5_latency_backend_and_threads(site, val, tmp_path):
    first, second = _confident_images(site, val)
    files = [digit_png(tmp_path, "val", i, 32) for i in (first, second)]
    with LocalServer(root=site) as server, Browser() as browser:
        page = browser.new_page()
        page.navigate(server.url("index.html?threads=2"))
        page.wait_for("document.getElementById('status').dataset.state === 'ready'", 60)
        results = []
        for path, expected in files:
            page.set_files("#file", [path])
            result = _page_result(page)
            assert result["state"] == "done", (result, page.console())
            assert result["top"][0] == expected and len(result["top"]) == 5, result
            results.append(result)
        shot = page.screenshot(tmp_path / "page.png")
    assert results[0]["top"][0] != results[1]["top"][0]  # the page follows the image, not a constant
    r = results[-1]
    assert float(r["latency"].removesuffix(" ms")) > 0 and r["backend"] == "wasm"
    assert r["threads"].startswith("2 (SIMD; cross-origin isolated)") and r["note_hidden"]
    assert r["runtime"] == f"onnxruntime-web {ortfiles.VERSION}"
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000


def test_page_without_isolation_headers_runs_on_one_thread_and_says_so(site, val, tmp_path):
    path, expected = digit_png(tmp_path, "val", _confident_images(site, val, 1)[0], 32)
    with LocalServer(root=site, isolate=False) as server, Browser() as browser:
        page = browser.new_page()
        page.navigate(server.url("index.html?threads=2"))
        page.wait_for("document.getElementById('status').dataset.state === 'ready'", 60)
        page.set_files("#file", [path])
        result = _page_result(page)
    assert result["top"][0] == expected
    assert result["threads"].startswith("1 (SIMD; not cross-origin isolated)") and not result["note_hidden"]


def test_documented_commands_on_a_web_export(run_cli, trained, tmp_path):
    """README: export --target web, validate, eval, compare --runtime ort-web, bench web next to native."""
    ckpt = trained(KEY)
    site = tmp_path / "site"
    assert run_cli("export", ckpt, "--target", "web", "--out", site)[0] == 0
    onnx = site / "model.onnx"  # the same model as native ONNX (an artifact with its manifest)
    code, out, err = run_cli(
        "validate",
        site,
        "--reference",
        ckpt,
        "--data",
        "builtin:digits",
        "--limit",
        "48",
        "--json",
        tmp_path / "v.json",
    )
    assert code == 0, out + err
    report = json.loads((tmp_path / "v.json").read_text())
    assert report["artifact_info"]["kind"] == "ort-web" and report["metrics"]["agreement"] == 100.0
    assert report["artifact_info"]["web"]["ort_web"] == ortfiles.VERSION
    code, out, err = run_cli("eval", site, "--limit", "16")
    assert code == 0 and "onnxruntime-web" in out, err
    code, out, err = run_cli("compare", onnx, site, "--reference", ckpt, "--limit", "16", "--runtime", "ort-web",
                             "--json", tmp_path / "c.json")  # fmt: skip
    assert code == 0, err
    rows = json.loads((tmp_path / "c.json").read_text())["rows"]
    assert all(
        r["runtime"].startswith("onnxruntime-web") and r["metrics"]["agreement"] == 100.0 for r in rows
    )
    code, out, err = run_cli(
        "bench", site, onnx, "--iters", "5", "--warmup", "1", "--json", tmp_path / "b.json"
    )
    assert code == 0, out + err
    bench = json.loads((tmp_path / "b.json").read_text())
    kinds = {r["label"]: r["runtime_kind"] for r in bench["rows"]}
    assert kinds == {"site": "ort-web", "model.onnx": "onnxruntime"}
    web_row = next(r for r in bench["rows"] if r["label"] == "site")
    assert "page clock" in web_row["timer"] and web_row["median_ms"] > 0
    code, out, err = run_cli("web", "serve", site, "--port", "0", "--seconds", "0.5")
    assert code == 0 and re.search(r"http://127\.0\.0\.1:\d+/index\.html", out), err
    assert run_cli("web", "check")[0] == 0


def test_webgpu_runtime_is_timed_only_on_a_real_gpu(tmp_path, run_cli):
    """ort-webgpu: benchmarks skip a software adapter (SwiftShader) with the reason; without any adapter
    the runtime is unavailable, also with the reason."""
    from edgeattn.runtime.ortweb_runner import OrtWebGpuRunner

    need_browser()
    onnx = fp32_onnx(KEY)
    reason = OrtWebGpuRunner.speed_unavailable_reason()
    code, out, err = run_cli(
        "bench", onnx, "--runtime", "ort-webgpu", "--iters", "3", "--json", tmp_path / "b.json"
    )
    assert code == 0, err
    bench = json.loads((tmp_path / "b.json").read_text())
    if reason:
        assert [s["reason"] for s in bench["skipped"]] == [reason]
    else:
        assert bench["rows"][0]["runtime_kind"] == "ort-webgpu"


@pytest.mark.slow
def test_webgpu_logits_match_python_onnxruntime(site, val):
    """WebGPU (on whatever adapter the browser has; SwiftShader compiles shaders for ~30 s here)."""
    from edgeattn.runtime.ortweb_runner import OrtWebGpuRunner

    need_ort_files(("webgpu",))
    if OrtWebGpuRunner.unavailable_reason():
        pytest.skip(OrtWebGpuRunner.unavailable_reason())
    images = val.subset(8, seed=2).images
    native, _ = logits(site / "model.onnx", images)
    web, runner = logits(site / "model.onnx", images, "ort-webgpu")
    assert runner.web["backend"] == "webgpu"
    assert np.abs(web - native).max() <= 1e-3
