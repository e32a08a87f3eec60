"""`RemoteRunner`: the `Runner` interface for an artifact that runs on a device, through its agent.

`predict` ships uint8 images (the agent resizes and normalises them with the manifest's input spec,
exactly like `Runner.prepare`) and gets logits back; `run` ships a prepared float32 batch; `bench`
has the agent time the artifact there, so latency is the device's, not the network's. The artifact is
checked here first (manifest, sha256, readable), then copied once and checked again on the device.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from edgeattn.manifest import read_manifest
from edgeattn.runtime.base import RUNNERS, Runner, artifact_kind

if TYPE_CHECKING:
    from edgeattn.device.device import Device
    from edgeattn.device.session import AgentSession

# Runner options the agent's backends understand (others, e.g. Core ML compute units, do not apply).
AGENT_OPTIONS = ("threads", "graph_optimization", "execution_mode", "providers")


class RemoteRunner(Runner):
    """One artifact opened by the agent of `device` (a fresh agent process unless `session` is given)."""

    def __init__(
        self,
        device: Device,
        path: Path,
        runtime: str | None = None,
        *,
        session: AgentSession | None = None,
        pin: bool = False,
        **options: Any,
    ) -> None:
        from edgeattn.errors import InputError

        path = Path(path)
        if not path.exists():
            raise InputError(f"artifact {path} does not exist", "check the path")
        kind = runtime or artifact_kind(path)
        device.check_kind(kind, path)
        RUNNERS.get(kind).preflight(path)  # manifest, sha256 and a readable file, before any copying
        self.device, self.path = device, path
        self.manifest = read_manifest(path)
        self.input_spec = self.manifest.spec
        self.num_classes = self.manifest.num_classes
        self.precision = self.manifest.precision
        self.image_input = self.manifest.image_input
        self.kind = kind
        self.handle_id: int | None = None
        remote = device.ship(path, self.manifest.sha256)
        self.session = session or device.session(threads=options.get("threads"), pin=pin)
        self.own_session = session is None
        try:
            answer, _ = self.session.request(
                {
                    "op": "open",
                    "path": remote,
                    "runtime": kind,
                    "manifest": self.manifest.to_dict(),
                    "options": {k: options[k] for k in AGENT_OPTIONS if options.get(k) is not None},
                },
                what=f"opening {path.name}",
            )
        except BaseException:
            self.close()
            raise
        self.handle_id = int(answer["handle"])
        self.min_batch, self.max_batch = answer.get("min_batch"), answer.get("max_batch")
        self.device_runtime = answer["runtime"]
        self.runtime = f"{answer['runtime']} on {device.name}"
        self.load_ms = float(answer.get("load_ms") or 0.0)
        self.rss = {"before": answer.get("rss_before_mb"), "loaded": answer.get("rss_loaded_mb")}

    def predict(self, images: Any, batch_size: int = 64) -> np.ndarray:
        """Logits for uint8 (N, 3, H, W) images, preprocessed on the device."""
        array = np.ascontiguousarray(images.numpy() if hasattr(images, "numpy") else images, dtype=np.uint8)
        if len(array) == 0:
            return np.empty((0, self.num_classes), np.float32)
        return self.session.request_array(
            {"op": "predict", "handle": self.handle_id, "batch_size": int(batch_size)},
            array,
            what=f"predicting with {self.path.name}",
        ).astype(np.float32)

    def run(self, x: np.ndarray) -> np.ndarray:
        return self.session.request_array(
            {"op": "run", "handle": self.handle_id},
            np.ascontiguousarray(x, dtype=np.float32),
            what=f"running {self.path.name}",
        )

    def bench(self, settings: dict[str, Any]) -> dict[str, Any]:
        """The agent's timing of this artifact (warm-up, runs, latency statistics per batch size)."""
        answer, _ = self.session.request(
            {"op": "bench", "handle": self.handle_id, "settings": settings}, what=f"timing {self.path.name}"
        )
        return answer

    def info(self) -> dict[str, Any]:
        return {**super().info(), "device": self.device.name}

    def close(self) -> None:
        session, self.session = getattr(self, "session", None), None
        if session is None:
            return
        try:
            if self.handle_id is not None and not session.closed:
                session.request({"op": "close", "handle": self.handle_id}, what=f"closing {self.path.name}")
        finally:
            self.handle_id = None
            if self.own_session:
                session.close()
