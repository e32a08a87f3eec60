"""The two ways a command can fail on purpose, mapped by the CLI to exit codes.

`InputError` (exit 2): the user handed us something we cannot use; the message names the problem and
the fix (`DeviceError`: the device named by `--device` cannot do the work). `GateFailure` (exit 1): the work ran, but a check the user asked for did not hold.
"""

from __future__ import annotations


class EdgeAttnError(Exception):
    """Base class of the errors edgeattn raises on purpose."""

    exit_code = 2

    def __init__(self, problem: str, fix: str | None = None) -> None:
        self.problem = problem
        self.fix = fix
        super().__init__(self.one_line())

    def one_line(self) -> str:
        return f"{self.problem} — {self.fix}" if self.fix else self.problem


class InputError(EdgeAttnError):
    """Bad input or usage: a file, flag, data set or recipe we cannot use (exit 2)."""

    exit_code = 2


class UnavailableError(InputError):
    """A backend this machine lacks (TensorRT without a GPU, Core ML predictions off macOS)."""


class DeviceError(InputError):
    """A device could not do what was asked: unreachable, refused login, changed host key, no Python or
    runtime there, killed (out of memory), timed out (exit 2, like any input the user must fix)."""


class GateFailure(EdgeAttnError):
    """A gate or check the user asked for failed (exit 1)."""

    exit_code = 1
