"""TensorRT export: the TensorRT-ready ONNX (checked without TensorRT), then the engine where TensorRT runs.

One code path for TensorRT 8.6 (JetPack 6.0), 10.x and 11.x: the target version (`--tensorrt-version`,
default the installed one, else the newest supported) picks a `TensorRTVersionPolicy`
(tensorrt_versions.py) that decides strong typing, where FP16 comes from (BuilderFlag.FP16, or an FP16
ONNX where the network is strongly typed: always on 11.x) and the flags of the `trtexec` command.

1. The ONNX is written beside the engine (same stem, `.onnx`, with its own manifest) and validated on
   onnxruntime like `--target onnx` (FP32 or FP16 graph, or the Q/DQ graph placed for TensorRT).
2. The readiness check (tensorrt_lint.py) lints it against the target version's parser rules; a failure
   stops here (exit 1) naming the nodes, and nothing is written.
3. Where TensorRT and a GPU are present (and are the target version), `tensorrt_build.build_engine`
   builds the engine; its manifest records the TensorRT version and the GPU's compute capability.
   Elsewhere the export stops with `UnavailableError` naming what is missing and the `trtexec` command
   that builds the same engine on the device.
"""

from __future__ import annotations

import dataclasses
import shlex
from pathlib import Path

from edgeattn.errors import DeviceError, InputError, UnavailableError
from edgeattn.export.base import EXPORTERS, Exporter, ExportRequest, TargetOption
from edgeattn.export.common import make_manifest, publish_manifest
from edgeattn.export.onnx import (
    ATOL_OPTION,
    EXPORTER_OPTION,
    FP16_IO_OPTION,
    build_onnx,
    check_onnx_request,
)
from edgeattn.export.tensorrt_build import BuildOptions, build_engine, log_path_for
from edgeattn.export.tensorrt_lint import Profile, lint_onnx
from edgeattn.export.tensorrt_versions import (
    TensorRTTarget,
    installed_tensorrt_version,
    policy_for,
    tensorrt_target,
)
from edgeattn.fileio import atomic_output, sha256_of
from edgeattn.manifest import ArtifactManifest, manifest_path
from edgeattn.onnx.graph import INPUT_NAME
from edgeattn.runtime.trt_runner import INSTALL_HINT, require_tensorrt_gpu

TIMING_CACHE_NAME = "tensorrt-timing.cache"


def onnx_path_for(engine: Path) -> Path:
    return engine.with_suffix(".onnx")


def timing_cache_for(req: ExportRequest) -> Path:
    given = req.options.get("timing_cache")
    return Path(given) if given else req.out.parent / TIMING_CACHE_NAME


def profile_of(req: ExportRequest) -> Profile:
    return Profile(req.batch.min, req.batch.opt, req.batch.max)


@dataclasses.dataclass(frozen=True)
class BuildPlan:
    """What the target version makes of one request."""

    target: TensorRTTarget
    strongly_typed: bool
    onnx_precision: str


def plan_for(req: ExportRequest) -> BuildPlan:
    target = tensorrt_target(req.options.get("tensorrt_version"))
    strongly = target.policy.strongly_typed(req.precision, req.options.get("strongly_typed"))
    onnx_precision = target.policy.onnx_precision(req.precision, strongly, bool(req.options.get("fp16_io")))
    return BuildPlan(target, strongly, onnx_precision)


def _shape(batch: int, chw: tuple[int, ...]) -> str:
    return "x".join(str(d) for d in (batch, *chw))


def trtexec_command(req: ExportRequest, onnx_path: Path, plan: BuildPlan | None = None) -> str:
    """The `trtexec` call that builds the same engine with the target TensorRT version."""
    plan = plan or plan_for(req)
    spec = req.handle.input_spec
    chw = (spec.channels, *spec.size)
    args = [
        "trtexec",
        f"--onnx={onnx_path}",
        f"--saveEngine={req.out}",
        # A bare number is MiB in every version (8.6 parses no unit suffix; 10.0 reads one as bytes).
        f"--memPoolSize=workspace:{int(req.options['workspace_mib'])}",
        f"--timingCacheFile={timing_cache_for(req)}",
        *plan.target.policy.trtexec_flags(req.precision, plan.strongly_typed),
    ]
    if req.batch.dynamic:
        args += [
            f"--minShapes=input:{_shape(req.batch.min, chw)}",
            f"--optShapes=input:{_shape(req.batch.opt, chw)}",
            f"--maxShapes=input:{_shape(req.batch.max, chw)}",
        ]
    args.append("--skipInference")
    return shlex.join(args)


class TensorRTExporter(Exporter):
    name = "tensorrt"
    suffixes = (".engine", ".plan")
    precisions = ("fp32", "fp16", "int8")
    default_precision = "fp16"
    runner = "tensorrt"
    placement = "tensorrt"
    typical_precisions = ("fp16", "int8")
    note = "needs TensorRT + an NVIDIA GPU; elsewhere the checked ONNX and the trtexec command are written"
    options = (
        TargetOption(
            "tensorrt_version",
            None,
            "tensorrt: TensorRT version to check and build for, e.g. 8.6 (JetPack 6.0), 10.3, 11 "
            "(default: the installed one, else the newest supported).",
            "--tensorrt-version",
        ),
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
        TargetOption(
            "strongly_typed",
            None,
            "None: the version's choice (8.6 never, 10.x for int8, 11.x always).",
        ),
        TargetOption("verbose_log", False, "Keep TensorRT's verbose builder log."),
        TargetOption(
            "device",
            None,
            "tensorrt: build the engine on this device (ssh://user@host[?python=PATH]), for its TensorRT "
            "version, and copy it back.",
            "--device",
            str,
        ),
        TargetOption("ssh_config", None, "tensorrt: ssh config file for --device.", "--ssh-config", Path),
        EXPORTER_OPTION,
        FP16_IO_OPTION,
        ATOL_OPTION,
    )

    def _onnx_request(self, req: ExportRequest, plan: BuildPlan) -> ExportRequest:
        """The ONNX the engine is built from: FP32 (TensorRT lowers precision itself), FP16 where the
        network is strongly typed or FP16 I/O is asked for, the Q/DQ graph placed for TensorRT for int8."""
        return dataclasses.replace(
            req,
            target="onnx",
            out=onnx_path_for(req.out),
            precision=plan.onnx_precision,
            options={
                "exporter": req.options["exporter"],
                "fp16_io": bool(req.options.get("fp16_io")),
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
        if req.options.get("fp16_io") and req.precision != "fp16":
            raise InputError("--fp16-io needs --precision fp16", "drop --fp16-io or export --precision fp16")
        plan = plan_for(req)  # an unknown version or an impossible strong-typing choice fails here
        if plan.onnx_precision == "fp16" and req.opset < 11:
            raise InputError("FP16 ONNX needs opset 11 or newer", "use the default --opset 17")
        placed_for = req.handle.extra.get("placement") if req.quantized else None
        if placed_for and placed_for != self.placement:
            raise InputError(
                f"this checkpoint was quantized for {placed_for}, whose Q/DQ TensorRT cannot load "
                "(unsigned or per-channel activations)",
                f"quantize the FP32 checkpoint again with --runtime {self.placement}",
            )

    def outputs(self, req: ExportRequest) -> list[Path]:
        onnx_path = onnx_path_for(req.out)
        return [req.out, manifest_path(req.out), onnx_path, manifest_path(onnx_path), log_path_for(req.out)]

    def export(self, req: ExportRequest) -> ArtifactManifest:
        if req.options.get("device") not in (None, "", "local"):
            return self._export_on_device(req)
        plan = plan_for(req)
        onnx_path, command = self._write_onnx(req, plan)
        self._require_build_here(plan, onnx_path, command)
        built = build_engine(
            onnx_path,
            req.out,
            BuildOptions(
                precision=req.precision,
                strongly_typed=plan.strongly_typed,
                profile=(req.batch.min, req.batch.opt, req.batch.max) if req.batch.dynamic else None,
                workspace_mib=int(req.options["workspace_mib"]),
                timing_cache=timing_cache_for(req),
                verbose_log=bool(req.options.get("verbose_log")),
            ),
        )
        return self._publish_engine(req, plan, onnx_path, command, built)

    def _write_onnx(self, req: ExportRequest, plan: BuildPlan) -> tuple[Path, str]:
        """Write, validate and lint the ONNX the engine is built from; returns it and the trtexec command."""
        onnx_req = self._onnx_request(req, plan)
        onnx_path = onnx_req.out
        with atomic_output(onnx_path) as tmp:
            details = build_onnx(onnx_req, tmp, qdq_runtime="tensorrt")
            readiness = lint_onnx(tmp, plan.target, profile_of(req))
            readiness.raise_if_failed(f"the ONNX for {req.out.name}")
        command = trtexec_command(req, onnx_path, plan)
        publish_manifest(
            onnx_path,
            make_manifest(
                onnx_req,
                versions=("onnxslim",),
                details={
                    **details,
                    "for_target": "tensorrt",
                    "tensorrt_precision": req.precision,
                    "tensorrt_readiness": readiness.to_dict(),
                    "trtexec_equivalent": command,
                },
            ),
        )
        return onnx_path, command

    def _export_on_device(self, req: ExportRequest) -> ArtifactManifest:
        """The engine built on `--device` for the TensorRT version found there (the host decides flags
        and strong typing with that version's policy; the device agent only applies them)."""
        from edgeattn.device import device_config
        from edgeattn.device.tensorrt_build import build_on_device, device_tensorrt_version

        device = device_config(req.options["device"], ssh_config=req.options.get("ssh_config"))
        if not req.options.get("tensorrt_version"):
            version = device_tensorrt_version(device)  # None: no TensorRT there (the build says so)
            if version:
                req = dataclasses.replace(req, options={**req.options, "tensorrt_version": version})
        plan = plan_for(req)
        onnx_path, command = self._write_onnx(req, plan)
        policy = plan.target.policy
        set_flags, clear_flags = policy.builder_flags(req.precision, plan.strongly_typed)
        spec = req.handle.input_spec
        try:
            built = build_on_device(
            device, onnx_path, req.out, log_path_for(req.out), precision=req.precision,
            batch={**req.batch.to_dict(), "dynamic": req.batch.dynamic}, chw=(spec.channels, *spec.size),
            input_name=INPUT_NAME, workspace_mib=int(req.options["workspace_mib"]),
            instructions={
                "strongly_typed": plan.strongly_typed,
                "network_flags": list(policy.network_flags(plan.strongly_typed)),
                "builder_flags_set": list(set_flags),
                "builder_flags_clear": list(clear_flags),
                "trtexec_flags": policy.trtexec_flags(req.precision, plan.strongly_typed),
            },
        )  # fmt: skip
        except DeviceError as exc:
            raise DeviceError(
                f"{exc.problem}; the TensorRT-ready ONNX was written and checked: {onnx_path}", exc.fix
            ) from None
        return self._publish_engine(req, plan, onnx_path, command, built)

    def _publish_engine(
        self, req: ExportRequest, plan: BuildPlan, onnx_path: Path, command: str, built: dict
    ) -> ArtifactManifest:
        manifest = make_manifest(
            req,
            versions=("tensorrt", "onnxslim"),
            details={
                **built,
                "fp16_io": bool(req.options.get("fp16_io")),
                "onnx": onnx_path.name,
                "onnx_sha256": sha256_of(onnx_path),
                "onnx_precision": plan.onnx_precision,
                "trtexec_equivalent": command,
            },
        )
        return publish_manifest(req.out, manifest)

    @staticmethod
    def _require_build_here(plan: BuildPlan, onnx_path: Path, command: str) -> None:
        """Stop (exit 2) with the trtexec command where this machine cannot build for the target."""
        written = (
            f"the TensorRT-ready ONNX was written and checked for TensorRT {plan.target.label}: {onnx_path}"
        )
        try:
            require_tensorrt_gpu()
        except UnavailableError as exc:
            raise UnavailableError(
                f"{exc.problem}, so the engine was not built; {written}",
                f"{INSTALL_HINT} and rerun this command, or build the engine there with: {command}",
            ) from None
        installed = installed_tensorrt_version() or "?"
        if plan.target.source == "requested" and policy_for(installed) is not plan.target.policy:
            raise UnavailableError(
                f"TensorRT {installed} is installed here, not {plan.target.version}, so the engine was not built; {written}",
                f"drop --tensorrt-version to build with {installed}, or build on the device with: {command}",
            )


EXPORTERS.register("tensorrt", TensorRTExporter())
