"""Runs a serialized TensorRT engine on a CUDA GPU (TensorRT 8.6/10/11 API, cuda-python, pinned buffers).

Follows NVIDIA's Python samples (`samples/python/common_runtime.py`): `trt.Runtime` deserializes the
plan, `IExecutionContext.set_input_shape` / `set_tensor_address` / `execute_async_v3` run it on one CUDA
stream, and host<->device copies go through page-locked (pinned) host buffers with `cudaMemcpyAsync`
(any I/O dtype: FP16 engines take and give float16). These calls exist unchanged in TensorRT 8.5+.
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
from edgeattn.runtime.cuda import (
    INSTALL_HINT,
    CudaError,
    cuda_call,
    device_facts,
    gpu_count,
    import_cudart,
)

__all__ = [
    "INSTALL_HINT",
    "CudaError",
    "TensorRTRunner",
    "gpu_count",
    "import_tensorrt",
    "require_tensorrt_gpu",
]


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


def require_tensorrt_gpu() -> Any:
    """The `tensorrt` module when TensorRT and a CUDA GPU are both present, else UnavailableError (a
    CUDA failure on a machine with a driver raises CudaError instead: it is a fault, not a missing GPU)."""
    trt = import_tensorrt()
    import_cudart()
    if gpu_count() < 1:
        raise UnavailableError(
            "no CUDA GPU is visible on this machine (TensorRT builds and runs engines only on a GPU)",
            INSTALL_HINT,
        )
    return trt


class _PinnedBuffer:
    """A page-locked host array and a device allocation of the same size (freed on close).

    The host memory is viewed as bytes and then as `dtype`, so any dtype works (ctypes has no float16)."""

    def __init__(self, cudart: Any, count: int, dtype: np.dtype) -> None:
        self.cudart = cudart
        self.dtype = np.dtype(dtype)
        self.nbytes = int(count) * self.dtype.itemsize
        self.host_ptr = cuda_call(cudart.cudaMallocHost(self.nbytes), cudart)
        self.device_ptr = cuda_call(cudart.cudaMalloc(self.nbytes), cudart)
        raw = (ctypes.c_uint8 * self.nbytes).from_address(int(self.host_ptr))
        self.host = np.frombuffer(raw, dtype=np.uint8).view(self.dtype)

    def close(self) -> None:
        if self.device_ptr is not None:
            self.cudart.cudaFree(self.device_ptr)
            self.device_ptr = None
        if self.host_ptr is not None:
            self.host = None
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
        try:  # cuda-python, not torch: torch on a Jetson is often a CPU build
            if gpu_count() < 1:
                return "no CUDA GPU here: a TensorRT engine can only be timed on the GPU it was built for"
        except CudaError as exc:
            return exc.one_line()
        return None

    def __init__(self, path: Path, device: int = 0, **_: object) -> None:
        self.manifest = read_manifest(path)
        trt = require_tensorrt_gpu()
        cudart = import_cudart()
        self.trt, self.cudart = trt, cudart
        cuda_call(cudart.cudaSetDevice(int(device)), cudart)
        facts = device_facts(int(device))
        built_for = self.manifest.details.get("compute_capability")
        if built_for and built_for != facts["compute_capability"]:
            raise InputError(
                f"{path} was built for a GPU of compute capability {built_for}, this one ({facts['device']}) is {facts['compute_capability']}",
                "engines are tied to the GPU that built them: rebuild it here from its .onnx",
            )
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
        self.stream = cuda_call(cudart.cudaStreamCreate(), cudart)
        self.inp = _PinnedBuffer(cudart, self.max_batch * int(np.prod(self.sample_shape)), self.in_dtype)
        self.out = _PinnedBuffer(cudart, self.max_batch * self.num_classes, self.out_dtype)
        self.context.set_tensor_address(self.input_name, int(self.inp.device_ptr))
        self.context.set_tensor_address(self.output_name, int(self.out.device_ptr))
        self.runtime = f"TensorRT {trt.__version__} ({facts['device']}, compute capability {facts['compute_capability']})"

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
            cudart.cudaMemcpyAsync(self.inp.device_ptr, self.inp.host_ptr, data.nbytes, h2d, self.stream),
            cudart,
        )
        if not self.context.execute_async_v3(self.stream):
            raise GateFailure("TensorRT failed to execute the engine", "see the TensorRT log above")
        out_count = batch * self.num_classes
        cuda_call(
            cudart.cudaMemcpyAsync(
                self.out.host_ptr, self.out.device_ptr, out_count * self.out_dtype.itemsize, d2h, self.stream
            ),
            cudart,
        )
        cuda_call(cudart.cudaStreamSynchronize(self.stream), cudart)
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
