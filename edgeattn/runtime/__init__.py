"""Runners: one per artifact kind, one interface (preprocessed NCHW float32 in, logits out).

`open_runner(path)` picks the runner from the artifact kind (checkpoint, .onnx, engine, .mlpackage).
The registry (`base.py`) imports no runner; this package imports each runner module, which registers
its `Runner` subclass in `RUNNERS` and imports its heavy runtime lazily, so a runtime that is not
installed fails with a clear `UnavailableError` only when used.
"""

from edgeattn.runtime import (  # noqa: F401  (registration)
    coreml_runner,
    ort_runner,
    ortweb_runner,
    torch_runner,
    trt_runner,
)
from edgeattn.runtime.base import RUNNERS, Runner, artifact_kind, open_runner, suffix_kinds

__all__ = ["RUNNERS", "Runner", "artifact_kind", "open_runner", "suffix_kinds"]
