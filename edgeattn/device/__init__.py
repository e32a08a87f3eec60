"""Devices: run, validate and time artifacts on the machine they are deployed to.

A device is named by a URL (`local`, `ssh://[user@]host[:port][?python=PATH]`); its scheme picks a
transport from `TRANSPORTS` (`transport.py`; `local.py`, `ssh.py` register themselves here). The
device needs only Python 3 with numpy and the runtime: the host ships `agent.py` (standard library
+ numpy) and the artifacts, and talks to the agent over the transport's pipes (`session.py`).
`open_device` (`device.py`) is what the stages use; `RemoteRunner` (`runner.py`) is the `Runner` of
an artifact on a device; `facts.py` renders `edgeattn device check`; `tensorrt_build.py` builds a
TensorRT engine on the device.
"""

from edgeattn.device import local, ssh  # noqa: F401  (each registers its transport)
from edgeattn.device.config import SSH_CONFIG_ENV, DeviceConfig, device_config
from edgeattn.device.device import Device, agent_digest, open_device, unsupported_reason
from edgeattn.device.transport import TRANSPORTS, Transport
from edgeattn.device.url import DeviceURL, parse_device_url

__all__ = [
    "SSH_CONFIG_ENV",
    "TRANSPORTS",
    "Device",
    "DeviceConfig",
    "DeviceURL",
    "Transport",
    "agent_digest",
    "device_config",
    "open_device",
    "parse_device_url",
    "unsupported_reason",
]
