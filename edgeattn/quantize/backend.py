"""Importing NNCF the way edgeattn needs it: lazily, quietly, and without its 60-second trap.

NNCF's torch backend compiles a C++ extension on first use (gcc + ninja, ~1 min on an idle 2-core
machine, several minutes on a busy one). NNCF aborts the load after 60 s by default and then leaves a
stale lock behind, so a slow machine fails forever after; edgeattn waits instead (the user still sees
progress), unless NNCF_EXTENSION_LOAD_TIMEOUT is set explicitly.
"""

from __future__ import annotations

import logging
import os
from types import ModuleType
from typing import Any

import torch

from edgeattn.errors import UnavailableError


def import_nncf() -> ModuleType:
    """`import nncf` with edgeattn's settings (no extension-load timeout, warnings-only logging)."""
    os.environ.setdefault("NNCF_EXTENSION_LOAD_TIMEOUT", "0")
    # "No CUDA runtime is found, using CUDA_HOME=..." on every CPU machine: noise, not a problem.
    logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)
    try:
        import nncf
        import nncf.torch  # noqa: F401  (registers the torch backend)
    except ImportError as exc:  # pragma: no cover - nncf is a hard dependency
        raise UnavailableError(f"NNCF is not importable ({exc})", "pip install nncf==3.4.0") from None
    from nncf.common.logging import nncf_logger

    nncf_logger.setLevel(logging.WARNING if os.environ.get("EDGEATTN_DEBUG") != "1" else logging.INFO)
    return nncf


def calibration_dataset(inputs: torch.Tensor, batch_size: int = 32) -> Any:
    """An `nncf.Dataset` over preprocessed inputs, in batches (NNCF counts subset_size in items, i.e. batches)."""
    nncf = import_nncf()
    batches = [inputs[i : i + batch_size] for i in range(0, len(inputs), batch_size)]
    return nncf.Dataset(batches)
