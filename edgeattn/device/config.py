"""`DeviceConfig`: where a stage runs its artifacts (`--device`, `--ssh-config`, `--device-timeout`).

One config for every command that runs an artifact (bench, validate, compare, eval, export to
TensorRT) and for each entry of a recipe's `devices:` section, so the flags and keys mean the same
everywhere. `local` (the default) is this machine, served in-process as before.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import Field, field_validator
from pydantic_core import PydanticCustomError

from edgeattn.config import StageConfig
from edgeattn.device.transport import TRANSPORTS
from edgeattn.device.url import DeviceURL, parse_device_url
from edgeattn.errors import InputError

SSH_CONFIG_ENV = "EDGEATTN_SSH_CONFIG"  # CI: its own ssh config (host, port, key, known_hosts)
DEFAULT_TIMEOUT_S = 1800.0


class DeviceConfig(StageConfig):
    """The device that runs (and times) the artifacts, and how to reach it."""

    url: str = Field(
        "local",
        description="Where artifacts run: local, or ssh://[user@]host[:port][?python=PATH] (the device needs Python 3 with numpy and the runtime).",
    )
    ssh_config: Path | None = Field(
        None,
        description=f"ssh config file for the device (default: ~/.ssh/config, or ${SSH_CONFIG_ENV}).",
    )
    timeout: float = Field(
        DEFAULT_TIMEOUT_S,
        gt=0,
        le=7 * 86400,
        description="Seconds one job on the device may take; then its processes there are killed (exit 2).",
    )

    @field_validator("url")
    @classmethod
    def _valid_url(cls, v: str) -> str:
        try:
            url = parse_device_url(v)
            TRANSPORTS.get(url.scheme)
        except InputError as exc:
            raise PydanticCustomError("bad_device", "{msg}", {"msg": exc.one_line()}) from None
        return v.strip() or "local"

    @classmethod
    def build(cls, base=None, flags=None, **values: Any) -> DeviceConfig:  # type: ignore[override]
        """As `StageConfig.build`, but a bad URL is its own one line (what is wrong, an example)."""
        if values.get("url") is not None:
            url = parse_device_url(str(values["url"]))
            TRANSPORTS.get(url.scheme)
        return super().build(base, flags, **values)

    @property
    def parsed(self) -> DeviceURL:
        return parse_device_url(self.url)

    @property
    def in_process(self) -> bool:
        return self.parsed.in_process

    @property
    def name(self) -> str:
        return self.parsed.name

    def ssh_config_file(self) -> Path | None:
        """The ssh config to use: the option, else $EDGEATTN_SSH_CONFIG, else None (ssh's own default)."""
        given = self.ssh_config or (
            Path(os.environ[SSH_CONFIG_ENV]) if os.environ.get(SSH_CONFIG_ENV) else None
        )
        if given is None:
            return None
        given = Path(given).expanduser()
        if not given.is_file():
            raise InputError(
                f"ssh config {given} does not exist",
                f"give an existing file to --ssh-config (or ${SSH_CONFIG_ENV})",
            )
        return given.resolve()


def device_config(value: DeviceConfig | str | Path | None, **overrides: Any) -> DeviceConfig:
    """A `DeviceConfig` from what library callers pass: a config, a URL string, or None (local)."""
    if isinstance(value, DeviceConfig):
        return DeviceConfig.build(value, **overrides) if overrides else value
    return DeviceConfig.build(url=str(value) if value is not None else "local", **overrides)
