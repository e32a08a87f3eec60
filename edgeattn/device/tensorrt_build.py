"""A TensorRT engine built on the device it will run on (`export --target tensorrt --device URL`).

An engine is valid only for the GPU and TensorRT version that built it, so the host copies the
validated ONNX to the device, the agent builds the engine there (TensorRT Python API, else `trtexec`
from PATH or JetPack's /usr/src/tensorrt/bin), and the host fetches the engine (sha256 checked) and
the builder log back beside the ONNX. A device without TensorRT is one line saying what to install
(exit 2); a model TensorRT rejects is a failed build (exit 1, with the log).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgeattn.device.config import DeviceConfig
from edgeattn.device.device import open_device
from edgeattn.device.facts import summary
from edgeattn.device.transport import q
from edgeattn.errors import DeviceError, EdgeAttnError
from edgeattn.fileio import atomic_output, sha256_of


def build_on_device(
    device: DeviceConfig,
    onnx_path: Path,
    engine_path: Path,
    log_path: Path,
    *,
    precision: str,
    batch: dict[str, Any],
    chw: tuple[int, ...],
    input_name: str,
    workspace_mib: int,
    instructions: dict[str, Any],
) -> dict[str, Any]:
    """Build `engine_path` from `onnx_path` on `device`; the engine's manifest details. `instructions`
    are the host's decisions for the device's TensorRT version (network and builder flag names, strong
    typing, trtexec precision flags: `TensorRTVersionPolicy`), which the agent applies as they are."""
    with open_device(device) as dev:
        onnx_sha = sha256_of(onnx_path)
        remote_onnx = dev.ship(onnx_path, onnx_sha)
        folder = (
            f"{dev.workdir}/engines/{onnx_sha[:24]}-{precision}-{batch['min']}-{batch['opt']}-{batch['max']}"
        )
        dev.transport.run(f"mkdir -p {q(folder)}", timeout=60, what="preparing the engine folder")
        request = {
            "onnx": remote_onnx,
            "engine": f"{folder}/{engine_path.name}",
            "log": f"{folder}/{engine_path.name}.build.log",
            "timing_cache": f"{dev.workdir}/tensorrt-timing.cache",
            "precision": precision,
            "batch": batch,
            "chw": list(chw),
            "input_name": input_name,
            "workspace_mib": int(workspace_mib),
            **instructions,
        }
        session = dev.session()
        try:
            built, _ = session.request(
                {"op": "trt_build", "build": request}, what="building the TensorRT engine"
            )
        except EdgeAttnError as exc:
            if _fetch_log(dev, request["log"], log_path):
                exc.fix = f"{exc.fix + '; ' if exc.fix else ''}the builder log is in {log_path}"
            raise
        finally:
            session.close()
        with atomic_output(engine_path) as tmp:
            dev.fetch(request["engine"], tmp)
            if sha256_of(tmp) != built["sha256"]:
                raise DeviceError(
                    f"the engine fetched from {dev.name} does not match the sha256 it had there",
                    "rerun the export (the copy was corrupted on the way)",
                )
        _fetch_log(dev, request["log"], log_path)
        facts = dev.block()
    return {
        "tensorrt": built.get("tensorrt"),
        "device": built.get("gpu"),
        "built_on": dev.name,
        "built_on_facts": summary(facts),
        "builder": built.get("builder"),
        "strongly_typed": built.get("strongly_typed"),
        "workspace_mib": int(workspace_mib),
        "timing_cache": request["timing_cache"],
        "timing_cache_reused": built.get("timing_cache_reused"),
        "builder_log": log_path.name,
        "build_seconds": built.get("build_seconds"),
    }


def device_tensorrt_version(device: DeviceConfig) -> str | None:
    """The TensorRT version on `device` (its Python API's, else trtexec's), or None when it has none."""
    with open_device(device) as dev:
        runtimes = dev.block().get("runtimes", {})
    for name in ("tensorrt", "trtexec"):
        found = runtimes.get(name, {})
        if found.get("importable") and found.get("version"):
            return str(found["version"])
    return None


def _fetch_log(dev: Any, remote: str, local: Path) -> bool:
    """Copy the builder log back when there is one (best effort: the build's own error matters more)."""
    try:
        with atomic_output(local) as tmp:
            dev.fetch(remote, tmp, timeout=120)
    except (EdgeAttnError, OSError, RuntimeError):
        return False
    return True
