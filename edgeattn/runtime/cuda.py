"""CUDA through cuda-python: the runtime module, calls that raise with the CUDA error, GPUs and their facts.

A failing CUDA call must not read as "no GPU": a cuda-python built for a newer CUDA than the driver
(`cudaErrorInsufficientDriver`, e.g. cuda-python 13 on a CUDA 12 driver) would otherwise make every GPU
test skip instead of fail. Only two answers mean "no GPU here": no device (`cudaErrorNoDevice`), or no
NVIDIA driver library at all; every other error raises `CudaError` naming the error and the fix.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from typing import Any

from edgeattn.errors import InputError, UnavailableError

INSTALL_HINT = (
    "on a machine with an NVIDIA GPU and driver: pip install 'edgeattn[tensorrt]' (CUDA 13 driver) or "
    "'edgeattn[tensorrt-cu12]' (CUDA 12); on JetPack 6 the system TensorRT + 'edgeattn[jetpack6]' (README: TensorRT)"
)
NO_DEVICE = 100  # cudaErrorNoDevice
DRIVER_LIBRARIES = ("libcuda.so.1", "libcuda.so", "nvcuda.dll")


class CudaError(InputError):
    """A CUDA call failed on a machine that has a driver (exit 2): the message names the CUDA error."""


def import_cudart() -> Any:
    """cuda-python's runtime API (`cuda.bindings.runtime` in cuda-python >= 12.6, `cuda.cudart` before)."""
    try:
        from cuda.bindings import runtime as cudart  # type: ignore[import-not-found]
    except ImportError:
        try:
            from cuda import cudart  # type: ignore[import-not-found,no-redef]
        except ImportError:
            raise UnavailableError(
                "cuda-python is not installed here (needed to move data to the GPU)", INSTALL_HINT
            ) from None
    return cudart


def error_code(err: Any) -> int:
    return int(getattr(err, "value", err))


def describe(cudart: Any, err: Any) -> str:
    """'cudaErrorInsufficientDriver (35): CUDA driver version is insufficient ...'."""
    code = error_code(err)
    try:
        name = cudart.cudaGetErrorName(err)[1]
        text = cudart.cudaGetErrorString(err)[1]
        name = name.decode() if isinstance(name, bytes) else str(name)
        text = text.decode() if isinstance(text, bytes) else str(text)
        return f"{name} ({code}): {text}"
    except Exception:  # noqa: BLE001  an error while describing an error: keep the code
        return f"CUDA error {code}"


def driver_cuda_version() -> str | None:
    """The CUDA version the installed NVIDIA driver supports ('12.4'), or None without a driver."""
    for name in DRIVER_LIBRARIES:
        try:
            lib = ctypes.CDLL(name)
        except OSError:
            continue
        version = ctypes.c_int(0)
        if lib.cuDriverGetVersion(ctypes.byref(version)) == 0 and version.value:
            return f"{version.value // 1000}.{version.value % 1000 // 10}"
        return "unknown"
    return None


def cuda_call(result: Any, cudart: Any | None = None) -> Any:
    """cuda-python returns (error, value...): raise `CudaError` on error, else return the value(s)."""
    err, rest = result[0], result[1:]
    if error_code(err) != 0:
        cudart = cudart or import_cudart()
        raise CudaError(f"CUDA call failed: {describe(cudart, err)}", _fix_for(cudart, err))
    return rest[0] if len(rest) == 1 else (rest or None)


def _fix_for(cudart: Any, err: Any) -> str:
    driver = driver_cuda_version()
    try:
        runtime = cuda_version_text(cudart.cudaRuntimeGetVersion()[1])
    except Exception:  # noqa: BLE001
        runtime = "unknown"
    if error_code(err) == 35 and driver and driver.split(".")[0].isdigit():  # cudaErrorInsufficientDriver
        major = int(driver.split(".")[0])
        return (
            f"this driver supports CUDA {driver} but cuda-python is built for CUDA {runtime}: "
            f"pip install 'cuda-python>={major},<{major + 1}' (or update the driver)"
        )
    return (
        f"check the GPU and driver (nvidia-smi); driver CUDA {driver or 'none'}, cuda-python CUDA {runtime}"
    )


def cuda_version_text(value: int) -> str:
    return f"{int(value) // 1000}.{int(value) % 1000 // 10}"


def gpu_count() -> int:
    """Visible CUDA GPUs: 0 when there is no driver or no device; any other CUDA failure raises."""
    try:
        cudart = import_cudart()
    except UnavailableError:
        try:
            import torch

            return torch.cuda.device_count() if torch.cuda.is_available() else 0
        except Exception:  # noqa: BLE001
            return 0
    err, count = cudart.cudaGetDeviceCount()
    code = error_code(err)
    if code == 0:
        return int(count)
    if code == NO_DEVICE or driver_cuda_version() is None:
        return 0
    raise CudaError(f"cannot count CUDA GPUs: {describe(cudart, err)}", _fix_for(cudart, err))


def device_facts(device: int = 0) -> dict[str, Any]:
    """Name and compute capability of one GPU (what an engine is tied to)."""
    cudart = import_cudart()
    props = cuda_call(cudart.cudaGetDeviceProperties(int(device)), cudart)
    name = props.name
    name = name.decode(errors="replace").rstrip("\x00") if isinstance(name, bytes) else str(name)
    return {"device": name, "compute_capability": f"{int(props.major)}.{int(props.minor)}"}
