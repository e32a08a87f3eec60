"""Accuracy-drift validation of exported artifacts against their FP32 reference, with CI gates.

`validate_artifact` (behind `edgeattn validate`) runs an artifact on its own runtime and the reference
checkpoint in torch on the same images, measures drift (`metrics`), checks thresholds (`gates`) and
writes JSON / Markdown / JUnit reports (`reports`). `layerwise` finds which layers of an INT8 QDQ ONNX
add the drift and can keep them in FP32; `compare_artifacts` puts several artifacts in one table.
"""

from edgeattn.validate.compare import CompareReport, compare_artifacts
from edgeattn.validate.core import ValidationReport, validate_artifact
from edgeattn.validate.gates import GATES, GateResult, Gates, check_gates
from edgeattn.validate.metrics import DriftMetrics, drift_metrics

__all__ = [
    "GATES",
    "CompareReport",
    "DriftMetrics",
    "GateResult",
    "Gates",
    "ValidationReport",
    "check_gates",
    "compare_artifacts",
    "drift_metrics",
    "validate_artifact",
]
