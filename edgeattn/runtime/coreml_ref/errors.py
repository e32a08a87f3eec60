"""Errors of the reference executor: each names the op (type and name) it concerns."""

from __future__ import annotations

from edgeattn.errors import InputError


class ProgramError(InputError):
    """The .mlpackage cannot be read or run as an ML Program by the reference executor."""


class UnsupportedOpError(ProgramError):
    """The program uses a MIL op (or a form of one) the reference executor does not implement.

    Raised when the program is loaded, before any input runs: an op is never skipped silently.
    """

    def __init__(self, op_type: str, op_name: str = "", detail: str = "") -> None:
        self.op_type = op_type
        where = f" (op {op_name!r})" if op_name else ""
        extra = f": {detail}" if detail else ""
        super().__init__(
            f"Core ML op {op_type!r}{where} is not implemented by the Core ML reference executor{extra}",
            "run this model with Core ML on macOS, or add the op to edgeattn/runtime/coreml_ref/ops",
        )
