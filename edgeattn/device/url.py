"""Device URLs: `local` (this machine) or `ssh://[user@]host[:port][?python=PATH&dir=PATH]`.

The scheme picks the transport (`TRANSPORTS`), so `adb://SERIAL` can follow as one module. A URL
names a machine and how to start Python there; it never carries a secret (a password in it is
refused: ssh keys and the user's ssh config do the authentication).
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qs, unquote, urlsplit

from edgeattn.errors import InputError

QUERY_KEYS = ("python", "dir")  # interpreter on the device; its cache folder (default ~/.cache/edgeattn)
EXAMPLE = "ssh://user@host[:port][?python=/usr/bin/python3]"


@dataclass(frozen=True)
class DeviceURL:
    scheme: str  # local | ssh | (any registered transport)
    host: str = ""
    user: str | None = None
    port: int | None = None
    python: str | None = None
    dir: str | None = None
    text: str = "local"  # as the user wrote it

    @property
    def name(self) -> str:
        """Where numbers were measured, as reports print it: `local` or `ssh://user@host:port`."""
        if self.scheme == "local":
            return "local" if self.python is None else f"local (python {self.python})"
        user = f"{self.user}@" if self.user else ""
        port = f":{self.port}" if self.port else ""
        return f"{self.scheme}://{user}{self.host}{port}"

    @property
    def in_process(self) -> bool:
        """`local` without another interpreter: artifacts run here, in edgeattn's own runners."""
        return self.scheme == "local" and self.python is None


def parse_device_url(text: str) -> DeviceURL:
    """`text` as a `DeviceURL`, or one InputError naming what is wrong and an example."""
    text = str(text).strip()
    if text in ("", "local", "local://"):
        return DeviceURL("local", text="local")
    given = text
    if text.startswith("local?"):  # local?python=...: this machine, another interpreter
        text = "local://" + text[len("local") :]
    if "://" not in text:
        raise InputError(
            f"device {text!r} is not a device URL",
            f"write local or {EXAMPLE} (a recipe may name a device from its devices: section)",
        )
    parts = urlsplit(text)
    scheme = parts.scheme.lower()
    query = parse_qs(parts.query, keep_blank_values=True)
    unknown = sorted(set(query) - set(QUERY_KEYS))
    if unknown:
        raise InputError(
            f"device URL {text!r} has unknown parameter(s) {', '.join(unknown)}",
            f"known: {', '.join(QUERY_KEYS)} (e.g. {EXAMPLE})",
        )
    values = {k: unquote(v[-1]) for k, v in query.items()}
    if any(not v for v in values.values()):
        raise InputError(f"device URL {text!r} has an empty parameter", f"e.g. {EXAMPLE}")
    if scheme == "local":
        if parts.netloc or parts.path.strip("/"):
            raise InputError(f"device URL {text!r}: local names this machine only", "write local")
        return DeviceURL("local", python=values.get("python"), dir=values.get("dir"), text=given)
    if parts.password is not None:
        raise InputError(
            f"device URL {text!r} contains a password",
            "log in with an ssh key instead (ssh-copy-id user@host); edgeattn never sends passwords",
        )
    try:
        port = parts.port
    except ValueError:
        raise InputError(f"device URL {text!r} has a bad port", "give a port number 1-65535") from None
    if not parts.hostname:
        raise InputError(f"device URL {text!r} names no host", f"e.g. {EXAMPLE}")
    if parts.hostname.startswith("-") or (parts.username or "").startswith("-"):
        raise InputError(f"device URL {text!r}: a host or user cannot start with '-'", "check the URL")
    if parts.path.strip("/"):
        raise InputError(
            f"device URL {text!r} has a path ({parts.path})",
            "give the cache folder as ?dir=PATH and the interpreter as ?python=PATH",
        )
    return DeviceURL(
        scheme,
        host=parts.hostname,
        user=unquote(parts.username) if parts.username else None,
        port=port,
        python=values.get("python"),
        dir=values.get("dir"),
        text=text,
    )
