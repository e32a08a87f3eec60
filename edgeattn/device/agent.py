"""edgeattn's device agent: runs and times artifacts on a device that has no edgeattn and no torch.

It is long because it is shipped alone: the host copies this one file to the device (cached there by its
content hash) and runs `python3 agent.py COMMAND`, so everything the device does lives here: the
device's facts, the preprocessing (the same as `Runner.prepare`), the onnxruntime and TensorRT
backends, the timing loop (and the measured placement's interleaved timer), the TensorRT engine build
and the framed protocol the host speaks. It
imports only the standard library at the top; numpy and the runtimes are imported when needed, so a
device without them gets a clear message instead of a traceback. It must also run on Python 3.8
(JetPack 5), hence no annotations.

Commands: `facts [--busy]` prints the device's facts as JSON; `serve` reads framed requests on stdin
and answers on stdout (a frame is one JSON header line, then `nbytes` raw bytes).
"""

import hashlib
import json
import math
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import traceback

PROTOCOL = 1
MIN_PYTHON = (3, 8)

# Flags that decide how fast FP32/INT8 kernels can be (x86 names from /proc/cpuinfo, ARM "Features").
SIMD_FLAGS = (
    "sse4_2",
    "avx",
    "avx2",
    "fma",
    "f16c",
    "avx512f",
    "avx512bw",
    "avx512vl",
    "avx512_vnni",
    "avx_vnni",
    "avx512_bf16",
    "amx_tile",
    "amx_int8",
    "amx_bf16",
    "asimd",
    "asimddp",
    "i8mm",
    "sve",
    "bf16",
)
INT8_DOT_FLAGS = ("avx512_vnni", "avx_vnni", "amx_int8", "asimddp", "i8mm")
# Apple silicon reports ARM features through sysctl, not /proc/cpuinfo.
MAC_ARM_FEATURES = {"hw.optional.arm.FEAT_DotProd": "asimddp", "hw.optional.arm.FEAT_I8MM": "i8mm"}
TRTEXEC_PLACES = (
    "/usr/src/tensorrt/bin/trtexec",
    "/usr/local/tensorrt/bin/trtexec",
    "/opt/tensorrt/bin/trtexec",
)
THREAD_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "VECLIB_MAXIMUM_THREADS")


class AgentError(Exception):
    """A failure the host shows as one line: kind (missing_numpy, missing_runtime, input, oom, internal)."""

    def __init__(self, kind, problem, fix=None):
        Exception.__init__(self, problem)
        self.kind, self.problem, self.fix = kind, problem, fix

    def to_dict(self):
        return {"kind": self.kind, "problem": self.problem, "fix": self.fix}


# ------------------------------------------------------------------------------------------ facts
def read_text(path):
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            return fh.read()
    except OSError:
        return ""


def sysctl(name):
    try:
        out = subprocess.run(
            ["sysctl", "-n", name], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, timeout=5
        )
        return out.stdout.decode(errors="replace").strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def cpu_facts(cpuinfo_text=None):
    """CPU model, SIMD flags (with int8 dot-product support) and core counts."""
    text = read_text("/proc/cpuinfo") if cpuinfo_text is None else cpuinfo_text
    model, flags, cores = "", set(), set()
    physical = core = None
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key, value = key.strip().lower(), value.strip()
        if key in ("model name", "hardware", "cpu model") and not model:
            model = value
        elif key in ("flags", "features") and not flags:
            flags = set(value.split())
        elif key == "physical id":
            physical = value
        elif key == "core id":
            core = value
        elif not line.strip() and core is not None:
            cores.add((physical, core))
            physical = core = None
    if core is not None:
        cores.add((physical, core))
    if cpuinfo_text is None and sys.platform == "darwin":
        model = model or sysctl("machdep.cpu.brand_string")
        flags |= {flag for key, flag in MAC_ARM_FEATURES.items() if sysctl(key) == "1"}
        flags |= {f.lower().replace(".", "_") for f in sysctl("machdep.cpu.features").split()}
        flags |= {f.lower() for f in sysctl("machdep.cpu.leaf7_features").split()}
    if not model:
        model = platform.processor() or platform.machine()
    logical = os.cpu_count() or 1
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else logical
    int8 = [f for f in INT8_DOT_FLAGS if f in flags]
    return {
        "model": model,
        "arch": platform.machine(),
        "logical_cores": logical,
        "physical_cores": len(cores) or None,
        "usable_cores": usable,
        "simd_flags": [f for f in SIMD_FLAGS if f in flags],
        "int8_dot_product": bool(int8),
        "int8_dot_flags": int8,
        "flag_count": len(flags),
    }


def memory_facts():
    """Total and available memory in MB (Linux /proc/meminfo, macOS sysctl)."""
    found = {}
    for line in read_text("/proc/meminfo").splitlines():
        key, _, value = line.partition(":")
        if key in ("MemTotal", "MemAvailable") and value.split():
            found[key] = round(int(value.split()[0]) / 1024, 1)
    if not found and sys.platform == "darwin":
        size = sysctl("hw.memsize")
        if size.isdigit():
            found["MemTotal"] = round(int(size) / 2**20, 1)
    return found.get("MemTotal"), found.get("MemAvailable")


def board_model():
    """The board as its device tree names it (Raspberry Pi, Jetson), else None."""
    for path in ("/proc/device-tree/model", "/sys/firmware/devicetree/base/model"):
        text = read_text(path).replace("\x00", "").strip()
        if text:
            return text
    return None


def busy_other_pct(seconds=0.5):
    """Share of all CPU time used by other processes over a short window (Linux /proc/stat)."""

    def sample():
        try:
            fields = [int(v) for v in read_text("/proc/stat").split("\n", 1)[0].split()[1:]]
        except ValueError:
            return None
        if len(fields) < 4:
            return None
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
        return sum(fields[:8]) - idle, sum(fields[:8])

    first = sample()
    if first is None:
        return None
    time.sleep(seconds)
    second = sample()
    if second is None or second[1] == first[1]:
        return None
    return round(100.0 * (second[0] - first[0]) / (second[1] - first[1]), 1)


def find_trtexec():
    found = shutil.which("trtexec")
    if found:
        return found
    for place in TRTEXEC_PLACES:
        if os.access(place, os.X_OK):
            return place
    return None


def trtexec_version(path):
    """TensorRT version trtexec prints in its banner ("[TensorRT v100300]" -> "10.3.0")."""
    try:
        out = subprocess.run([path, "--help"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    match = re.search(r"TensorRT v(\d+)", out.stdout.decode(errors="replace"))
    if not match:
        return None
    n = int(match.group(1))
    return f"{n // 10000}.{(n // 100) % 100}.{n % 100}" if n >= 10000 else str(n)


def import_version(module):
    """(version, None) when `module` imports here, else (None, why not) — any exception counts."""
    import importlib

    try:
        mod = importlib.import_module(module)
    except BaseException as exc:  # noqa: BLE001  stub wheels raise at import, a missing .so raises OSError
        if isinstance(exc, KeyboardInterrupt):
            raise
        first = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
        return None, first
    version = getattr(mod, "__version__", None)
    if version is None:
        try:
            from importlib import metadata

            version = metadata.version(module)
        except Exception:  # noqa: BLE001
            version = "?"
    return str(version), None


def runtime_facts():
    """Which runtimes import here, with versions (and onnxruntime's execution providers, trtexec)."""
    modules = ["numpy", "onnxruntime", "tensorrt", "openvino"]
    if sys.platform == "darwin":
        modules.append("coremltools")
    out = {}
    for module in modules:
        version, error = import_version(module)
        out[module] = {"importable": version is not None, "version": version, "error": error}
    if out["onnxruntime"]["importable"]:
        import onnxruntime

        out["onnxruntime"]["providers"] = list(onnxruntime.get_available_providers())
    trtexec = find_trtexec()
    out["trtexec"] = {"importable": trtexec is not None, "path": trtexec, "version": None, "error": None}
    if trtexec:
        out["trtexec"]["version"] = trtexec_version(trtexec)
    else:
        out["trtexec"]["error"] = "not on PATH or in " + ", ".join(TRTEXEC_PLACES)
    return out


def gpu_names():
    """NVIDIA GPUs the device sees (nvidia-smi, else the CUDA runtime library)."""
    smi = shutil.which("nvidia-smi")
    if smi:
        try:
            out = subprocess.run(
                [smi, "--query-gpu=name", "--format=csv,noheader"],
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                timeout=15,
            )
            names = [n.strip() for n in out.stdout.decode(errors="replace").splitlines() if n.strip()]
            if out.returncode == 0 and names:
                return names
        except (OSError, subprocess.SubprocessError):
            pass
    cuda = Cuda.load()
    if cuda is None:
        return []
    try:
        return [cuda.device_name(i) for i in range(cuda.device_count())]
    except AgentError:
        return []


def facts(busy=False):
    total, available = memory_facts()
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    return {
        "protocol": PROTOCOL,
        "host": platform.node(),
        "os": platform.platform(),
        "system": platform.system(),
        "python": platform.python_version(),
        "python_executable": sys.executable,
        "board": board_model(),
        "cpu": cpu_facts(),
        "memory_mb": total,
        "memory_available_mb": available,
        "load_average": [round(v, 2) for v in load] if load else None,
        "cpu_busy_other_pct": busy_other_pct() if busy else None,
        "gpus": gpu_names(),
        "runtimes": runtime_facts(),
    }


# ---------------------------------------------------------------------------------- preprocessing
def aa_filter(kind, x):
    """The interpolation kernels of torch's antialiased resize: triangle, or cubic with a = -0.5."""
    import numpy as np

    x = np.abs(x)
    if kind == "bilinear":
        return np.where(x < 1.0, 1.0 - x, 0.0)
    a = -0.5
    inner = ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0
    outer = (((x - 5.0) * x + 8.0) * x - 4.0) * a
    return np.where(x < 1.0, inner, np.where(x < 2.0, outer, 0.0))


def aa_weights(n_in, n_out, kind):
    """(n_out, n_in) resampling matrix of torch.nn.functional.interpolate(antialias=True,
    align_corners=False): the kernel is widened by the scale when shrinking (PIL's method)."""
    import numpy as np

    scale = n_in / n_out
    base = 1.0 if kind == "bilinear" else 2.0
    support = base * scale if scale >= 1.0 else base
    inv = 1.0 / scale if scale >= 1.0 else 1.0
    w = np.zeros((n_out, n_in), dtype=np.float64)
    for i in range(n_out):
        center = scale * (i + 0.5)
        lo = max(int(center - support + 0.5), 0)
        hi = min(int(center + support + 0.5), n_in)
        row = aa_filter(kind, (np.arange(lo, hi) - center + 0.5) * inv)
        total = row.sum()
        w[i, lo:hi] = row / total if total != 0 else row
    return w.astype(np.float32)


def resize(x, spec):
    """Resize + center crop float32 [0, 255] images to the spec's size (edgeattn's `resize_uint8`)."""
    import numpy as np

    h, w = x.shape[-2:]
    th, tw = int(spec["size"][0]), int(spec["size"][1])
    if (h, w) == (th, tw):
        return x
    scale_to = int(math.floor(max(th, tw) / float(spec.get("crop_pct", 1.0))))
    if h <= w:
        nh, nw = scale_to, max(tw, int(scale_to * w / h))
    else:
        nw, nh = scale_to, max(th, int(scale_to * h / w))
    kind = "bicubic" if spec.get("interpolation") == "bicubic" else "bilinear"
    y = np.einsum("nchw,vw->nchv", x, aa_weights(w, nw, kind))
    y = np.einsum("nchv,uh->ncuv", y, aa_weights(h, nh, kind))
    y = np.clip(y, 0.0, 255.0)
    top, left = int(round((nh - th) / 2.0)), int(round((nw - tw) / 2.0))
    return np.ascontiguousarray(y[..., top : top + th, left : left + tw], dtype=np.float32)


def prepare(images, spec, image_input):
    """uint8 (N, 3, H, W) -> the artifact's input: resized, then normalised with the manifest's
    mean/std unless the artifact normalises itself (`image_input`). The same as `Runner.prepare`."""
    import numpy as np

    x = resize(images.astype(np.float32), spec)
    if not image_input:
        mean = np.asarray(spec["mean"], dtype=np.float32).reshape(1, -1, 1, 1)
        std = np.asarray(spec["std"], dtype=np.float32).reshape(1, -1, 1, 1)
        x = (x / np.float32(255.0) - mean) / std
    return np.ascontiguousarray(x, dtype=np.float32)


# --------------------------------------------------------------------------------------- backends
def rss_mb(field="VmRSS"):
    for line in read_text("/proc/self/status").splitlines():
        if line.startswith(field + ":"):
            return float(line.split()[1]) / 1024
    if field == "VmHWM":
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak / 2**20 if sys.platform == "darwin" else peak / 1024
    return None


def sha256_of(path):
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def check_shipped(path, sha256, name):
    """The sha256 of a file the host copied here; it must exist and (when `sha256` is given) match it.
    A mismatched copy is removed so the next run copies it again."""
    if not os.path.exists(path):
        raise AgentError("input", f"{path} is not on the device", "rerun: the host copies it first")
    digest = sha256_of(path)
    if sha256 and digest != sha256:
        os.unlink(path)
        raise AgentError(
            "input",
            f"the copy of {name} on the device does not match its sha256 (a corrupted transfer or cache); it was removed",
            "rerun: it is copied again",
        )
    return digest


def check_matches_manifest(name, in_shape, out_shape, manifest):
    size = manifest["input_spec"]["size"]
    hw = [d for d in in_shape[2:4] if isinstance(d, int)]
    if len(hw) == 2 and list(hw) != [int(s) for s in size]:
        raise AgentError(
            "input",
            f"{name} takes {hw[0]}x{hw[1]} inputs but its manifest says {size[0]}x{size[1]}",
            "the manifest does not belong to this file: re-export the artifact",
        )
    classes = out_shape[-1] if out_shape else None
    if isinstance(classes, int) and classes != int(manifest["num_classes"]):
        raise AgentError(
            "input",
            "{} outputs {} classes but its manifest says {}".format(name, classes, manifest["num_classes"]),
            "the manifest does not belong to this file: re-export the artifact",
        )


def missing_runtime(name, error, fix):
    return AgentError(
        "missing_runtime",
        f"{name} is not installed for {sys.executable} on this device ({error})",
        fix,
    )


class OrtBackend:
    """An ONNX artifact on onnxruntime (the same session settings as edgeattn's OnnxRuntimeRunner)."""

    kind = "onnxruntime"
    LEVELS = {
        "disable": "ORT_DISABLE_ALL",
        "basic": "ORT_ENABLE_BASIC",
        "extended": "ORT_ENABLE_EXTENDED",
        "all": "ORT_ENABLE_ALL",
    }

    def __init__(self, path, manifest, options):
        import numpy as np

        ort = import_onnxruntime()
        so = ort.SessionOptions()
        if options.get("threads"):
            so.intra_op_num_threads = int(options["threads"])
            so.inter_op_num_threads = 1
        level = self.LEVELS.get(options.get("graph_optimization") or "all", "ORT_ENABLE_ALL")
        so.graph_optimization_level = getattr(ort.GraphOptimizationLevel, level)
        parallel = options.get("execution_mode") == "parallel"
        so.execution_mode = ort.ExecutionMode.ORT_PARALLEL if parallel else ort.ExecutionMode.ORT_SEQUENTIAL
        available = ort.get_available_providers()
        wanted = options.get("providers") or ["CPUExecutionProvider"]
        chosen = [p for p in wanted if p in available] or ["CPUExecutionProvider"]
        self.session = load_ort_session(
            ort,
            path,
            so,
            chosen,
            "re-export the model, or install the onnxruntime version it was checked with",
        )
        inp = self.session.get_inputs()[0]
        self.input_name = inp.name
        self.input_type = np.float16 if "float16" in inp.type else np.float32
        batch = inp.shape[0]
        self.max_batch = self.min_batch = batch if isinstance(batch, int) else None
        out_shape = list(self.session.get_outputs()[0].shape)
        check_matches_manifest(os.path.basename(path), list(inp.shape), out_shape, manifest)
        self.runtime = f"onnxruntime {ort.__version__} ({self.session.get_providers()[0]})"

    def run(self, x):
        import numpy as np

        out = self.session.run(None, {self.input_name: np.ascontiguousarray(x, dtype=self.input_type)})[0]
        return out.astype(np.float32)

    def timer(self):
        return None

    def close(self):
        self.session = None


class Cuda:
    """The CUDA runtime library through ctypes: what running and timing a TensorRT engine needs."""

    H2D, D2H = 1, 2

    def __init__(self, lib):
        import ctypes

        self.ct, self.lib = ctypes, lib
        vp = ctypes.c_void_p
        for name, args in (
            ("cudaMalloc", [ctypes.POINTER(vp), ctypes.c_size_t]),
            ("cudaMallocHost", [ctypes.POINTER(vp), ctypes.c_size_t]),
            ("cudaFree", [vp]),
            ("cudaFreeHost", [vp]),
            ("cudaMemcpyAsync", [vp, vp, ctypes.c_size_t, ctypes.c_int, vp]),
            ("cudaStreamCreate", [ctypes.POINTER(vp)]),
            ("cudaStreamSynchronize", [vp]),
            ("cudaStreamDestroy", [vp]),
            ("cudaEventCreate", [ctypes.POINTER(vp)]),
            ("cudaEventRecord", [vp, vp]),
            ("cudaEventSynchronize", [vp]),
            ("cudaEventElapsedTime", [ctypes.POINTER(ctypes.c_float), vp, vp]),
            ("cudaGetDeviceCount", [ctypes.POINTER(ctypes.c_int)]),
            ("cudaSetDevice", [ctypes.c_int]),
            ("cudaGetDeviceProperties", [ctypes.c_char_p, ctypes.c_int]),
        ):
            fn = getattr(lib, name)
            fn.argtypes, fn.restype = args, ctypes.c_int
        lib.cudaGetErrorString.argtypes, lib.cudaGetErrorString.restype = [ctypes.c_int], ctypes.c_char_p

    @classmethod
    def load(cls):
        """The CUDA runtime (system CUDA, JetPack, or the nvidia-cuda-runtime wheel), or None."""
        import ctypes
        import ctypes.util
        import glob
        import site

        names = [
            "libcudart.so",
            "libcudart.so.13",
            "libcudart.so.12",
            "libcudart.so.11.0",
            "libcudart.so.10.2",
        ]
        found = ctypes.util.find_library("cudart")
        names = ([found] if found else []) + names
        try:
            roots = site.getsitepackages() + [site.getusersitepackages()]
        except AttributeError:
            roots = []
        for root in roots:
            names += sorted(glob.glob(os.path.join(root, "nvidia", "cuda_runtime", "lib", "libcudart.so*")))
        for name in names:
            try:
                return cls(ctypes.CDLL(name))
            except (OSError, AttributeError):
                continue
        return None

    def check(self, code, what):
        if code != 0:
            msg = self.lib.cudaGetErrorString(code)
            raise AgentError(
                "internal",
                "CUDA error {} in {}: {}".format(code, what, msg.decode(errors="replace") if msg else "?"),
            )

    def device_count(self):
        n = self.ct.c_int(0)
        code = self.lib.cudaGetDeviceCount(self.ct.byref(n))
        return int(n.value) if code == 0 else 0

    def device_name(self, index):
        buf = self.ct.create_string_buffer(8192)  # cudaDeviceProp starts with char name[256]
        self.check(self.lib.cudaGetDeviceProperties(buf, int(index)), "cudaGetDeviceProperties")
        return buf.raw[:256].split(b"\x00", 1)[0].decode(errors="replace")

    def new(self, fn, what):
        ptr = self.ct.c_void_p()
        self.check(fn(self.ct.byref(ptr)), what)
        return ptr

    def alloc(self, nbytes, pinned=False):
        ptr = self.ct.c_void_p()
        fn = self.lib.cudaMallocHost if pinned else self.lib.cudaMalloc
        self.check(fn(self.ct.byref(ptr), int(nbytes)), "cudaMallocHost" if pinned else "cudaMalloc")
        return ptr


class TrtBackend:
    """A serialized TensorRT engine (TensorRT >= 8.6 tensor API) with pinned host buffers, timed
    with CUDA events around one run like trtexec (copies in, enqueue, copies out)."""

    kind = "tensorrt"
    FIX = "TensorRT comes with JetPack on a Jetson (sudo apt install nvidia-tensorrt); elsewhere: {} -m pip install tensorrt"

    def __init__(self, path, manifest, options):
        import numpy as np

        version, error = import_version("tensorrt")
        if version is None:
            raise missing_runtime(
                "TensorRT", "import tensorrt: " + str(error), self.FIX.format(sys.executable)
            )
        import tensorrt as trt

        cuda = Cuda.load()
        if cuda is None or cuda.device_count() < 1:
            raise AgentError(
                "missing_runtime",
                "no CUDA GPU is visible on this device (or the CUDA runtime library is missing)",
                "TensorRT engines run only on the NVIDIA GPU they were built for",
            )
        self.np, self.trt, self.cuda = np, trt, cuda
        cuda.check(cuda.lib.cudaSetDevice(0), "cudaSetDevice")
        self.logger = trt.Logger(trt.Logger.WARNING)
        self.trt_runtime = trt.Runtime(self.logger)
        with open(path, "rb") as fh:
            self.engine = self.trt_runtime.deserialize_cuda_engine(fh.read())
        if self.engine is None:
            raise AgentError(
                "input",
                f"TensorRT {trt.__version__} on the device cannot deserialize {os.path.basename(path)}",
                "engines are tied to the TensorRT version and GPU that built them: build it there (edgeattn export --target tensorrt --device ...)",
            )
        self.context = self.engine.create_execution_context()
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        inputs = [n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        outputs = [n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT]
        if len(inputs) != 1 or len(outputs) != 1:
            raise AgentError(
                "input",
                f"{path} has {len(inputs)} inputs and {len(outputs)} outputs",
                "export a single-input classifier engine",
            )
        self.input_name, self.output_name = inputs[0], outputs[0]
        shape = tuple(self.engine.get_tensor_shape(self.input_name))
        if shape[0] == -1:
            lo, _, hi = (tuple(s) for s in self.engine.get_tensor_profile_shape(self.input_name, 0))
            self.min_batch, self.max_batch = int(lo[0]), int(hi[0])
        else:
            self.min_batch = self.max_batch = int(shape[0])
        self.sample_shape = tuple(int(d) for d in shape[1:])
        self.num_classes = int(manifest["num_classes"])
        self.in_dtype = np.dtype(trt.nptype(self.engine.get_tensor_dtype(self.input_name)))
        self.out_dtype = np.dtype(trt.nptype(self.engine.get_tensor_dtype(self.output_name)))
        self.stream = cuda.new(cuda.lib.cudaStreamCreate, "cudaStreamCreate")
        n_in = self.max_batch * int(np.prod(self.sample_shape))
        n_out = self.max_batch * self.num_classes
        self.buffers = []
        self.in_host, self.in_dev = self._pair(n_in, self.in_dtype)
        self.out_host, self.out_dev = self._pair(n_out, self.out_dtype)
        self.context.set_tensor_address(self.input_name, int(self.in_dev.value))
        self.context.set_tensor_address(self.output_name, int(self.out_dev.value))
        self.runtime = f"TensorRT {trt.__version__} ({cuda.device_name(0)})"

    def _pair(self, count, dtype):
        np, ct = self.np, self.cuda.ct
        nbytes = int(count) * dtype.itemsize
        host = self.cuda.alloc(nbytes, pinned=True)
        dev = self.cuda.alloc(nbytes)
        self.buffers += [(host, True), (dev, False)]
        array = np.ctypeslib.as_array(ct.cast(host, ct.POINTER(ct.c_uint8)), (nbytes,)).view(dtype)
        return array, dev

    def run(self, x):
        np, cuda = self.np, self.cuda
        n = len(x)
        if n > self.max_batch:
            raise AgentError(
                "input", f"batch {n} exceeds this engine's maximum {self.max_batch}", "run smaller batches"
            )
        if n < self.min_batch:
            x = np.concatenate([x, np.repeat(x[-1:], self.min_batch - n, axis=0)])
        batch = len(x)
        data = np.ascontiguousarray(x, dtype=self.in_dtype).reshape(-1)
        self.in_host[: data.size] = data
        if not self.context.set_input_shape(self.input_name, (batch,) + self.sample_shape):
            raise AgentError(
                "input",
                f"the engine rejects input shape {(batch,) + self.sample_shape}",
                "check the batch range in its manifest",
            )
        lib = cuda.lib
        in_ptr = self.in_host.ctypes.data_as(cuda.ct.c_void_p)
        out_ptr = self.out_host.ctypes.data_as(cuda.ct.c_void_p)
        cuda.check(
            lib.cudaMemcpyAsync(self.in_dev, in_ptr, data.nbytes, cuda.H2D, self.stream), "cudaMemcpyAsync"
        )
        if not self.context.execute_async_v3(int(self.stream.value or 0)):
            raise AgentError("internal", "TensorRT failed to execute the engine", "see the agent's stderr")
        count = batch * self.num_classes
        cuda.check(
            lib.cudaMemcpyAsync(
                out_ptr, self.out_dev, count * self.out_dtype.itemsize, cuda.D2H, self.stream
            ),
            "cudaMemcpyAsync",
        )
        cuda.check(lib.cudaStreamSynchronize(self.stream), "cudaStreamSynchronize")
        return self.out_host[:count].reshape(batch, self.num_classes)[:n].astype(np.float32, copy=True)

    def timer(self):
        cuda = self.cuda
        start = cuda.new(cuda.lib.cudaEventCreate, "cudaEventCreate")
        end = cuda.new(cuda.lib.cudaEventCreate, "cudaEventCreate")

        def timed(fn):
            cuda.check(cuda.lib.cudaEventRecord(start, self.stream), "cudaEventRecord")
            fn()
            cuda.check(cuda.lib.cudaEventRecord(end, self.stream), "cudaEventRecord")
            cuda.check(cuda.lib.cudaEventSynchronize(end), "cudaEventSynchronize")
            ms = cuda.ct.c_float(0.0)
            cuda.check(cuda.lib.cudaEventElapsedTime(cuda.ct.byref(ms), start, end), "cudaEventElapsedTime")
            return float(ms.value)

        return timed

    def close(self):
        for ptr, pinned in getattr(self, "buffers", []):
            (self.cuda.lib.cudaFreeHost if pinned else self.cuda.lib.cudaFree)(ptr)
        self.buffers = []
        if getattr(self, "stream", None) is not None:
            self.cuda.lib.cudaStreamDestroy(self.stream)
            self.stream = None


BACKENDS = {"onnxruntime": OrtBackend, "tensorrt": TrtBackend}


# ----------------------------------------------------------------------------------------- timing
def latency_stats(samples, batch):
    """Summary of per-run latencies (ms): the same fields and formulas as edgeattn.bench."""
    import math

    import numpy as np

    a = np.asarray(samples, dtype=np.float64)
    mean = float(a.mean())
    return {
        "iterations": int(a.size),
        "median_ms": float(np.median(a)),
        "mean_ms": mean,
        "p90_ms": float(np.percentile(a, 90)),
        "p99_ms": float(np.percentile(a, 99)),
        "min_ms": float(a.min()),
        "max_ms": float(a.max()),
        "std_ms": float(a.std(ddof=1)) if a.size > 1 else 0.0,
        "throughput_ips": batch * 1000.0 / mean if mean > 0 else math.inf,
        "total_s": float(a.sum() / 1000.0),
    }


def wallclock(fn):
    start = time.perf_counter_ns()
    fn()
    return (time.perf_counter_ns() - start) / 1e6


def batch_unsupported(backend, batch):
    hi = backend.max_batch
    if hi is None:
        return None
    lo = backend.min_batch or hi
    if lo <= batch <= hi:
        return None
    if lo == hi:
        return f"the artifact has a static batch of {hi}; export it with a dynamic batch to sweep batch sizes"
    return f"batch {batch} is outside the artifact's batch range {lo}..{hi}"


def bench(opened, settings):
    """Warm-up, then `iters` timed runs or as many as fit in `seconds` (at least `min_iters`), per batch."""
    import numpy as np

    backend, manifest = opened["backend"], opened["manifest"]
    spec = manifest["input_spec"]
    h, w = int(spec["size"][0]), int(spec["size"][1])
    device_timer = backend.timer()
    timer = device_timer or wallclock
    batches = []
    for batch in settings["batches"]:
        reason = batch_unsupported(backend, batch)
        if reason:
            batches.append({"batch": batch, "status": "skipped", "reason": reason})
            continue
        rng = np.random.default_rng(int(settings.get("seed", 0)) + batch)
        images = rng.integers(0, 256, (batch, 3, h, w), dtype=np.uint8)
        x = prepare(images, spec, bool(manifest.get("image_input")))

        def once(x=x):
            return backend.run(x)

        first_ms = wallclock(once)
        for _ in range(int(settings.get("warmup", 0))):
            once()
        samples = []
        if settings.get("seconds") is not None:
            deadline = time.perf_counter() + float(settings["seconds"])
            while len(samples) < int(settings.get("min_iters", 1)) or time.perf_counter() < deadline:
                samples.append(timer(once))
        else:
            samples = [timer(once) for _ in range(int(settings["iters"]))]
        stats = latency_stats(samples, batch)
        batches.append(dict(batch=batch, status="ok", first_run_ms=first_ms, **stats))
    name = f"{backend.kind} device timer (CUDA events)" if device_timer else "wall clock (perf_counter)"
    return {"timer": name, "batches": batches, "peak_rss_mb": rss_mb("VmHWM")}


def import_onnxruntime():
    """The onnxruntime module, or the agent's one-line error saying how to install it there."""
    try:
        import onnxruntime as ort
    except Exception as exc:  # noqa: BLE001
        raise missing_runtime("onnxruntime", str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__,
                              f"install it there: {sys.executable} -m pip install onnxruntime") from None  # fmt: skip
    return ort


def load_ort_session(ort, path, so, providers, fix):
    """An onnxruntime session of `path`, or an input error naming the file and the device's version."""
    try:
        return ort.InferenceSession(path, sess_options=so, providers=providers)
    except Exception as exc:  # noqa: BLE001  onnxruntime raises its own exception types
        raise AgentError(
            "input",
            f"onnxruntime {ort.__version__} on the device cannot load {os.path.basename(path)} ({str(exc).splitlines()[0][:200]})",
            fix,
        ) from None


def ort_timing_session(path, threads):
    """A CPU session as the host's placement timer opens one (edgeattn.onnx.ort.session): `threads`
    intra-op threads, one inter-op thread, all graph optimizations."""
    ort = import_onnxruntime()
    so = ort.SessionOptions()
    so.intra_op_num_threads = int(threads)
    so.inter_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.log_severity_level = 3
    return load_ort_session(
        ort,
        path,
        so,
        ["CPUExecutionProvider"],
        "install an onnxruntime there that runs the opset edgeattn exports",
    )


def fixed_feed(sess):
    """One fixed pseudo-random input of the session's shape, dynamic dims as 1 (as the host's timer)."""
    import numpy as np

    inp = sess.get_inputs()[0]
    shape = [d if isinstance(d, int) and d > 0 else 1 for d in inp.shape]
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    return {inp.name: x.astype(np.float16) if "float16" in inp.type else x}


def time_interleaved(runs, rounds, turn_seconds, warmup, max_iterations, settle_s, seed):
    """A compact re-statement of edgeattn/interleave.py::time_interleaved (this file cannot import
    edgeattn): warm each callable up and fix its k runs per turn (~turn_seconds); then each round runs
    every callable for its k timed runs, in an order shuffled per round (random.Random(seed)), with an
    untimed `settle_s` pause before each turn. Per-round median ms of each, and the orders."""
    import random

    import numpy as np

    iterations = []
    for fn in runs:
        last = wallclock(fn)
        for _ in range(max(1, warmup) - 1):
            last = wallclock(fn)
        iterations.append(int(min(max_iterations, max(1, round(turn_seconds * 1000 / max(last, 1e-3))))))
    rng = random.Random(seed)
    orders, per_round = [], [[] for _ in runs]
    for _ in range(rounds):
        order = list(range(len(runs)))
        rng.shuffle(order)
        orders.append(order)
        for i in order:
            time.sleep(settle_s)
            per_round[i].append(float(np.median([wallclock(runs[i]) for _ in range(iterations[i])])))
    return per_round, iterations, orders


def time_placement(req):
    """The measured placement's timer on the device (edgeattn/quantize/timing.py::LocalOrtTimer, here):
    open the shipped candidate .onnx files, size the rounds from one timed run of each so they fit in
    `seconds` (within min_rounds..max_rounds), then time them interleaved."""
    s = req["settings"]
    sessions = []
    for model in req["models"]:
        check_shipped(model["path"], model["sha256"], os.path.basename(model["path"]))
        sessions.append(ort_timing_session(model["path"], s["threads"]))
    runs = [(lambda sess=sess, feed=fixed_feed(sess): sess.run(None, feed)) for sess in sessions]
    one_ms = []
    for fn in runs:  # one warm-up run, then one timed run to size the rounds
        fn()
        one_ms.append(wallclock(fn))
    turn, settle = float(s["turn_seconds"]), float(s["settle_s"])
    per_round_s = sum(max(turn, ms / 1e3) + settle for ms in one_ms)
    rounds = int(min(s["max_rounds"], max(s["min_rounds"], float(s["seconds"]) // max(per_round_s, 1e-3))))
    medians, iterations, orders = time_interleaved(
        runs,
        max(2, rounds),
        turn,
        int(s["warmup"]),
        int(s.get("max_iterations", 50)),
        settle,
        int(s.get("seed", 0)),
    )
    import onnxruntime as ort

    return {"round_median_ms": medians, "iterations": iterations, "orders": orders, "rounds": len(orders),
            "runtime": f"onnxruntime {ort.__version__} (CPUExecutionProvider)"}  # fmt: skip


# -------------------------------------------------------------------------------- TensorRT build
def trt_build(req):
    """Build a TensorRT engine from an ONNX with the TensorRT Python API, else with trtexec."""
    started = time.perf_counter()
    version, error = import_version("tensorrt")
    trtexec = find_trtexec()
    if version is None and trtexec is None:
        raise AgentError(
            "missing_runtime",
            "TensorRT is not installed on this device (import tensorrt with {}: {}; no trtexec on PATH or in {})".format(
                sys.executable, error, ", ".join(TRTEXEC_PLACES)
            ),
            "install TensorRT there: on a Jetson it comes with JetPack (sudo apt install nvidia-tensorrt); "
            f"on an x86/ARM server with an NVIDIA GPU: {sys.executable} -m pip install tensorrt",
        )
    cuda = Cuda.load()
    if cuda is None or cuda.device_count() < 1:
        raise AgentError(
            "missing_runtime",
            "TensorRT is installed on this device but no CUDA GPU is visible (or the CUDA runtime library is missing)",
            "build on the NVIDIA device the engine will run on",
        )
    gpu = cuda.device_name(0)
    log_lines = []
    try:
        if version is not None:
            built = trt_build_api(req, log_lines)
        else:
            built = trt_build_trtexec(req, trtexec, log_lines)
    finally:
        with open(req["log"], "w", encoding="utf-8") as fh:
            fh.write("\n".join(log_lines) + "\n")
    if not os.path.exists(req["engine"]):
        raise AgentError("build", "TensorRT did not write an engine", "see the builder log")
    built.update(gpu=gpu, sha256=sha256_of(req["engine"]), size_bytes=os.path.getsize(req["engine"]),
                 build_seconds=round(time.perf_counter() - started, 2))  # fmt: skip
    return built


def trt_build_api(req, lines):
    """The host's TensorRTVersionPolicy decided the flags for this device's version; they are applied
    by name here, so the agent holds no per-version knowledge of its own."""
    import tensorrt as trt

    class Logger(trt.ILogger):
        def __init__(self):
            trt.ILogger.__init__(self)

        def log(self, severity, msg):
            lines.append("[{}] {}".format(getattr(severity, "name", severity), msg))

    logger = Logger()
    builder = trt.Builder(logger)
    flags = 0
    for name in req["network_flags"]:
        flags |= 1 << int(getattr(trt.NetworkDefinitionCreationFlag, name))
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(req["onnx"]):
        errors = [str(parser.get_error(i)) for i in range(parser.num_errors)]
        lines.extend("[PARSER] " + e for e in errors)
        raise AgentError(
            "build",
            "TensorRT's ONNX parser rejected the model: " + (errors[0] if errors else "unknown error"),
            "see the build log",
        )
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(req["workspace_mib"]) << 20)
    for name in req["builder_flags_set"]:
        config.set_flag(getattr(trt.BuilderFlag, name))
    for name in req["builder_flags_clear"]:
        config.clear_flag(getattr(trt.BuilderFlag, name))
    inp = network.get_input(0)
    chw = tuple(int(d) for d in tuple(inp.shape)[1:])
    if any(int(d) < 0 for d in tuple(inp.shape)):
        b = req["batch"]
        profile = builder.create_optimization_profile()
        profile.set_shape(inp.name, (b["min"],) + chw, (b["opt"],) + chw, (b["max"],) + chw)
        config.add_optimization_profile(profile)
    cache_path = req["timing_cache"]
    blob = b""
    if os.path.exists(cache_path):
        with open(cache_path, "rb") as fh:
            blob = fh.read()
    if not config.set_timing_cache(config.create_timing_cache(blob), False):
        lines.append("[edgeattn] the timing cache does not match this GPU/TensorRT; starting a new one")
        blob = b""
        config.set_timing_cache(config.create_timing_cache(b""), False)
    plan = builder.build_serialized_network(network, config)
    if plan is None:
        raise AgentError("build", "TensorRT could not build the engine", "see the build log")
    write_atomic(req["engine"], memoryview(plan))
    write_atomic(cache_path, memoryview(config.get_timing_cache().serialize()))
    return {"builder": "tensorrt python api", "tensorrt": str(trt.__version__), "strongly_typed": bool(req["strongly_typed"]),
            "timing_cache_reused": bool(blob)}  # fmt: skip


def trt_build_trtexec(req, trtexec, lines):
    version = trtexec_version(trtexec) or "?"
    b, chw = req["batch"], "x".join(str(d) for d in req["chw"])
    # A bare number is MiB in every trtexec (8.6 parses no unit suffix; 10.0 reads one as bytes).
    args = [trtexec, "--onnx=" + req["onnx"], "--saveEngine=" + req["engine"],
            "--memPoolSize=workspace:{}".format(int(req["workspace_mib"])), "--timingCacheFile=" + req["timing_cache"]]  # fmt: skip
    args += list(req["trtexec_flags"])  # the host's flags for this trtexec's version
    if b.get("dynamic"):
        for key, flag in (("min", "--minShapes"), ("opt", "--optShapes"), ("max", "--maxShapes")):
            args.append("{}={}:{}x{}".format(flag, req["input_name"], b[key], chw))
    lines.append("$ " + " ".join(args))
    proc = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    lines.extend(proc.stdout.decode(errors="replace").splitlines())
    if proc.returncode != 0:
        tail = [ln for ln in lines if "ERROR" in ln][-1:] or lines[-1:]
        raise AgentError(
            "build",
            "trtexec failed (exit {}): {}".format(proc.returncode, tail[0][:300] if tail else ""),
            "see the build log",
        )
    return {"builder": "trtexec", "tensorrt": version, "strongly_typed": bool(req["strongly_typed"]),
            "timing_cache_reused": None}  # fmt: skip


def write_atomic(path, data):
    tmp = f"{path}.part.{os.getpid()}"
    with open(tmp, "wb") as fh:
        fh.write(data)
    os.replace(tmp, path)


# --------------------------------------------------------------------------------------- protocol
def read_exact(stream, n):
    chunks, left = [], n
    while left > 0:
        chunk = stream.read(left)
        if not chunk:
            raise EOFError("the host closed the connection mid-message")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def read_frame(stream):
    line = stream.readline()
    if not line:
        return None, b""
    header = json.loads(line.decode("utf-8"))
    return header, read_exact(stream, int(header.get("nbytes", 0)))


def write_frame(stream, header, payload=b""):
    header = dict(header, nbytes=len(payload))
    stream.write(json.dumps(header).encode("utf-8") + b"\n")
    if payload:
        stream.write(payload)
    stream.flush()


def own_group():
    """Our process group when it holds only this job (sshd/`start_new_session` made it), else None."""
    try:
        pgid = os.getpgid(0)
        return pgid if os.getsid(0) == pgid else None
    except (AttributeError, OSError):
        return None


class Watchdog(threading.Thread):
    """Kills this job's processes when one request runs past its time limit (the host gave up, or died
    without a word), and when the host has been silent far longer (a connection that hangs open; a
    closed one ends the agent at once through end-of-input)."""

    def __init__(self, limit_s):
        threading.Thread.__init__(self, daemon=True)
        self.limit_s = float(limit_s)
        self.idle_limit_s = max(4 * self.limit_s, 3600.0)
        self.busy_since, self.idle_since = None, time.monotonic()

    def busy(self):
        self.busy_since = time.monotonic()

    def idle(self):
        self.busy_since, self.idle_since = None, time.monotonic()

    def run(self):
        while True:
            time.sleep(0.5)
            now, since = time.monotonic(), self.busy_since
            if (since is not None and now - since > self.limit_s) or (
                since is None and now - self.idle_since > self.idle_limit_s
            ):
                group = own_group()
                if group is not None:
                    os.killpg(group, signal.SIGKILL)
                os.kill(os.getpid(), signal.SIGKILL)


def decode_array(header, payload):
    import numpy as np

    spec = header["array"]
    return np.frombuffer(payload, dtype=np.dtype(spec["dtype"])).reshape(spec["shape"])


def encode_array(array):
    import numpy as np

    array = np.ascontiguousarray(array)
    return {"dtype": str(array.dtype), "shape": list(array.shape)}, array.tobytes()


class Server:
    """The `serve` loop's state: opened artifacts by handle."""

    def __init__(self):
        self.opened = {}
        self.next_handle = 1

    def op_open(self, req, payload):
        path, manifest = req["path"], req["manifest"]
        digest = check_shipped(path, manifest.get("sha256"), manifest.get("artifact"))
        runtime = req["runtime"]
        if runtime not in BACKENDS:
            raise AgentError(
                "input",
                f"the device agent cannot run {runtime} artifacts",
                "use one of: " + ", ".join(sorted(BACKENDS)),
            )
        rss_before = rss_mb()
        start = time.perf_counter()
        backend = BACKENDS[runtime](path, manifest, req.get("options") or {})
        load_ms = (time.perf_counter() - start) * 1000
        handle = self.next_handle
        self.next_handle += 1
        self.opened[handle] = {"backend": backend, "manifest": manifest}
        return {"handle": handle, "runtime": backend.runtime, "kind": backend.kind, "sha256": digest,
                "min_batch": backend.min_batch, "max_batch": backend.max_batch, "load_ms": load_ms,
                "rss_before_mb": rss_before, "rss_loaded_mb": rss_mb()}, b""  # fmt: skip

    def get(self, req):
        try:
            return self.opened[int(req["handle"])]
        except (KeyError, ValueError):
            raise AgentError(
                "internal", "no artifact is open as handle {}".format(req.get("handle"))
            ) from None

    def op_predict(self, req, payload):
        import numpy as np

        opened = self.get(req)
        backend, manifest = opened["backend"], opened["manifest"]
        images = decode_array(req, payload)
        step = min(int(req.get("batch_size") or 64), backend.max_batch or 1 << 30)
        outs = []
        for i in range(0, len(images), step):
            x = prepare(images[i : i + step], manifest["input_spec"], bool(manifest.get("image_input")))
            if backend.max_batch and len(x) < (backend.min_batch or backend.max_batch):
                pad = np.repeat(x[-1:], (backend.min_batch or backend.max_batch) - len(x), axis=0)
                outs.append(backend.run(np.concatenate([x, pad]))[: len(x)])
            else:
                outs.append(backend.run(x))
        logits = np.concatenate(outs) if outs else np.zeros((0, int(manifest["num_classes"])), np.float32)
        header, data = encode_array(logits.astype(np.float32))
        return {"array": header}, data

    def op_run(self, req, payload):
        backend = self.get(req)["backend"]
        header, data = encode_array(backend.run(decode_array(req, payload)))
        return {"array": header}, data

    def op_bench(self, req, payload):
        return bench(self.get(req), req["settings"]), b""

    def op_time_placement(self, req, payload):
        return time_placement(req), b""

    def op_close(self, req, payload):
        opened = self.opened.pop(int(req["handle"]), None)
        if opened is not None:
            opened["backend"].close()
        return {}, b""

    def op_trt_build(self, req, payload):
        return trt_build(req["build"]), b""

    def op_facts(self, req, payload):
        return facts(busy=bool(req.get("busy"))), b""


def configure(threads, pin):
    """Thread count for every runtime (set before any runtime starts), optional pinning (Linux)."""
    if threads:
        for var in THREAD_ENV:
            os.environ[var] = str(threads)
    if pin and threads and hasattr(os, "sched_setaffinity"):
        cpus = sorted(os.sched_getaffinity(0))[: int(threads)]
        os.sched_setaffinity(0, cpus)
        return cpus
    return None


def serve(args):
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # anything a runtime prints goes to stderr, never into the protocol stream
    inp = sys.stdin.buffer
    limit = float(args.get("--timeout", 1800))
    hello = {"op": "hello", "protocol": PROTOCOL, "pid": os.getpid(), "pgid": own_group(),
             "python": platform.python_version(), "executable": sys.executable}  # fmt: skip
    threads = int(args["--threads"]) if args.get("--threads") else None
    hello["pinned_cpus"] = configure(threads, "--pin" in args)  # before numpy starts its thread pool
    try:
        import numpy  # noqa: F401
    except Exception as exc:  # noqa: BLE001
        error = AgentError(
            "missing_numpy",
            f"numpy is not installed for {sys.executable} on this device ({str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__})",
            f"install it there: {sys.executable} -m pip install numpy",
        )
        write_frame(out, dict(hello, ok=False, error=error.to_dict()))
        return 3
    write_frame(out, dict(hello, ok=True))
    watchdog = Watchdog(limit)
    watchdog.start()
    server = Server()
    while True:
        try:
            req, payload = read_frame(inp)
        except (EOFError, ValueError):
            break
        if req is None or req.get("op") == "exit":
            break
        watchdog.busy()
        handler = getattr(server, "op_" + str(req.get("op")), None)
        try:
            if handler is None:
                raise AgentError(
                    "internal", "unknown request {!r} (host and agent disagree)".format(req.get("op"))
                )
            resp, data = handler(req, payload)
            resp, data = dict(resp, ok=True), data
        except AgentError as exc:
            resp, data = {"ok": False, "error": exc.to_dict()}, b""
        except MemoryError:
            resp, data = (
                {"ok": False, "error": AgentError("oom", "the device ran out of memory").to_dict()},
                b"",
            )
        except Exception as exc:  # noqa: BLE001  reported to the host, which shows one line
            problem = "{}: {}".format(
                type(exc).__name__, str(exc).strip().splitlines()[0][:300] if str(exc).strip() else ""
            )
            resp, data = (
                {
                    "ok": False,
                    "error": {
                        "kind": "internal",
                        "problem": problem,
                        "fix": None,
                        "traceback": traceback.format_exc(),
                    },
                },
                b"",
            )
        write_frame(out, resp, data)
        watchdog.idle()
    for opened in server.opened.values():
        opened["backend"].close()
    return 0


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    if sys.version_info < MIN_PYTHON:
        sys.stderr.write(f"edgeattn-agent: Python {platform.python_version()} is too old (needs 3.8+)\n")
        return 4
    command = argv[0] if argv else ""
    if command == "facts":
        sys.stdout.write(json.dumps(facts(busy="--busy" in argv)) + "\n")
        return 0
    if command == "serve":
        args, i = {}, 1
        while i < len(argv):
            if argv[i] == "--pin":
                args["--pin"] = True
                i += 1
            else:
                args[argv[i]] = argv[i + 1]
                i += 2
        return serve(args)
    sys.stderr.write("usage: agent.py facts [--busy] | serve [--timeout S] [--threads N] [--pin]\n")
    return 2


if __name__ == "__main__":
    sys.exit(main())
