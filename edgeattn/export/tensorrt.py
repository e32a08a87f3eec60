"""TensorRT export: a serialized engine built with the TensorRT Python API from the validated ONNX.

The ONNX is always written first, beside the engine (same stem, `.onnx`, with its own manifest), and
validated on onnxruntime exactly like `--target onnx` (FP32 graph for fp32/fp16 engines, the Q/DQ graph
placed for TensorRT for int8). The engine build follows NVIDIA's documented API:

- `trt.Builder(logger)`; `builder.create_network(flags)`: TensorRT 10 networks are always explicit
  batch (the EXPLICIT_BATCH flag is deprecated and ignored), TensorRT 8.x gets it set explicitly;
- `trt.OnnxParser(network, logger).parse_from_file(...)`, parser errors reported;
- `builder.create_builder_config()`, `config.set_memory_pool_limit(MemoryPoolType.WORKSPACE, ...)`;
- FP16: `BuilderFlag.FP16`. INT8: explicit quantization from the Q/DQ graph, no calibrator; TensorRT 10
  builds it as a STRONGLY_TYPED network without precision flags (NVIDIA: "use explicit quantization with
  strong typing; precision-control build flags are not required"), TensorRT 8.x with `BuilderFlag.INT8`;
- an optimization profile (`set_shape(input, min, opt, max)`) for a dynamic batch range;
- a timing cache loaded with `config.create_timing_cache(bytes)` / `set_timing_cache`, and saved after
  the build with `serialize()`, so repeated builds skip tactic timing;
- `builder.build_serialized_network(network, config)`, the plan written atomically, the builder's log
  kept beside the engine (`<engine>.build.log`).

Without TensorRT or a GPU the export stops after the ONNX with `UnavailableError`, whose message names
what is missing, how to install the extra, and the equivalent `trtexec` command.
"""

from __future__ import annotations

import dataclasses
import shlex
import time
from pathlib import Path
from typing import Any

from edgeattn.errors import GateFailure, InputError, UnavailableError
from edgeattn.export.base import EXPORTERS, Exporter, ExportRequest, TargetOption
from edgeattn.export.common import make_manifest, publish_manifest
from edgeattn.export.onnx import ATOL_OPTION, EXPORTER_OPTION, build_onnx, check_onnx_request
from edgeattn.fileio import atomic_output, sha256_of, write_text
from edgeattn.manifest import ArtifactManifest, manifest_path, read_manifest
from edgeattn.runtime.trt_runner import (
    INSTALL_HINT,
    cuda_call,
    import_cudart,
    require_tensorrt_gpu,
    tensorrt_major,
)

TIMING_CACHE_NAME = "tensorrt-timing.cache"


def onnx_path_for(engine: Path) -> Path:
    return engine.with_suffix(".onnx")


def log_path_for(engine: Path) -> Path:
    return engine.with_name(engine.name + ".build.log")


def timing_cache_for(req: ExportRequest) -> Path:
    given = req.options.get("timing_cache")
    return Path(given) if given else req.out.parent / TIMING_CACHE_NAME


def _shape(batch: int, chw: tuple[int, ...]) -> str:
    return "x".join(str(d) for d in (batch, *chw))


def trtexec_command(req: ExportRequest, onnx_path: Path) -> str:
    """The `trtexec` call that builds the same engine (TensorRT 10 flags)."""
    spec = req.handle.input_spec
    chw = (spec.channels, *spec.size)
    args = [
        "trtexec",
        f"--onnx={onnx_path}",
        f"--saveEngine={req.out}",
        f"--memPoolSize=workspace:{int(req.options['workspace_mib'])}M",
        f"--timingCacheFile={timing_cache_for(req)}",
    ]
    if req.precision == "fp16":
        args.append("--fp16")
    if req.precision == "int8":
        args.append("--stronglyTyped")  # explicit Q/DQ quantization (TensorRT 8.x: --int8 instead)
    if req.batch.dynamic:
        args += [
            f"--minShapes=input:{_shape(req.batch.min, chw)}",
            f"--optShapes=input:{_shape(req.batch.opt, chw)}",
            f"--maxShapes=input:{_shape(req.batch.max, chw)}",
        ]
    return shlex.join(args)


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


def build_engine(req: ExportRequest, onnx_path: Path, engine_path: Path) -> dict[str, Any]:
    """Build and serialize the engine for `req` from `onnx_path` (TensorRT + GPU required)."""
    trt = require_tensorrt_gpu()
    major = tensorrt_major(trt)
    logger = _make_logger(trt, bool(req.options.get("verbose_log")))
    log_path = log_path_for(engine_path)
    cache_path = timing_cache_for(req)
    strongly_typed = req.options.get("strongly_typed")
    if strongly_typed is None:
        strongly_typed = req.precision == "int8" and major >= 10
    started = time.perf_counter()
    try:
        builder = trt.Builder(logger)
        flags = 0
        if major < 10:
            flags |= 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
        if strongly_typed:
            flags |= 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
        network = builder.create_network(flags)
        parser = trt.OnnxParser(network, logger)
        if not parser.parse_from_file(str(onnx_path)):
            errors = [str(parser.get_error(i)) for i in range(parser.num_errors)]
            logger.lines += [f"[PARSER] {e}" for e in errors]
            raise GateFailure(
                f"TensorRT's ONNX parser rejected {onnx_path.name}: {errors[0] if errors else 'unknown error'}",
                f"see {log_path}",
            )

        config = builder.create_builder_config()
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(req.options["workspace_mib"]) << 20)
        if req.precision == "fp16":
            config.set_flag(trt.BuilderFlag.FP16)
        if req.precision == "int8" and not strongly_typed:
            config.set_flag(trt.BuilderFlag.INT8)  # TensorRT 8.x: required for Q/DQ layers
            config.set_flag(trt.BuilderFlag.FP16)  # and lets the non-quantized layers run in FP16

        inp = network.get_input(0)
        chw = tuple(int(d) for d in tuple(inp.shape)[1:])
        if any(int(d) < 0 for d in tuple(inp.shape)):
            profile = builder.create_optimization_profile()
            profile.set_shape(inp.name, (req.batch.min, *chw), (req.batch.opt, *chw), (req.batch.max, *chw))
            config.add_optimization_profile(profile)

        cache_blob = cache_path.read_bytes() if cache_path.exists() else b""
        cache = config.create_timing_cache(cache_blob)
        # ignore_mismatch=False: a cache written by another GPU or TensorRT version is refused, and the
        # build starts from an empty cache (which is then saved over the stale one).
        if not config.set_timing_cache(cache, False):
            logger.lines.append(
                f"[edgeattn] timing cache {cache_path} does not match this GPU/TensorRT; starting a new one"
            )
            cache_blob = b""
            config.set_timing_cache(config.create_timing_cache(b""), False)

        plan = builder.build_serialized_network(network, config)
        if plan is None:
            raise GateFailure(f"TensorRT could not build the engine from {onnx_path.name}", f"see {log_path}")
        with atomic_output(engine_path) as tmp:
            tmp.write_bytes(memoryview(plan))
        with atomic_output(cache_path) as tmp:
            tmp.write_bytes(memoryview(config.get_timing_cache().serialize()))
    finally:
        write_text(log_path, "\n".join(logger.lines) + "\n")
    cudart = import_cudart()
    device = cuda_call(cudart.cudaGetDeviceProperties(0)).name
    device = device.decode(errors="replace").rstrip("\x00") if isinstance(device, bytes) else str(device)
    return {
        "tensorrt": str(trt.__version__),
        "device": device,
        "strongly_typed": bool(strongly_typed),
        "workspace_mib": int(req.options["workspace_mib"]),
        "timing_cache": str(cache_path),
        "timing_cache_reused": bool(cache_blob),
        "builder_log": log_path.name,
        "build_seconds": round(time.perf_counter() - started, 2),
    }


class TensorRTExporter(Exporter):
    name = "tensorrt"
    suffixes = (".engine", ".plan")
    precisions = ("fp32", "fp16", "int8")
    default_precision = "fp16"
    runner = "tensorrt"
    placement = "tensorrt"
    typical_precisions = ("fp16", "int8")
    note = "needs TensorRT + an NVIDIA GPU; elsewhere the ONNX for trtexec is written and the engine skipped"
    options = (
        TargetOption(
            "workspace_mib",
            1024,
            "tensorrt: builder workspace limit in MiB (default 1024).",
            "--workspace-mib",
            int,
        ),
        TargetOption(
            "timing_cache",
            None,
            "tensorrt: timing cache file, loaded and saved (default beside --out).",
            "--timing-cache",
            Path,
        ),
        TargetOption("strongly_typed", None, "None: strongly typed for int8 on TensorRT >= 10."),
        TargetOption(
            "device",
            None,
            "tensorrt: build the engine on this device (ssh://user@host[?python=PATH]) and copy it back.",
            "--device",
            str,
        ),
        TargetOption("ssh_config", None, "tensorrt: ssh config file for --device.", "--ssh-config", Path),
        TargetOption("verbose_log", False, "Keep TensorRT's verbose builder log."),
        EXPORTER_OPTION,
        ATOL_OPTION,
    )

    def _onnx_request(self, req: ExportRequest) -> ExportRequest:
        """The ONNX the engine is built from: FP32 for fp32/fp16 engines (TensorRT lowers precision
        itself), the Q/DQ graph for int8."""
        return dataclasses.replace(
            req,
            target="onnx",
            out=onnx_path_for(req.out),
            precision="int8" if req.precision == "int8" else "fp32",
            options={
                "exporter": req.options["exporter"],
                "fp16_io": False,
                "runtime": "tensorrt",
                "atol": req.options["atol"],
            },
        )

    def check(self, req: ExportRequest) -> None:
        check_onnx_request(req)
        if int(req.options["workspace_mib"]) < 1:
            raise InputError(
                f"workspace {req.options['workspace_mib']} MiB is too small",
                "give --workspace-mib 1 or more (default 1024)",
            )

    def outputs(self, req: ExportRequest) -> list[Path]:
        onnx_path = onnx_path_for(req.out)
        return [req.out, manifest_path(req.out), onnx_path, manifest_path(onnx_path), log_path_for(req.out)]

    def export(self, req: ExportRequest) -> ArtifactManifest:
        onnx_req = self._onnx_request(req)
        onnx_path = onnx_req.out
        with atomic_output(onnx_path) as tmp:
            details = build_onnx(onnx_req, tmp, qdq_runtime="tensorrt")
        publish_manifest(
            onnx_path,
            make_manifest(
                onnx_req,
                versions=("onnxslim",),
                details={**details, "for_target": "tensorrt", "tensorrt_precision": req.precision},
            ),
        )
        command = trtexec_command(req, onnx_path)
        if req.options.get("device") not in (None, "", "local"):
            return self._export_on_device(req, onnx_path, command)
        try:
            require_tensorrt_gpu()
        except UnavailableError as exc:
            raise UnavailableError(
                f"{exc.problem}, so the engine was not built; the TensorRT-ready ONNX was written and validated: {onnx_path}",
                f"{INSTALL_HINT} and rerun this command, or build the engine there with: {command}",
            ) from None
        built = build_engine(req, onnx_path, req.out)
        manifest = make_manifest(
            req,
            versions=("tensorrt", "onnxslim"),
            details={
                **built,
                "onnx": onnx_path.name,
                "onnx_sha256": sha256_of(onnx_path),
                "trtexec_equivalent": command,
            },
        )
        return publish_manifest(req.out, manifest)

    def _export_on_device(self, req: ExportRequest, onnx_path: Path, command: str) -> ArtifactManifest:
        """The engine built on `--device` (edgeattn.device.tensorrt_build), fetched beside its ONNX."""
        from edgeattn.device import device_config
        from edgeattn.device.tensorrt_build import build_on_device
        from edgeattn.errors import DeviceError

        spec = req.handle.input_spec
        try:
            built = build_on_device(
                device_config(req.options["device"], ssh_config=req.options.get("ssh_config")),
                onnx_path, req.out, log_path_for(req.out), precision=req.precision,
                batch={**req.batch.to_dict(), "dynamic": req.batch.dynamic}, chw=(spec.channels, *spec.size),
                input_name=read_manifest(onnx_path).input_name, workspace_mib=int(req.options["workspace_mib"]),
                strongly_typed=req.options.get("strongly_typed"),
            )  # fmt: skip
        except DeviceError as exc:
            raise DeviceError(
                f"{exc.problem}; the TensorRT-ready ONNX was written and validated: {onnx_path}", exc.fix
            ) from None
        details = {
            **built,
            "onnx": onnx_path.name,
            "onnx_sha256": sha256_of(onnx_path),
            "trtexec_equivalent": command,
        }
        return publish_manifest(req.out, make_manifest(req, versions=("onnxslim",), details=details))


EXPORTERS.register("tensorrt", TensorRTExporter())
