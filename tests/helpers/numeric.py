"""Numeric comparisons with tolerances relative to the logit spread, and the check that a model's
output depends on its input at all (a comparison on a model that ignores its input proves nothing).

Every test that compares an artifact's logits with a reference uses `close` for the positive case and
`close` again, negated, on a deliberately wrong variant (wrong mean/std, scrambled weights, input
ignored): the negative control shows that the same check can fail.
"""

from __future__ import annotations

import numpy as np


def logit_spread(ref: np.ndarray) -> float:
    """Mean over images of (max - min) logit: the scale a tolerance on logits is relative to."""
    ref = np.asarray(ref, dtype=np.float64).reshape(len(ref), -1)
    return float(np.mean(ref.max(axis=1) - ref.min(axis=1)))


def max_error(got: np.ndarray, ref: np.ndarray) -> float:
    return float(np.max(np.abs(np.asarray(got, np.float64) - np.asarray(ref, np.float64))))


def close(got: np.ndarray, ref: np.ndarray, rel: float) -> bool:
    """max |got - ref| <= rel x the reference's logit spread."""
    return max_error(got, ref) <= rel * logit_spread(ref)


def assert_input_sensitive(ref: np.ndarray, min_ratio: float = 0.2) -> None:
    """The logits change with the input by a good fraction of their spread (else a graph that ignores
    its input would pass any comparison)."""
    ref = np.asarray(ref, dtype=np.float64).reshape(len(ref), -1)
    across = float(np.max(np.abs(ref - ref.mean(axis=0, keepdims=True))))
    assert len(ref) > 1 and across >= min_ratio * logit_spread(ref), (
        f"logits hardly depend on the input ({across:.3g} vs spread {logit_spread(ref):.3g}): "
        "use a trained or input-sensitive model"
    )
