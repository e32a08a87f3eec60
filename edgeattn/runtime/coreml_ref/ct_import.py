"""Quiet, lazy import of coremltools (it logs version warnings and missing macOS bindings on import)."""

from __future__ import annotations

import logging
import warnings
from types import ModuleType

from edgeattn.errors import UnavailableError


def import_coremltools() -> ModuleType:
    """Import coremltools without its import-time chatter (torch/sklearn version notes, macOS-only
    proxies that cannot load on Linux); a missing install is a clear UnavailableError."""
    log = logging.getLogger("coremltools")
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import coremltools as ct
            import coremltools.models.utils  # noqa: F401  (load_spec)
            from coremltools.converters.mil.frontend.milproto import load as _milproto_load  # noqa: F401
    except ModuleNotFoundError as exc:
        raise UnavailableError(
            f"coremltools is not installed ({exc.name})",
            "pip install coremltools==9.0 (it is a dependency of edgeattn)",
        ) from None
    finally:
        log.setLevel(level)
    return ct
