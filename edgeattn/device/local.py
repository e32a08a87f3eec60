"""`local`: this machine as a device — the same agent and scripts as a remote device, no network.

`edgeattn device check local` uses it, and `local?python=/other/venv/bin/python` runs artifacts in
another interpreter of this machine through the agent (plain `local` keeps edgeattn's in-process
runners).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from edgeattn.device.transport import TRANSPORTS, Transport


class LocalTransport(Transport):
    scheme = "local"
    default_python = sys.executable
    home_dir = str(Path.home())

    def argv(self, script: str) -> list[str]:
        return ["sh", "-c", script]

    def kill_group(self, pgid: int | None, pid: int) -> None:
        try:
            if pgid:
                os.killpg(int(pgid), 9)
            else:
                os.kill(int(pid), 9)
        except (ProcessLookupError, PermissionError):
            pass


TRANSPORTS.register("local", LocalTransport)
