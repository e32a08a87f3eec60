"""The transport interface and its registry (`TRANSPORTS`, keyed by URL scheme).

A transport knows one thing: how to run a POSIX `sh` script on the device with pipes to it, and why
such a run failed when the failure is its own (a refused login is ssh's, not the agent's). Files
move through the same pipes (`cat`), so a transport is one small module: `local` (this machine),
`ssh` (system OpenSSH with connection sharing), and `adb://SERIAL` could follow the same way.
"""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path
from typing import IO, TYPE_CHECKING, ClassVar

from edgeattn.errors import DeviceError
from edgeattn.registry import Registry

if TYPE_CHECKING:
    from edgeattn.device.config import DeviceConfig
    from edgeattn.device.url import DeviceURL

q = shlex.quote


class Transport:
    """Runs `sh -c SCRIPT` on one device. Subclasses set `scheme` and implement `argv`."""

    scheme: ClassVar[str] = ""
    default_python: ClassVar[str] = "python3"
    home_dir: ClassVar[str | None] = None  # working folder of scripts (None: the login's home)

    def __init__(self, url: DeviceURL, config: DeviceConfig) -> None:
        self.url = url
        self.config = config

    @property
    def name(self) -> str:
        return self.url.name

    def connect(self) -> None:
        """Open the connection the scripts share (raise DeviceError when the device cannot be reached)."""

    def argv(self, script: str) -> list[str]:
        """The local command that runs `script` with sh on the device."""
        raise NotImplementedError

    def explain(self, returncode: int, stderr: str) -> DeviceError | None:
        """The transport's own failure behind `returncode`/`stderr` (unreachable, refused, ...), or None."""
        return None

    def popen(self, script: str, stdin: int | IO[bytes] | None = subprocess.PIPE) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            self.argv(script),
            stdin=stdin,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=self.home_dir,
            start_new_session=True,  # a Ctrl-C here reaches edgeattn, which then stops the device job
        )

    def run(
        self,
        script: str,
        *,
        timeout: float,
        what: str,
        stdin: IO[bytes] | None = None,
        stdout: IO[bytes] | None = None,
    ) -> subprocess.CompletedProcess[bytes]:
        """Run `script` to completion; transport failures and timeouts raise DeviceError."""
        proc = subprocess.Popen(
            self.argv(script),
            stdin=stdin if stdin is not None else subprocess.DEVNULL,
            stdout=stdout if stdout is not None else subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=self.home_dir,
            start_new_session=True,
        )
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            raise DeviceError(
                f"{what} on {self.name} took longer than {timeout:.0f} s",
                "check that the device responds (it may be overloaded or the network slow)",
            ) from None
        stderr = (err or b"").decode(errors="replace")
        failure = self.explain(proc.returncode, stderr) if proc.returncode else None
        if failure is not None:
            raise failure
        return subprocess.CompletedProcess(proc.args, proc.returncode, out or b"", err or b"")

    def put(self, local: Path, remote: str, *, timeout: float) -> None:
        """Copy `local` to `remote` on the device, atomically (a partial copy never has the final name)."""
        parent = remote.rsplit("/", 1)[0] if "/" in remote else "."
        script = f"mkdir -p {q(parent)} && cat > {q(remote)}.part.$$ && mv -f {q(remote)}.part.$$ {q(remote)}"
        with open(local, "rb") as fh:
            proc = self.run(script, timeout=timeout, what=f"copying {Path(local).name}", stdin=fh)
        if proc.returncode:
            raise DeviceError(
                f"copying {Path(local).name} to {self.name}:{remote} failed (exit {proc.returncode}: {last_line(proc.stderr)})",
                "check free space and permissions there (or choose another ?dir= in the device URL)",
            )

    def get(self, remote: str, local: Path, *, timeout: float) -> None:
        """Copy `remote` on the device to `local` (the caller writes it atomically)."""
        with open(local, "wb") as fh:
            proc = self.run(f"cat {q(remote)}", timeout=timeout, what=f"fetching {remote}", stdout=fh)
        if proc.returncode:
            raise DeviceError(
                f"fetching {self.name}:{remote} failed (exit {proc.returncode}: {last_line(proc.stderr)})",
                "check that the file exists there",
            )

    def kill_group(self, pgid: int | None, pid: int) -> None:
        """Kill a job's whole process group on the device (or its one process when the group is shared)."""
        # `kill -9 -PGID`: the form every sh has (dash's kill takes no `--`)
        script = (
            f"kill -9 -{int(pgid)} 2>/dev/null || kill -9 {int(pid)} 2>/dev/null; true"
            if pgid
            else f"kill -9 {int(pid)} 2>/dev/null; true"
        )
        try:
            self.run(script, timeout=30, what="stopping the job")
        except DeviceError:
            pass  # unreachable now: the agent's own watchdog stops the job

    def close(self) -> None:
        """Release the shared connection (nothing of ours may keep running, here or there)."""


TRANSPORTS: Registry[type[Transport]] = Registry("device transport")


def last_line(data: bytes | str | None) -> str:
    text = data.decode(errors="replace") if isinstance(data, bytes) else (data or "")
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1][:300] if lines else "no message"
