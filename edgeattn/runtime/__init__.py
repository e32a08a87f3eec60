"""Runners: one per artifact kind, one interface (preprocessed NCHW float32 in, logits out).

`open_runner(path)` picks the runner from the artifact kind (checkpoint, .onnx, engine, .mlpackage).
Each backend module registers itself in `RUNNERS` and imports its heavy runtime lazily, so a runner for
a runtime that is not installed fails with a clear `UnavailableError` only when used.
"""

from edgeattn.runtime.base import RUNNERS, Runner, artifact_kind, open_runner

__all__ = ["RUNNERS", "Runner", "artifact_kind", "open_runner"]
