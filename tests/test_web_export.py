"""`--target web` without a browser: the site's files and descriptor, class names from the checkpoint,
the pinned onnxruntime-web files and their verification, the local server's headers, and every refusal
(bad --out, missing files, missing browser) as one line with exit 2 and nothing deleted or half-written."""

from __future__ import annotations

import io
import json
import os
import shutil
import tarfile
import urllib.error
import urllib.request

import pytest
from helpers.web import KEY, need_ort_files, web_site

from edgeattn.errors import InputError, UnavailableError
from edgeattn.fileio import sha256_of
from edgeattn.manifest import read_manifest
from edgeattn.runtime import artifact_kind
from edgeattn.web import ortfiles
from edgeattn.web.server import LocalServer
from edgeattn.web.site import PAGE_FILES, SITE_FILE, read_site

DIGITS = [str(i) for i in range(10)]


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    need_ort_files()
    return web_site(tmp_path_factory.mktemp("web") / "site")


def listing(folder) -> list[str]:
    return sorted(os.listdir(folder))


def test_site_is_self_contained_with_class_names_and_manifests(site):
    names = set(listing(site))
    assert {*PAGE_FILES, SITE_FILE, "model.onnx", "model.onnx.json", "ort"} <= names
    assert listing(site / "ort") == sorted(ortfiles.BACKEND_FILES["wasm"])
    data = json.loads((site / SITE_FILE).read_text())
    assert data["classes"] == DIGITS and data["class_names_known"]  # recorded by `edgeattn train`
    assert data["input"]["spec"]["size"] == [32, 32] and data["ort_web"]["version"] == ortfiles.VERSION
    for name, digest in data["files"].items():
        assert sha256_of(site / name) == digest, name
    inner = read_manifest(site / "model.onnx")  # a valid .onnx artifact on its own
    outer = read_manifest(site)  # site.json beside the folder, hashing all of it
    assert inner.class_names == outer.class_names == DIGITS
    assert outer.target == inner.target == "web" and outer.artifact == site.name
    assert (
        outer.details["model_sha256"] == inner.sha256 and outer.details["onnxruntime_web"] == ortfiles.VERSION
    )
    assert artifact_kind(site) == "ort-web" and artifact_kind(site / "model.onnx") == "onnxruntime"
    # Every path the page loads is relative, so the folder works from any static host.
    page = (site / "index.html").read_text() + (site / "app.mjs").read_text()
    assert "http://" not in page.replace("http(s)", "") and 'src="/' not in page and 'fetch("/' not in page


def test_class_names_reach_every_targets_manifest(tmp_path, trained):
    from edgeattn.checkpoint import load_checkpoint, save_checkpoint
    from edgeattn.export import export_artifact

    assert export_artifact(trained(KEY), "onnx", tmp_path / "m.onnx").class_names == DIGITS
    handle = load_checkpoint(trained(KEY))  # a checkpoint that never recorded names (e.g. imported)
    handle.history = [{k: v for k, v in h.items() if k != "classes"} for h in handle.history]
    save_checkpoint(handle, tmp_path / "anon.pt")
    assert export_artifact(tmp_path / "anon.pt", "onnx", tmp_path / "anon.onnx").class_names == []


def test_changed_site_files_are_refused(site, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(site, copy)
    read_site(copy)
    (copy / "index.html").write_text("<h1>our own page</h1>")  # the page may be customised
    read_site(copy)
    with (copy / "ort" / "ort-wasm-simd-threaded.wasm").open("ab") as fh:
        fh.write(b"\0")
    with pytest.raises(InputError, match="changed after export"):
        read_site(copy)
    (copy / "model.onnx").unlink()
    with pytest.raises(InputError, match="model.onnx is missing"):
        read_site(copy)


def test_re_export_replaces_a_site_but_never_another_folder(site, tmp_path, trained, run_cli):
    ckpt = trained(KEY)
    keep = tmp_path / "photos"
    keep.mkdir()
    (keep / "holiday.jpg").write_bytes(b"not yours to delete")
    code, _, err = run_cli("export", ckpt, "--target", "web", "--out", keep, "--overwrite")
    assert code == 2 and "not an edgeattn web export" in err and len(err.strip().splitlines()) == 1
    assert listing(keep) == ["holiday.jpg"]
    code, _, err = run_cli("export", ckpt, "--target", "web", "--out", tmp_path / "m.onnx")
    assert code == 2 and "without a suffix (a folder)" in err
    again = tmp_path / "again"
    shutil.copytree(site, again)
    (again / "stale.txt").write_text("left from an old export")
    code, _, err = run_cli("export", ckpt, "--target", "web", "--out", again)
    assert code == 2 and "already exists" in err
    code, out, err = run_cli("export", ckpt, "--target", "web", "--out", again, "--overwrite")
    assert code == 0, err
    assert "stale.txt" not in listing(again) and read_site(again)


def test_missing_onnxruntime_web_files_exit_2_before_any_work(tmp_path, trained, run_cli, monkeypatch):
    monkeypatch.setenv(ortfiles.DIR_ENV, str(tmp_path / "empty"))
    code, _, err = run_cli("export", trained(KEY), "--target", "web", "--out", tmp_path / "site")
    assert code == 2 and "edgeattn web setup" in err and len(err.strip().splitlines()) == 1
    assert listing(tmp_path) == []
    code, _, err = run_cli("web", "check")
    assert code == 2 and "edgeattn web setup" in err


def test_ort_files_are_checked_against_pinned_hashes(tmp_path):
    source = need_ort_files()
    folder = tmp_path / "ort"
    folder.mkdir()
    for name in ortfiles.BACKEND_FILES["wasm"]:
        shutil.copy(source / name, folder / name)
    assert ortfiles.ort_web_dir(folder) == folder
    with pytest.raises(UnavailableError, match="webgpu"):
        ortfiles.ort_web_dir(folder, ("webgpu",))
    with (folder / "ort.wasm.bundle.min.mjs").open("a") as fh:
        fh.write("// edited")
    with pytest.raises(UnavailableError, match="sha256 differs") as err:
        ortfiles.ort_web_dir(folder)
    assert "edgeattn web setup" in err.value.one_line()


def test_tarball_with_wrong_integrity_is_refused(tmp_path):
    fake = tmp_path / f"onnxruntime-web-{ortfiles.VERSION}.tgz"
    with tarfile.open(fake, "w:gz") as tar:
        data = b"export {};"
        info = tarfile.TarInfo("package/dist/ort.wasm.bundle.min.mjs")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    with pytest.raises(InputError, match="not onnxruntime-web@"):
        ortfiles.install_from_tarball(fake, tmp_path / "dest")
    assert not (tmp_path / "dest").exists()


def test_web_setup_is_a_no_op_when_verified(run_cli):
    need_ort_files(("wasm", "webgpu"))
    code, out, err = run_cli("web", "setup")
    assert code == 0, err
    assert "already present and verified" in out.replace("\n", " ")


def test_server_sends_isolation_headers_and_mime_types_on_loopback(site):
    with LocalServer(root=site) as server:
        assert server.origin.startswith("http://127.0.0.1:")
        expected = {
            "index.html": "text/html",
            "app.mjs": "text/javascript",
            "ort/ort-wasm-simd-threaded.wasm": "application/wasm",
            SITE_FILE: "application/json",
        }
        for path, mime in expected.items():
            with urllib.request.urlopen(server.url(path), timeout=10) as resp:
                assert resp.headers["Content-Type"].startswith(mime), path
                assert resp.headers["Cross-Origin-Opener-Policy"] == "same-origin"
                assert resp.headers["Cross-Origin-Embedder-Policy"] == "require-corp"
                assert resp.read() == (site / path).read_bytes()
        for bad in ("missing.html", "..%2F" * 4 + "etc/passwd", "%2e%2e/site.json"):
            with pytest.raises(urllib.error.HTTPError) as err:
                urllib.request.urlopen(server.url(bad), timeout=10)
            assert err.value.code == 404, bad
    with LocalServer(root=site, isolate=False) as server:
        with urllib.request.urlopen(server.url("index.html"), timeout=10) as resp:
            assert "Cross-Origin-Opener-Policy" not in resp.headers


def test_missing_browser_is_one_line_exit_2(site, tmp_path, trained, run_cli, monkeypatch):
    monkeypatch.setenv("EDGEATTN_BROWSER", str(tmp_path / "no-such-chromium"))
    code, _, err = run_cli("eval", site, "--limit", "4")
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "no-such-chromium" in err and "apt-get install chromium-headless-shell" in err
    code, _, err = run_cli("validate", trained(KEY), "--reference", trained(KEY), "--runtime", "ort-web")
    assert code == 2 and "cannot run" in err  # a checkpoint is not something the browser runs
