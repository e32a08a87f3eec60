"""The host's side of one `agent.py serve` process on a device: framed requests, a time limit per
request, and on any failure a kill of the job's whole process group there.

A frame is one JSON header line and `nbytes` raw bytes (arrays travel as raw bytes with dtype and
shape in the header). The agent's first frame says hello (its pid and process group) or why it
cannot serve (numpy missing). A request that runs past the device timeout kills the job on the
device and raises one `DeviceError`; a job that dies says how (exit 137: killed, usually out of
memory).
"""

from __future__ import annotations

import collections
import json
import queue
import threading
from typing import TYPE_CHECKING, Any

import numpy as np

from edgeattn.errors import DeviceError

if TYPE_CHECKING:
    from edgeattn.device.device import Device

HELLO_TIMEOUT_S = 180.0  # numpy + Python start on a slow board
GRACE_S = 15.0  # the agent's own watchdog fires this long after the host's timeout


def encode_array(array: np.ndarray) -> tuple[dict[str, Any], bytes]:
    array = np.ascontiguousarray(array)
    return {"dtype": str(array.dtype), "shape": list(array.shape)}, array.tobytes()


def decode_array(header: dict[str, Any], payload: bytes) -> np.ndarray:
    spec = header["array"]
    return np.frombuffer(payload, dtype=np.dtype(spec["dtype"])).reshape(spec["shape"]).copy()


class AgentSession:
    """One agent process on `device`; `request` sends a frame and waits for its answer."""

    def __init__(self, device: Device, *, threads: int | None = None, pin: bool = False) -> None:
        self.device = device
        self.timeout = float(device.config.timeout)
        args = ["serve", "--timeout", f"{self.timeout + GRACE_S:.0f}"]
        if threads:
            args += ["--threads", str(int(threads))]
        if pin:
            args.append("--pin")
        self.proc = device.transport.popen(device.agent_script(*args))
        self.stderr_tail: collections.deque[str] = collections.deque(maxlen=40)
        self.frames: queue.Queue[tuple[dict[str, Any], bytes] | None] = queue.Queue()
        self.pid, self.pgid = 0, None
        self.closed = False
        self._threads = [
            threading.Thread(target=self._read_frames, daemon=True),
            threading.Thread(target=self._read_stderr, daemon=True),
        ]
        for t in self._threads:
            t.start()
        hello = self._receive(HELLO_TIMEOUT_S, "starting the device agent", limit=self.timeout)
        self.pid, self.pgid = int(hello.get("pid") or 0), hello.get("pgid")
        self.python = hello.get("python")
        self.pinned_cpus = hello.get("pinned_cpus")
        if not hello.get("ok"):
            self._stop()
            raise device.agent_error(hello.get("error") or {}, "starting the device agent")

    # --------------------------------------------------------------------------------- reading
    def _read_frames(self) -> None:
        stream = self.proc.stdout
        assert stream is not None
        started = False
        try:
            while True:
                line = stream.readline()
                if not line:
                    break
                try:
                    header = json.loads(line.decode("utf-8"))
                except ValueError:
                    if started:
                        raise
                    # a login script that prints on non-interactive shells: not ours, keep reading
                    self.stderr_tail.append(f"(stdout before the agent started) {line[:200]!r}")
                    continue
                started = True
                n = int(header.get("nbytes", 0))
                payload = stream.read(n) if n else b""
                if len(payload) < n:
                    break
                self.frames.put((header, payload))
        except (ValueError, OSError):
            pass
        self.frames.put(None)

    def _read_stderr(self) -> None:
        stream = self.proc.stderr
        assert stream is not None
        for raw in iter(stream.readline, b""):
            self.stderr_tail.append(raw.decode(errors="replace").rstrip())

    def _receive(self, timeout: float, what: str, limit: float | None = None) -> dict[str, Any]:
        try:
            item = self.frames.get(timeout=min(timeout, limit) if limit else timeout)
        except queue.Empty:
            waited = min(timeout, limit) if limit else timeout
            self._stop()
            raise DeviceError(
                f"{what} on {self.device.name} took longer than {waited:.0f} s; its processes there were stopped",
                "raise --device-timeout (recipe: the device's timeout), or use fewer --iters / a shorter --seconds",
            ) from None
        if item is None:
            self.frames.put(None)  # the end stays visible to later calls
            returncode = self._wait_exit()
            self.closed = True
            raise self.device.died(returncode, "\n".join(self.stderr_tail), what)
        header, payload = item
        header["_payload"] = payload
        return header

    def _wait_exit(self) -> int:
        try:
            return self.proc.wait(timeout=30)
        except Exception:  # noqa: BLE001  still running after closing its output: stop it
            self._stop()
            return self.proc.returncode if self.proc.returncode is not None else -9

    # --------------------------------------------------------------------------------- requests
    def request(
        self, header: dict[str, Any], payload: bytes = b"", *, what: str
    ) -> tuple[dict[str, Any], bytes]:
        """Send one request; its answer (header, payload), or DeviceError (timeout, death, agent error)."""
        if self.closed:
            raise DeviceError(f"the device session for {what} was already closed", "rerun")
        frame = json.dumps(dict(header, nbytes=len(payload))).encode("utf-8") + b"\n"
        try:
            assert self.proc.stdin is not None
            self.proc.stdin.write(frame)
            if payload:
                self.proc.stdin.write(payload)
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            pass  # the agent is gone: its exit status and stderr say why (read by _receive)
        try:
            answer = self._receive(self.timeout, what)
        except DeviceError:
            raise
        except BaseException:  # Ctrl-C while the device works: stop the job there, not just here
            self._stop()
            raise
        data = answer.pop("_payload", b"")
        if not answer.get("ok"):
            raise self.device.agent_error(answer.get("error") or {}, what)
        return answer, data

    def request_array(self, header: dict[str, Any], array: np.ndarray, *, what: str) -> np.ndarray:
        spec, payload = encode_array(array)
        answer, data = self.request({**header, "array": spec}, payload, what=what)
        return decode_array(answer, data)

    # --------------------------------------------------------------------------------- ending
    def _stop(self) -> None:
        """Kill the job on the device (its process group), then the local client."""
        if self.pid:
            self.device.transport.kill_group(self.pgid, self.pid)
        if self.proc.poll() is None:
            self.proc.kill()
        try:
            self.proc.wait(timeout=30)
        except Exception:  # noqa: BLE001
            pass
        self.closed = True

    def close(self) -> None:
        """Ask the agent to exit; stop it when it does not."""
        if self.closed:
            return
        self.closed = True
        try:
            assert self.proc.stdin is not None
            self.proc.stdin.write(json.dumps({"op": "exit", "nbytes": 0}).encode() + b"\n")
            self.proc.stdin.close()
        except (BrokenPipeError, OSError, ValueError):
            pass
        try:
            self.proc.wait(timeout=30)
        except Exception:  # noqa: BLE001
            self.closed = False
            self._stop()
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()
