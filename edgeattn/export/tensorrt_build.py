"""Build a TensorRT engine from an ONNX file: ONNX path + `BuildOptions` in, engine + facts out.

Independent of checkpoints and manifests, so it can run wherever TensorRT and a GPU are (this machine,
or a remote device). It follows NVIDIA's documented Python API and asks the installed version's
`TensorRTVersionPolicy` for everything that differs between 8.6, 10.x and 11.x:

- `trt.Builder(logger)`; `builder.create_network(flags)` with the policy's network flags
  (8.6: EXPLICIT_BATCH; 10.x: STRONGLY_TYPED for INT8 Q/DQ; 11.x: always STRONGLY_TYPED);
- `trt.OnnxParser(network, logger).parse_from_file(...)`, every parser error kept;
- `builder.create_builder_config()`, `set_memory_pool_limit(MemoryPoolType.WORKSPACE, ...)`, the
  policy's builder flags (weak typing: FP16 / INT8+FP16; strong typing: none) and FP32 without TF32;
- an optimization profile (`set_shape(input, min, opt, max)`) for a dynamic batch;
- a timing cache: `create_timing_cache(bytes)` (None for a blob this TensorRT rejects: a fresh cache is
  used) and `set_timing_cache(cache, ignore_mismatch=False)` (False for another GPU/version: fresh),
  saved with `serialize()` after the build;
- `builder.build_serialized_network(network, config)`, the plan written atomically, the builder's
  log kept beside the engine.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgeattn.errors import GateFailure, UnavailableError
from edgeattn.export.tensorrt_versions import gpu_runs, policy_for
from edgeattn.fileio import atomic_output, write_text
from edgeattn.runtime.cuda import device_facts
from edgeattn.runtime.trt_runner import INSTALL_HINT, require_tensorrt_gpu


@dataclass(frozen=True)
class BuildOptions:
    precision: str  # fp32 | fp16 | int8 (the ONNX already carries FP16 types / Q/DQ where needed)
    strongly_typed: bool
    profile: tuple[int, int, int] | None = None  # (min, opt, max) batch for a dynamic batch input
    workspace_mib: int = 1024
    timing_cache: Path | None = None
    verbose_log: bool = False
    log_path: Path | None = None  # default: <engine>.build.log


def log_path_for(engine: Path) -> Path:
    return engine.with_name(engine.name + ".build.log")


def _make_logger(trt: Any, verbose: bool) -> Any:
    """A TensorRT ILogger that keeps every message (the builder log written beside the engine)."""

    class KeepingLogger(trt.ILogger):
        def __init__(self) -> None:
            trt.ILogger.__init__(self)
            self.lines: list[str] = []
            self.keep_up_to = trt.ILogger.Severity.VERBOSE if verbose else trt.ILogger.Severity.INFO

        def log(self, severity: Any, msg: str) -> None:
            if int(severity) <= int(self.keep_up_to):
                self.lines.append(f"[{getattr(severity, 'name', severity)}] {msg}")

    return KeepingLogger()


def _flags(enum: Any, names: tuple[str, ...]) -> list[Any]:
    return [getattr(enum, name) for name in names]


def _load_timing_cache(config: Any, path: Path | None, lines: list[str]) -> tuple[Any, bool]:
    """(cache set on `config`, whether the stored blob was reused)."""
    blob = path.read_bytes() if path is not None and path.exists() else b""
    cache = config.create_timing_cache(blob) if blob else None
    if blob and cache is None:
        lines.append(f"[edgeattn] timing cache {path} was rejected by this TensorRT; starting a new one")
    reused = cache is not None
    if cache is None:
        cache = config.create_timing_cache(b"")
    # ignore_mismatch=False: a cache from another GPU or TensorRT version is refused, and the build
    # starts from an empty one (which is then saved over the stale file).
    if not config.set_timing_cache(cache, False):
        lines.append(f"[edgeattn] timing cache {path} does not match this GPU/TensorRT; starting a new one")
        cache, reused = config.create_timing_cache(b""), False
        config.set_timing_cache(cache, False)
    return cache, reused


def build_engine(onnx_path: Path, engine_path: Path, options: BuildOptions) -> dict[str, Any]:
    """Build and serialize the engine for `onnx_path` with the installed TensorRT on GPU 0."""
    trt = require_tensorrt_gpu()
    version = str(trt.__version__)
    policy = policy_for(version)
    gpu = device_facts(0)
    cc = tuple(int(p) for p in gpu["compute_capability"].split("."))
    if not gpu_runs(options.precision, cc):
        raise UnavailableError(
            f"{gpu['device']} (compute capability {gpu['compute_capability']}) has no {options.precision.upper()} "
            "support in TensorRT",
            f"build --precision fp32 (or fp16 where supported), or use a GPU that runs {options.precision}; {INSTALL_HINT}",
        )
    strongly_typed = policy.strongly_typed(options.precision, options.strongly_typed)
    logger = _make_logger(trt, options.verbose_log)
    log_path = options.log_path or log_path_for(engine_path)
    started = time.perf_counter()
    network_flags = policy.network_flags(strongly_typed)
    set_flags, clear_flags = policy.builder_flags(options.precision, strongly_typed)
    try:
        builder = trt.Builder(logger)
        flags = 0
        for flag in _flags(trt.NetworkDefinitionCreationFlag, network_flags):
            flags |= 1 << int(flag)
        network = builder.create_network(flags)
        parser = trt.OnnxParser(network, logger)
        if not parser.parse_from_file(str(onnx_path)):
            errors = [str(parser.get_error(i)) for i in range(parser.num_errors)]
            logger.lines += [f"[PARSER] {e}" for e in errors]
            raise GateFailure(
                f"TensorRT {version}'s ONNX parser rejected {onnx_path.name}: {errors[0] if errors else 'unknown error'}",
                f"see {log_path}; `edgeattn check tensorrt {onnx_path} --tensorrt-version {version}` lists what it checks",
            )

        config = builder.create_builder_config()
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(options.workspace_mib) << 20)
        for flag in _flags(trt.BuilderFlag, set_flags):
            config.set_flag(flag)
        for flag in _flags(trt.BuilderFlag, clear_flags):
            config.clear_flag(flag)

        inp = network.get_input(0)
        chw = tuple(int(d) for d in tuple(inp.shape)[1:])
        if any(int(d) < 0 for d in tuple(inp.shape)):
            lo, opt, hi = options.profile or (1, 1, 1)
            profile = builder.create_optimization_profile()
            profile.set_shape(inp.name, (lo, *chw), (opt, *chw), (hi, *chw))
            config.add_optimization_profile(profile)

        cache, reused = _load_timing_cache(config, options.timing_cache, logger.lines)
        plan = builder.build_serialized_network(network, config)
        if plan is None:
            raise GateFailure(
                f"TensorRT {version} could not build the engine from {onnx_path.name}", f"see {log_path}"
            )
        with atomic_output(engine_path) as tmp:
            tmp.write_bytes(memoryview(plan))
        if options.timing_cache is not None:
            with atomic_output(options.timing_cache) as tmp:
                tmp.write_bytes(memoryview(config.get_timing_cache().serialize()))
    finally:
        write_text(log_path, "\n".join(logger.lines) + "\n")
    return {
        "tensorrt": version,
        "tensorrt_policy": policy.label,
        **gpu,
        "strongly_typed": bool(strongly_typed),
        "network_flags": list(network_flags),
        "builder_flags": list(set_flags),
        "builder_flags_cleared": list(clear_flags),
        "workspace_mib": int(options.workspace_mib),
        "timing_cache": str(options.timing_cache) if options.timing_cache else None,
        "timing_cache_reused": bool(reused),
        "builder_log": log_path.name,
        "build_seconds": round(time.perf_counter() - started, 2),
    }
