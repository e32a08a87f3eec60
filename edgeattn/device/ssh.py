"""`ssh://` devices through the system OpenSSH client, so `~/.ssh/config`, agents, keys and jump hosts
work as they do for the user's own `ssh`.

One master connection per device (ControlMaster, started with `-f -N` so no pipe is held by the
backgrounded master) carries every later command at about 0.3 s each; `close` stops it. Batch mode:
ssh never prompts, so a missing key or an unknown host key is an error with its fix, not a hang.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from edgeattn.device.transport import TRANSPORTS, Transport, q
from edgeattn.errors import DeviceError

CONNECT_TIMEOUT_S = 15
PERSIST_S = 600  # the master outlives an edgeattn that died without closing it by at most this


# (what ssh writes, kind): the first match explains an exit 255.
SSH_MESSAGES = (
    ("REMOTE HOST IDENTIFICATION HAS CHANGED", "changed_key"),
    ("Host key verification failed", "unknown_key"),
    ("No ED25519 host key is known", "unknown_key"),
    ("Permission denied", "auth"),
    ("Too many authentication failures", "auth"),
    ("Could not resolve hostname", "resolve"),
    ("Connection refused", "unreachable"),
    ("Connection timed out", "unreachable"),
    ("Operation timed out", "unreachable"),
    ("No route to host", "unreachable"),
    ("Network is unreachable", "unreachable"),
    ("kex_exchange_identification", "unreachable"),
    ("Connection closed by", "unreachable"),
    ("Bad configuration option", "config"),
    ("Can't open user config file", "config"),
    ("Unsupported option", "config"),
    ("Bad owner or permissions", "config"),
)


class SshTransport(Transport):
    scheme = "ssh"

    def __init__(self, url, config) -> None:
        super().__init__(url, config)
        self.ssh_config = config.ssh_config_file()
        self.control_dir: Path | None = None
        self.master = False

    # ------------------------------------------------------------------------------- commands
    def base(self) -> list[str]:
        ssh = shutil.which("ssh")
        if ssh is None:
            raise DeviceError(
                "the ssh client is not installed on this machine",
                "install OpenSSH (Debian/Ubuntu: apt-get install openssh-client)",
            )
        args = [ssh]
        if self.ssh_config is not None:
            args += ["-F", str(self.ssh_config)]
        if self.url.port:
            args += ["-p", str(self.url.port)]
        if self.url.user:
            args += ["-l", self.url.user]
        args += ["-o", "BatchMode=yes", "-o", f"ConnectTimeout={CONNECT_TIMEOUT_S}"]
        args += ["-o", "ServerAliveInterval=15", "-o", "ServerAliveCountMax=4"]
        if self.control_dir is not None:
            args += ["-o", f"ControlPath={self.control_dir}/%C"]
        return args

    def argv(self, script: str) -> list[str]:
        return [*self.base(), "-T", "-o", "ControlMaster=no", "--", self.url.host, f"sh -c {q(script)}"]

    def connect(self) -> None:
        """Start the shared master connection (authentication happens here, once)."""
        if self.master:
            return
        self.control_dir = Path(tempfile.mkdtemp(prefix="edgeattn-ssh-"))
        argv = [*self.base(), "-o", "ControlMaster=yes", "-o", f"ControlPersist={PERSIST_S}", "-f", "-N",
                "--", self.url.host]  # fmt: skip
        with tempfile.TemporaryFile() as err:
            try:
                proc = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err,
                                      timeout=CONNECT_TIMEOUT_S * 4)  # fmt: skip
            except subprocess.TimeoutExpired:
                self.close()
                raise DeviceError(
                    f"cannot reach {self.url.host}: no ssh connection within {CONNECT_TIMEOUT_S * 4} s",
                    "check that the device is on and the host/port are right (ssh -v HOST)",
                ) from None
            err.seek(0)
            stderr = err.read().decode(errors="replace")
        if proc.returncode != 0:
            self.close()
            raise self.explain(proc.returncode, stderr) or DeviceError(
                f"ssh to {self.url.host} failed (exit {proc.returncode}): {_last(stderr)}",
                "try `ssh -v` with the same host to see why",
            )
        self.master = True

    def close(self) -> None:
        if self.master and self.control_dir is not None:
            try:
                subprocess.run([*self.base(), "-O", "exit", "--", self.url.host], stdin=subprocess.DEVNULL,
                               capture_output=True, timeout=30)  # fmt: skip
            except (subprocess.SubprocessError, OSError, DeviceError):
                pass
        self.master = False
        if self.control_dir is not None:
            shutil.rmtree(self.control_dir, ignore_errors=True)
            self.control_dir = None

    # -------------------------------------------------------------------------------- failures
    def explain(self, returncode: int, stderr: str) -> DeviceError | None:
        if returncode != 255:
            return None
        kind = next((k for text, k in SSH_MESSAGES if text in stderr), None)
        host, where = self.url.host, (f" (ssh config {self.ssh_config})" if self.ssh_config else "")
        line = _last(stderr)
        if kind == "changed_key":
            return DeviceError(
                f"the host key of {host} changed since it was last trusted — a reinstalled device, or someone in between",
                f"if the device was reinstalled, remove the old key (ssh-keygen -R {host}, or from the known_hosts your ssh config names) and connect once with ssh to accept the new one",
            )
        if kind == "unknown_key":
            return DeviceError(
                f"{host}'s host key is not known here{where}, and edgeattn does not accept unknown keys",
                f"connect once with `ssh {host}` and check the fingerprint, or add it to known_hosts (CI: ssh-keyscan {host} >> known_hosts)",
            )
        if kind == "auth":
            return DeviceError(
                f"{host} refused the login ({line}){where}",
                "set up key login (ssh-copy-id USER@HOST) or name the key with IdentityFile in --ssh-config; edgeattn never asks for passwords",
            )
        if kind == "resolve":
            return DeviceError(
                f"cannot resolve the device's host name {host!r}", "check the name or give its IP address"
            )
        if kind == "unreachable":
            return DeviceError(
                f"cannot reach {host}{f' port {self.url.port}' if self.url.port else ''} ({line})",
                "check that the device is on, sshd runs there and the host/port are right (ssh -v HOST)",
            )
        if kind == "config":
            return DeviceError(f"ssh refused its configuration{where}: {line}", "fix the ssh config file")
        if "Control" in stderr and "mux" in stderr.lower():
            return DeviceError(f"the ssh connection to {host} broke ({line})", "rerun; check the network")
        return DeviceError(f"ssh to {host} failed ({line})", "try `ssh -v` with the same host to see why")


def _last(stderr: str) -> str:
    lines = [
        ln.strip()
        for ln in stderr.strip().splitlines()
        if ln.strip() and not ln.startswith("Warning: Permanently")
    ]
    return lines[-1][:300] if lines else "no message"


TRANSPORTS.register("ssh", SshTransport)
