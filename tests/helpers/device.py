"""A real stand-in edge device for the device tests: OpenSSH's sshd listening on 127.0.0.1 only, with
throwaway host and client keys, and a device Python environment that has numpy and onnxruntime and
nothing else (no torch, no edgeattn), built once and cached beside the trained test models.

Nothing is mocked: edgeattn reaches the device with the system `ssh`, exactly as it reaches a Jetson.
"""

from __future__ import annotations

import getpass
import os
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from helpers.models import CACHE

SSHD = "/usr/sbin/sshd"
ALIAS = "edgeattn-loopback"
START_TRIES = 5
WAIT_S = 15.0


def unavailable_reason() -> str | None:
    """Why no loopback device can be started here (the skip message), or None."""
    for tool in ("ssh", "ssh-keygen"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (apt-get install openssh-client; .ci/run does it)"
    if not os.access(SSHD, os.X_OK):
        return f"{SSHD} is not installed (apt-get install openssh-server; .ci/run does it)"
    return None


def _keygen(path: Path) -> None:
    for old in (path, path.with_suffix(".pub")):
        old.unlink(missing_ok=True)
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "edgeattn-test", "-f", str(path)],
                   check=True, capture_output=True)  # fmt: skip


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
            return s.recv(4).startswith(b"SSH-")
    except OSError:
        return False


@dataclass
class LoopbackDevice:
    root: Path
    port: int
    ssh_config: Path
    known_hosts: Path
    client_key: Path
    host_key: Path
    python: str
    cache_dir: Path
    log: Path
    proc: subprocess.Popen | None = None
    user: str = field(default_factory=getpass.getuser)

    def url(self, python: str | None = None, alias: bool = True, **params: str) -> str:
        """ssh://edgeattn-loopback?python=...&dir=... (alias=False: ssh://user@127.0.0.1:PORT?...)"""
        query = {"python": python or self.python, "dir": str(self.cache_dir), **params}
        q = "&".join(f"{k}={quote(str(v), safe='/')}" for k, v in query.items() if v)
        where = ALIAS if alias else f"{self.user}@127.0.0.1:{self.port}"
        return f"ssh://{where}?{q}"

    def agent_processes(self, command: str = "") -> list[int]:
        """Processes whose working folder is the device's cache folder (the agent, its sh, children),
        optionally only those whose command line contains `command` (e.g. "serve")."""
        found = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    if os.readlink(entry / "cwd") == str(self.cache_dir):
                        if command in (entry / "cmdline").read_bytes().decode(errors="replace"):
                            found.append(int(entry.name))
                except OSError:
                    continue
        return found

    def wait_no_agents(self, seconds: float = 10.0) -> list[int]:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            left = self.agent_processes()
            if not left:
                return []
            time.sleep(0.2)
        return self.agent_processes()

    def stop(self) -> None:
        self.stop_clients()
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)

    def stop_clients(self) -> None:
        """ssh clients of this device still running here (a master connection whose edgeattn was
        killed on purpose lingers for its ControlPersist time): found by this device's own ssh
        config path, stopped, and their control folders removed."""
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                argv = (entry / "cmdline").read_bytes().decode(errors="replace").split("\0")
            except OSError:
                continue
            if argv and argv[0].endswith("ssh") and str(self.ssh_config) in argv:
                control = [a.split("=", 1)[1] for a in argv if a.startswith("ControlPath=")]
                try:
                    os.kill(int(entry.name), 15)
                except OSError:
                    continue
                for path in control:
                    shutil.rmtree(Path(path).parent, ignore_errors=True)


def start_sshd(root: Path, python: str) -> LoopbackDevice:
    """sshd on 127.0.0.1:<free port> (never another address) that lets this user in with a fresh key."""
    root.mkdir(parents=True, exist_ok=True)
    host_key, client_key = root / "host_key", root / "client_key"
    _keygen(host_key)
    _keygen(client_key)
    authorized = root / "authorized_keys"
    authorized.write_text(client_key.with_suffix(".pub").read_text())
    if os.geteuid() == 0:
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege separation folder
    cache_dir = root / "device-cache"
    user = getpass.getuser()
    log = root / "sshd.log"
    for _ in range(START_TRIES):
        port = _free_port()
        config = root / "sshd_config"
        config.write_text(
            f"Port {port}\nListenAddress 127.0.0.1\nHostKey {host_key}\nPidFile {root / 'sshd.pid'}\n"
            f"AuthorizedKeysFile {authorized}\nPubkeyAuthentication yes\nPasswordAuthentication no\n"
            "KbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\nUsePAM no\nStrictModes no\n"
            f"AllowUsers {user}\nX11Forwarding no\nAllowTcpForwarding no\nAllowAgentForwarding no\n"
            "MaxSessions 64\nMaxStartups 64\nLogLevel VERBOSE\n"
        )
        proc = subprocess.Popen([SSHD, "-D", "-f", str(config), "-E", str(log)], stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline and proc.poll() is None and not _accepts(port):
            time.sleep(0.1)
        if proc.poll() is None and _accepts(port):
            break
        proc.kill()
        proc.wait()
    else:
        raise RuntimeError(
            f"sshd did not start on 127.0.0.1 ({log.read_text()[-500:] if log.exists() else 'no log'})"
        )
    known_hosts = root / "known_hosts"
    known_hosts.write_text(f"[127.0.0.1]:{port} {host_key.with_suffix('.pub').read_text()}")
    ssh_config = root / "ssh_config"
    common = (
        f"  HostName 127.0.0.1\n  Port {port}\n  User {user}\n  IdentityFile {client_key}\n  IdentitiesOnly yes\n"
        f"  UserKnownHostsFile {known_hosts}\n  GlobalKnownHostsFile /dev/null\n  StrictHostKeyChecking yes\n"
    )
    ssh_config.write_text(f"Host {ALIAS}\n{common}\nHost 127.0.0.1\n{common}")
    return LoopbackDevice(
        root, port, ssh_config, known_hosts, client_key, host_key, python, cache_dir, log, proc
    )


def _base_python() -> str:
    """An interpreter other than the test's own when there is one (the device's system Python)."""
    for candidate in ("/usr/bin/python3", sys.executable):
        if candidate and os.access(candidate, os.X_OK):
            probe = subprocess.run([candidate, "-m", "venv", "--help"], capture_output=True)
            if probe.returncode == 0:
                return candidate
    raise RuntimeError("no Python here can make a venv")


def device_python(onnxruntime: bool = True) -> str:
    """A venv with numpy and this host's onnxruntime version only (or numpy alone); built once, then
    reused."""
    import importlib.metadata as md

    from filelock import FileLock

    ort = md.version("onnxruntime")
    base = _base_python()
    version = subprocess.run([base, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                             capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    packages = ["numpy", f"onnxruntime=={ort}"] if onnxruntime else ["numpy"]
    venv = CACHE / (
        f"device-venv-py{version}-ort{ort}" if onnxruntime else f"device-venv-py{version}-numpy-only"
    )
    CACHE.mkdir(parents=True, exist_ok=True)
    with FileLock(str(venv) + ".lock"):
        done = venv / ".complete"
        if not done.exists():
            shutil.rmtree(venv, ignore_errors=True)
            subprocess.run([base, "-m", "venv", str(venv)], check=True, capture_output=True)
            pip = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                                  *packages], capture_output=True, text=True)  # fmt: skip
            if pip.returncode:
                raise RuntimeError(f"pip install {' '.join(packages)} failed: {pip.stderr.strip()[-400:]}")
            done.write_text("ok\n")
    return str(venv / "bin" / "python")


def without_numpy_python(root: Path) -> str:
    """A bare venv of the device's Python: the device has Python but not numpy."""
    venv = root / "bare-venv"
    if not venv.exists():
        subprocess.run(
            [_base_python(), "-m", "venv", "--without-pip", str(venv)], check=True, capture_output=True
        )
    return str(venv / "bin" / "python")


def memory_cgroup() -> Path | None:
    """This process's own cgroup-v1 memory folder when it can hold a child group, else None."""
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        parts = line.split(":", 2)
        if len(parts) == 3 and "memory" in parts[1].split(","):
            folder = Path("/sys/fs/cgroup/memory") / parts[2].lstrip("/")
            if (folder / "memory.limit_in_bytes").exists() and os.access(folder, os.W_OK):
                return folder
    return None


def memory_limited_python(root: Path, python: str, limit_mb: int) -> tuple[str, Path] | None:
    """A device 'python' that first moves itself into a child memory cgroup of this test's own group
    (limit `limit_mb`, no swap), so the kernel's OOM killer really kills the agent. None where cgroup
    v1 memory limits cannot be set here."""
    parent = memory_cgroup()
    if parent is None:
        return None
    group = parent / f"edgeattn-oom-{os.getpid()}"
    try:
        group.mkdir(exist_ok=True)
        (group / "memory.limit_in_bytes").write_text(str(limit_mb << 20))
        swap = group / "memory.memsw.limit_in_bytes"
        if swap.exists():
            swap.write_text(str(limit_mb << 20))
    except OSError:
        return None
    wrapper = root / "python-oom"
    wrapper.write_text(f'#!/bin/sh\necho $$ > {group / "cgroup.procs"}\nexec {python} "$@"\n')
    wrapper.chmod(0o755)
    return str(wrapper), group


def remove_cgroup(group: Path) -> None:
    for _ in range(50):
        try:
            group.rmdir()
            return
        except OSError:
            time.sleep(0.1)
