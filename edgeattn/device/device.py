"""`Device`: one opened device — its transport, its working folder, the agent shipped there, the
artifacts copied there, its facts — and `open_device`, the one entry point every stage uses.

Nothing of edgeattn is installed on a device: on first contact the host copies the agent (one
standard-library + numpy file, named by its content hash, so an unchanged agent is never copied
again) into the device's cache folder (`~/.cache/edgeattn`, or `?dir=`); each artifact is copied once
into `artifacts/<sha256>/` and its sha256 is checked there before every use. Plain `local` runs
artifacts in-process as before; `Device.open_runner` hides the difference from the stages.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from edgeattn.device.config import DeviceConfig, device_config
from edgeattn.device.session import AgentSession
from edgeattn.device.transport import TRANSPORTS, Transport, last_line, q
from edgeattn.errors import DeviceError, EdgeAttnError, GateFailure, InputError

AGENT_FILE = Path(__file__).with_name("agent.py")
DEFAULT_DIR = ".cache/edgeattn"  # relative to the login's home on the device
SCRIPT_TIMEOUT_S = 120.0
KILLED = (137, -9)  # SIGKILL through sh / seen directly: on a device, almost always the OOM killer
AGENT_KINDS = ("onnxruntime", "tensorrt")  # the runtimes the agent serves

# Why an artifact kind cannot run on a device (kinds the agent does not serve).
NOT_ON_DEVICE = {
    "torch": "a checkpoint runs in torch, which a device does not need to have — export it (edgeattn export --target onnx) and run the .onnx there",
    "coreml": "Core ML packages cannot run through the device agent yet — validate the .mlpackage here (reference executor) and time an .onnx on the device",
}


def unsupported_reason(kind: str) -> str | None:
    """Why artifacts of runner `kind` cannot run on a device, or None when the agent serves them."""
    return None if kind in AGENT_KINDS else NOT_ON_DEVICE.get(kind, f"the device agent does not serve {kind}")


@functools.cache
def agent_digest() -> str:
    return hashlib.sha256(AGENT_FILE.read_bytes()).hexdigest()


class Device:
    """A device named by a `DeviceConfig`; `label` is how reports name it (a recipe's device name)."""

    def __init__(self, config: DeviceConfig, label: str | None = None) -> None:
        self.config = config
        self.url = config.parsed
        self.label = label
        self.transport: Transport = TRANSPORTS.get(self.url.scheme)(self.url, config)
        self.python = self.url.python or self.transport.default_python
        self.workdir = ""
        self._connected = False
        self._facts: dict[str, Any] | None = None

    @property
    def name(self) -> str:
        """`label (url)` for a named device, else the URL."""
        return (
            f"{self.label} ({self.url.name})" if self.label and self.label != self.url.name else self.url.name
        )

    @property
    def in_process(self) -> bool:
        return self.url.in_process

    @property
    def agent_name(self) -> str:
        return f"agent-{agent_digest()[:16]}.py"

    # ------------------------------------------------------------------------------- connecting
    def connect(self) -> None:
        """Reach the device, find its Python and cache folder, and ship the agent when it is not there."""
        if self._connected:
            return
        self.transport.connect()
        folder = q(self.url.dir) if self.url.dir else DEFAULT_DIR
        script = (
            f"mkdir -p {folder} && cd {folder} || exit 3; echo dir=$(pwd); "
            f"if command -v {q(self.python)} >/dev/null 2>&1; then echo python=$(command -v {q(self.python)}); else echo python=; fi; "
            f"if [ -f {q(self.agent_name)} ]; then echo agent=yes; else echo agent=no; fi"
        )
        proc = self.transport.run(script, timeout=SCRIPT_TIMEOUT_S, what="looking around")
        found = dict(
            line.split("=", 1) for line in proc.stdout.decode(errors="replace").splitlines() if "=" in line
        )
        if proc.returncode or not found.get("dir"):
            raise DeviceError(
                f"cannot create the cache folder {self.url.dir or '~/' + DEFAULT_DIR} on {self.name} ({last_line(proc.stderr)})",
                "give a writable folder as ?dir=PATH in the device URL",
            )
        self.workdir = found["dir"]
        if not found.get("python"):
            raise DeviceError(
                f"there is no Python at {self.python!r} on {self.name}",
                "install Python 3 with numpy and the runtime there, or name the interpreter in the URL: ssh://host?python=/path/to/python3",
            )
        self.python = found["python"]
        if found.get("agent") != "yes":
            self.transport.put(AGENT_FILE, f"{self.workdir}/{self.agent_name}", timeout=SCRIPT_TIMEOUT_S)
        self._connected = True

    def agent_script(self, *args: str) -> str:
        """The sh script that starts the agent. Not exec'd (hence the `exit`): sh outlives a killed agent
        and reports SIGKILL as exit 137, and its process group holds the whole job."""
        self.connect()
        return f"cd {q(self.workdir)} && {q(self.python)} {q(self.agent_name)} {' '.join(q(a) for a in args)}; exit $?"

    def close(self) -> None:
        self.transport.close()
        self._connected = False

    def __enter__(self) -> Device:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # -------------------------------------------------------------------------------- failures
    def died(self, returncode: int, stderr: str, what: str) -> DeviceError:
        """One line for an agent that stopped without answering."""
        explained = self.transport.explain(returncode, stderr)
        if explained is not None:
            return explained
        if returncode in KILLED:
            return DeviceError(
                f"{what} on {self.name} was killed (exit 137, SIGKILL) — the device most likely ran out of memory",
                "free memory there or use a smaller --batch or model (the kernel log, dmesg, names the OOM killer)",
            )
        if returncode == 4:
            return DeviceError(
                f"the Python at {self.python} on {self.name} is too old for the device agent ({last_line(stderr)})",
                "install Python 3.8 or newer there and name it: ssh://host?python=/path/to/python3",
            )
        if returncode == 127:
            return DeviceError(
                f"there is no Python at {self.python!r} on {self.name}", "name one with ?python=PATH"
            )
        detail = last_line(stderr)
        return DeviceError(
            f"{what} on {self.name} stopped (exit {returncode}: {detail})",
            "run `edgeattn device check` on the device URL to see what it has",
        )

    def agent_error(self, error: dict[str, Any], what: str) -> EdgeAttnError:
        """The agent's own error report as one line (a TensorRT build that fails is a failed check,
        exit 1, as it is here; everything else is the device's problem, exit 2)."""
        problem = error.get("problem") or "the device agent failed"
        fix = error.get("fix")
        if error.get("kind") == "build":
            return GateFailure(f"{problem} (on {self.name})", fix)
        if error.get("kind") == "internal":
            return DeviceError(
                f"{what} on {self.name} failed: {problem}",
                fix or "rerun with --debug; the device agent's traceback is in the JSON error",
            )
        return DeviceError(f"{problem} ({self.name})" if self.name not in problem else problem, fix)

    # ----------------------------------------------------------------------------------- facts
    def facts(self, busy: bool = False) -> dict[str, Any]:
        """What `edgeattn device check` reports: CPU, SIMD, memory, OS, Python, runtimes (cached)."""
        if self._facts is not None and not busy:
            return self._facts
        args = ["facts", "--busy"] if busy else ["facts"]
        proc = self.transport.run(
            self.agent_script(*args), timeout=SCRIPT_TIMEOUT_S, what="reading the device's facts"
        )
        if proc.returncode:
            raise self.died(
                proc.returncode, proc.stderr.decode(errors="replace"), "reading the device's facts"
            )
        try:
            facts = json.loads(proc.stdout.decode(errors="replace").strip().splitlines()[-1])
        except (ValueError, IndexError):
            raise DeviceError(
                f"the device agent on {self.name} answered something that is not JSON ({last_line(proc.stdout)})",
                "check that the login prints nothing on stdout for non-interactive shells",
            ) from None
        self._facts = facts
        return facts

    def block(self, busy: bool = False) -> dict[str, Any]:
        """The `device` block of results: where the numbers were measured."""
        return {"name": self.name, "label": self.label, "url": self.url.name, **self.facts(busy=busy)}

    def require_numpy(self) -> None:
        self.require_module("numpy")

    def require_module(self, module: str) -> None:
        """DeviceError unless the device's Python can import `module` (numpy, onnxruntime)."""
        found = self.facts().get("runtimes", {}).get(module, {})
        if not found.get("importable"):
            raise DeviceError(
                f"{module} is not installed for {self.python} on {self.name} ({found.get('error')})",
                f"install it there: {self.python} -m pip install {module}",
            )

    # ------------------------------------------------------------------------------- artifacts
    def check_kind(self, kind: str, path: Path) -> None:
        if kind not in AGENT_KINDS:
            raise DeviceError(
                f"{path.name} cannot run on {self.name}: {unsupported_reason(kind)}",
                f"run it without --device, or give the device a {' or '.join(AGENT_KINDS)} artifact",
            )

    def ship(self, path: Path, sha256: str) -> str:
        """The artifact's path on the device, copied there once (by sha256) and checked before use."""
        self.connect()
        if not sha256:
            raise InputError(
                f"{path.name} has no sha256 in its manifest", "re-export it with edgeattn export"
            )
        if Path(path).is_dir():
            raise DeviceError(
                f"{path.name} is a folder; the device agent runs single-file artifacts",
                "give an .onnx or an engine",
            )
        remote = f"{self.workdir}/artifacts/{sha256[:32]}/{Path(path).name}"
        proc = self.transport.run(
            f"test -f {q(remote)} && echo yes || echo no",
            timeout=SCRIPT_TIMEOUT_S,
            what="looking for the artifact",
        )
        if proc.stdout.decode().strip() != "yes":
            size_mb = Path(path).stat().st_size / 2**20
            self.transport.put(Path(path), remote, timeout=SCRIPT_TIMEOUT_S + size_mb * 2)
        return remote

    def fetch(self, remote: str, local: Path, timeout: float | None = None) -> None:
        self.connect()
        self.transport.get(remote, local, timeout=timeout or self.config.timeout)

    def session(self, *, threads: int | None = None, pin: bool = False) -> AgentSession:
        """A fresh agent process on the device (its memory and thread pools are its own)."""
        self.connect()
        return AgentSession(self, threads=threads, pin=pin)

    def open_runner(self, path: Path | str, runtime: str | None = None, **options: Any) -> Any:
        """A Runner for `path`: edgeattn's own in-process runner on `local`, else one on the device."""
        from edgeattn.runtime import open_runner

        if self.in_process:
            return open_runner(path, runtime, **options)
        if options.pop("manifest", None) is not None:
            raise InputError(
                f"{Path(path).name} has no manifest, and devices run only artifacts with one",
                "export the model with `edgeattn export` (which writes the manifest), or run it here",
            )
        from edgeattn.device.runner import RemoteRunner

        return RemoteRunner(self, Path(path), runtime, **options)


@contextlib.contextmanager
def open_device(device: DeviceConfig | str | None = None, label: str | None = None) -> Iterator[Device]:
    """The device named by `device` (a config, a URL, or None for local); closed (connection and all
    jobs) when the block ends, also on errors."""
    dev = Device(device_config(device), label=label)
    try:
        yield dev
    finally:
        dev.close()
