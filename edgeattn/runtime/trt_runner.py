"""Runs a serialized TensorRT engine on a CUDA GPU (TensorRT 10 API, cuda-python, pinned buffers).

Follows NVIDIA's Python samples (`samples/python/common_runtime.py`): `trt.Runtime` deserializes the
plan, `IExecutionContext.set_input_shape` / `set_tensor_address` / `execute_async_v3` run it on one CUDA
stream, and host<->device copies go through page-locked (pinned) host buffers with `cudaMemcpyAsync`.
Where `tensorrt`, `cuda-python` or a GPU is missing, opening a runner raises `UnavailableError` saying
which, and how to install the extra.
"""

from __future__ import annotations

import ctypes
from pathlib import Path
from typing import Any

import numpy as np

from edgeattn.errors import GateFailure, InputError, UnavailableError
from edgeattn.manifest import read_manifest
from edgeattn.runtime.base import RUNNERS, Runner

INSTALL_HINT = "on a machine with an NVIDIA GPU and driver: pip install 'edgeattn[tensorrt]'"


def import_tensorrt() -> Any:
    """The `tensorrt` module, or UnavailableError (the PyPI stub wheels raise on import without the
    real libraries, so any import failure counts as 'not installed')."""
    try:
        import tensorrt as trt  # type: ignore[import-not-found]
    except Exception as exc:  # noqa: BLE001  ImportError, OSError (missing .so), RuntimeError (stub wheel)
        detail = str(exc).strip().splitlines()[0][:120] if str(exc).strip() else type(exc).__name__
        raise UnavailableError(
            f"TensorRT is not installed here (import tensorrt: {detail})", INSTALL_HINT
        ) from None
    return trt


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


def cuda_call(result: Any) -> Any:
    """cuda-python returns (error, value...): raise on error, return the value(s)."""
    err, rest = result[0], result[1:]
    if int(getattr(err, "value", err)) != 0:
        raise RuntimeError(f"CUDA error {int(err)} ({err})")
    return rest[0] if len(rest) == 1 else (rest or None)


def gpu_count() -> int:
    """Number of visible CUDA GPUs (cuda-python, else torch; 0 when neither can tell)."""
    try:
        cudart = import_cudart()
        err, count = cudart.cudaGetDeviceCount()
        return int(count) if int(getattr(err, "value", err)) == 0 else 0
    except UnavailableError:
        pass
    try:
        import torch

        return torch.cuda.device_count() if torch.cuda.is_available() else 0
    except Exception:  # noqa: BLE001
        return 0


def require_tensorrt_gpu() -> Any:
    """The `tensorrt` module when TensorRT and a CUDA GPU are both present, else UnavailableError."""
    trt = import_tensorrt()
    if gpu_count() < 1:
        raise UnavailableError(
            "no CUDA GPU is visible on this machine (TensorRT builds and runs engines only on a GPU)",
            INSTALL_HINT,
        )
    return trt


def tensorrt_major(trt: Any) -> int:
    return int(str(trt.__version__).split(".")[0])


class _PinnedBuffer:
    """A page-locked host array and a device allocation of the same size (freed on close)."""

    def __init__(self, cudart: Any, count: int, dtype: np.dtype) -> None:
        self.cudart = cudart
        self.dtype = np.dtype(dtype)
        self.nbytes = int(count) * self.dtype.itemsize
        self.host_ptr = cuda_call(cudart.cudaMallocHost(self.nbytes))
        self.device_ptr = cuda_call(cudart.cudaMalloc(self.nbytes))
        ctype = ctypes.POINTER(np.ctypeslib.as_ctypes_type(self.dtype))
        self.host = np.ctypeslib.as_array(ctypes.cast(self.host_ptr, ctype), (int(count),))

    def close(self) -> None:
        if self.device_ptr is not None:
            self.cudart.cudaFree(self.device_ptr)
            self.device_ptr = None
        if self.host_ptr is not None:
            self.cudart.cudaFreeHost(self.host_ptr)
            self.host_ptr = None


class TensorRTRunner(Runner):
    kind = "tensorrt"
    suffixes = (".engine", ".plan")

    @classmethod
    def unavailable_reason(cls) -> str | None:
        import importlib.util

        if importlib.util.find_spec("tensorrt") is None:
            return "TensorRT is not installed here (it needs an NVIDIA GPU machine: pip install 'edgeattn[tensorrt]')"
        try:
            import torch

            if not torch.cuda.is_available():
                return "no CUDA GPU here: a TensorRT engine can only be timed on the GPU it was built for"
        except ImportError:  # pragma: no cover
            pass
        return None

    def __init__(self, path: Path, device: int = 0, **_: object) -> None:
        self.manifest = read_manifest(path)
        trt = require_tensorrt_gpu()
        cudart = import_cudart()
        self.trt, self.cudart = trt, cudart
        cuda_call(cudart.cudaSetDevice(int(device)))
        self.input_spec = self.manifest.spec
        self.num_classes = self.manifest.num_classes
        self.precision = self.manifest.precision
        self.image_input = self.manifest.image_input
        self.logger = trt.Logger(trt.Logger.WARNING)
        self.runtime_obj = trt.Runtime(self.logger)
        self.engine = self.runtime_obj.deserialize_cuda_engine(Path(path).read_bytes())
        if self.engine is None:
            raise InputError(
                f"TensorRT {trt.__version__} cannot deserialize {path}",
                "engines are tied to the TensorRT version and GPU that built them: rebuild it here from its .onnx",
            )
        self.context = self.engine.create_execution_context()
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        inputs = [n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        outputs = [n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT]
        if len(inputs) != 1 or len(outputs) != 1:
            raise InputError(
                f"{path} has {len(inputs)} inputs and {len(outputs)} outputs",
                "export a single-input classifier engine",
            )
        self.input_name, self.output_name = inputs[0], outputs[0]
        shape = tuple(self.engine.get_tensor_shape(self.input_name))
        if shape[0] == -1:  # dynamic batch: the optimization profile bounds it
            lo, _, hi = (tuple(s) for s in self.engine.get_tensor_profile_shape(self.input_name, 0))
            self.min_batch, self.max_batch = int(lo[0]), int(hi[0])
        else:
            self.min_batch = self.max_batch = int(shape[0])
        self.sample_shape = tuple(int(d) for d in shape[1:])
        self.in_dtype = np.dtype(trt.nptype(self.engine.get_tensor_dtype(self.input_name)))
        self.out_dtype = np.dtype(trt.nptype(self.engine.get_tensor_dtype(self.output_name)))
        self.stream = cuda_call(cudart.cudaStreamCreate())
        self.inp = _PinnedBuffer(cudart, self.max_batch * int(np.prod(self.sample_shape)), self.in_dtype)
        self.out = _PinnedBuffer(cudart, self.max_batch * self.num_classes, self.out_dtype)
        self.context.set_tensor_address(self.input_name, int(self.inp.device_ptr))
        self.context.set_tensor_address(self.output_name, int(self.out.device_ptr))
        name = cuda_call(cudart.cudaGetDeviceProperties(int(device))).name
        name = name.decode(errors="replace").rstrip("\x00") if isinstance(name, bytes) else str(name)
        self.runtime = f"TensorRT {trt.__version__} ({name})"

    def run(self, x: np.ndarray) -> np.ndarray:
        n = len(x)
        if n > self.max_batch:
            raise InputError(
                f"batch {n} exceeds this engine's maximum {self.max_batch}", "run smaller batches"
            )
        if n < self.min_batch:  # pad up to the profile's minimum
            x = np.concatenate([x, np.repeat(x[-1:], self.min_batch - n, axis=0)])
        batch = len(x)
        data = np.ascontiguousarray(x, dtype=self.in_dtype).reshape(-1)
        self.inp.host[: data.size] = data
        if not self.context.set_input_shape(self.input_name, (batch, *self.sample_shape)):
            raise InputError(
                f"the engine rejects input shape {(batch, *self.sample_shape)}",
                "check the batch range in its manifest",
            )
        cudart = self.cudart
        h2d, d2h = cudart.cudaMemcpyKind.cudaMemcpyHostToDevice, cudart.cudaMemcpyKind.cudaMemcpyDeviceToHost
        cuda_call(
            cudart.cudaMemcpyAsync(self.inp.device_ptr, self.inp.host_ptr, data.nbytes, h2d, self.stream)
        )
        if not self.context.execute_async_v3(self.stream):
            raise GateFailure("TensorRT failed to execute the engine", "see the TensorRT log above")
        out_count = batch * self.num_classes
        cuda_call(
            cudart.cudaMemcpyAsync(
                self.out.host_ptr, self.out.device_ptr, out_count * self.out_dtype.itemsize, d2h, self.stream
            )
        )
        cuda_call(cudart.cudaStreamSynchronize(self.stream))
        return self.out.host[:out_count].reshape(batch, self.num_classes)[:n].astype(np.float32, copy=True)

    def close(self) -> None:
        for buf in (getattr(self, "inp", None), getattr(self, "out", None)):
            if buf is not None:
                buf.close()
        if getattr(self, "stream", None) is not None:
            self.cudart.cudaStreamDestroy(self.stream)
            self.stream = None

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # noqa: BLE001  best-effort cleanup at interpreter exit
            pass


RUNNERS.register("tensorrt", TensorRTRunner)
