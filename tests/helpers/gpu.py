"""Where TensorRT and a CUDA GPU are (or must be): the gate every `gpu`-marked test goes through.

Without them a gpu test skips with the reason; with EDGEATTN_REQUIRE_GPU=1 (CI on a GPU runner, or
the device checks) it fails instead, so a broken driver or cuda-python never passes as "skipped".
A CUDA failure on a machine with a driver is never a skip: it raises CudaError.
"""

from __future__ import annotations

import os

import pytest

REQUIRE_ENV = "EDGEATTN_REQUIRE_GPU"


def tensorrt_gpu_reason() -> str | None:
    """None when TensorRT and a CUDA GPU are both present, else why not."""
    from edgeattn.errors import UnavailableError
    from edgeattn.runtime.trt_runner import require_tensorrt_gpu

    try:
        require_tensorrt_gpu()
    except UnavailableError as exc:
        return exc.problem
    return None


def require_tensorrt_gpu() -> None:
    """Skip (or, with EDGEATTN_REQUIRE_GPU=1, fail) unless TensorRT and a CUDA GPU are present."""
    reason = tensorrt_gpu_reason()
    if reason is None:
        return
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(f"{REQUIRE_ENV}=1 but TensorRT/GPU are missing: {reason}", pytrace=False)
    pytest.skip(f"needs TensorRT and a CUDA GPU: {reason}")
