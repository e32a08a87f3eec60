"""Drift metrics between a reference model's logits and an artifact's logits on the same images.

Accuracy alone hides drift (two models can both score 90 % while disagreeing on 10 % of images), and a
difference of accuracies on a finite set is noisy, so the report carries both the agreement/logit
metrics and a paired confidence interval for the top-1 drop. The interval is decided only by the
discordant images (reference right and artifact wrong, or the reverse): the report says how many.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from edgeattn.evaluation.accuracy import topk_hits


@dataclass
class DropInterval:
    """Paired-bootstrap interval for the top-1 drop, and the exact McNemar test of the same pairs."""

    low: float  # percentage points
    high: float
    confidence: float
    ref_only_correct: int  # reference right, artifact wrong (costs accuracy)
    art_only_correct: int  # artifact right, reference wrong (gains accuracy)
    mcnemar_p: float  # two-sided exact binomial test of ref_only vs art_only

    @property
    def discordant(self) -> int:
        return self.ref_only_correct + self.art_only_correct

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "discordant": self.discordant}


@dataclass
class ClassDelta:
    index: int
    name: str
    n: int
    reference_top1: float
    artifact_top1: float

    @property
    def delta(self) -> float:  # negative: the artifact is worse on this class
        return self.artifact_top1 - self.reference_top1

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "delta": self.delta}


@dataclass
class DriftMetrics:
    n: int
    reference_top1: float
    reference_top5: float
    artifact_top1: float
    artifact_top5: float
    top1_drop: float  # reference - artifact, percentage points (positive = artifact worse)
    top5_drop: float
    agreement: float  # % of images whose argmax is the same
    kl: float  # mean KL(softmax(reference) || softmax(artifact)), nats
    max_abs_logit_error: float
    mean_abs_logit_error: float
    cosine: float  # mean per-image cosine similarity of the logit vectors
    min_cosine: float
    drop_interval: DropInterval
    classes: list[ClassDelta] = field(default_factory=list)

    @property
    def worse_classes(self) -> list[ClassDelta]:
        """Classes where the artifact is less accurate than the reference, worst first."""
        return sorted((c for c in self.classes if c.delta < 0), key=lambda c: c.delta)

    def to_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in asdict(self).items() if k not in ("drop_interval", "classes")}
        out["drop_interval"] = self.drop_interval.to_dict()
        out["classes"] = [c.to_dict() for c in self.classes]
        out["worse_classes"] = [c.name for c in self.worse_classes]
        return out


def _log_softmax(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.float64)
    m = x.max(axis=1, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=1, keepdims=True))


def mean_kl(reference: np.ndarray, artifact: np.ndarray) -> float:
    """Mean over images of KL(p_ref || p_art) of the softmax outputs, in nats."""
    lp, lq = _log_softmax(reference), _log_softmax(artifact)
    return float(np.mean(np.sum(np.exp(lp) * (lp - lq), axis=1))) if len(reference) else 0.0


def cosine_per_image(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a, b = a.astype(np.float64), b.astype(np.float64)
    denom = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    dot = (a * b).sum(axis=1)
    # Two all-zero vectors are identical; one zero vector against another is orthogonal.
    return np.where(
        denom > 0, dot / np.maximum(denom, 1e-300), np.where(np.abs(a - b).sum(axis=1) == 0, 1.0, 0.0)
    )


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value: binomial(b + c, 1/2) tail of the discordant pairs."""
    n = b + c
    if n == 0:
        return 1.0
    k = min(b, c)
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2.0**n
    return float(min(1.0, 2.0 * tail))


def paired_drop_interval(
    ref_correct: np.ndarray,
    art_correct: np.ndarray,
    confidence: float = 0.95,
    resamples: int = 2000,
    seed: int = 0,
) -> DropInterval:
    """Percentile bootstrap over images of the paired top-1 drop (resampling pairs, not two sets)."""
    diff = ref_correct.astype(np.int8) - art_correct.astype(np.int8)  # +1: drop, -1: gain, 0: concordant
    b, c = int((diff > 0).sum()), int((diff < 0).sum())
    n = len(diff)
    if n == 0 or b + c == 0:
        low = high = 0.0
    else:
        rng = np.random.default_rng(seed)
        # Only the discordant images move the estimate: draw how many of each kind land in each resample.
        counts = rng.multinomial(n, [b / n, c / n, 1 - (b + c) / n], size=resamples)
        drops = 100.0 * (counts[:, 0] - counts[:, 1]) / n
        alpha = (1 - confidence) / 2
        low, high = (float(v) for v in np.quantile(drops, [alpha, 1 - alpha]))
    return DropInterval(low, high, confidence, b, c, mcnemar_exact(b, c))


def drift_metrics(
    reference: np.ndarray,
    artifact: np.ndarray,
    labels: np.ndarray,
    class_names: list[str] | None = None,
    confidence: float = 0.95,
    seed: int = 0,
) -> DriftMetrics:
    """All drift metrics for logits (N, C) of the reference and the artifact on the same N images."""
    reference = np.asarray(reference, dtype=np.float32)
    artifact = np.asarray(artifact, dtype=np.float32)
    labels = np.asarray(labels, dtype=np.int64)
    if reference.shape != artifact.shape or reference.ndim != 2 or len(labels) != len(reference):
        raise ValueError(
            f"logit shapes differ: reference {reference.shape}, artifact {artifact.shape}, labels {labels.shape}"
        )
    n, num_classes = reference.shape
    names = class_names or [str(i) for i in range(num_classes)]
    ref1, art1 = topk_hits(reference, labels, 1), topk_hits(artifact, labels, 1)
    ref5, art5 = topk_hits(reference, labels, 5), topk_hits(artifact, labels, 5)
    pct = lambda hits: 100.0 * float(hits.mean()) if n else float("nan")  # noqa: E731
    abs_err = np.abs(reference - artifact)
    cos = cosine_per_image(reference, artifact)
    classes = []
    for k in range(num_classes):
        mask = labels == k
        if mask.any():
            classes.append(
                ClassDelta(
                    k,
                    names[k] if k < len(names) else str(k),
                    int(mask.sum()),
                    pct(ref1[mask]),
                    pct(art1[mask]),
                )
            )
    return DriftMetrics(
        n=n,
        reference_top1=pct(ref1),
        reference_top5=pct(ref5),
        artifact_top1=pct(art1),
        artifact_top5=pct(art5),
        top1_drop=pct(ref1) - pct(art1),
        top5_drop=pct(ref5) - pct(art5),
        agreement=pct(reference.argmax(1) == artifact.argmax(1)),
        kl=mean_kl(reference, artifact),
        max_abs_logit_error=float(abs_err.max()) if n else 0.0,
        mean_abs_logit_error=float(abs_err.mean()) if n else 0.0,
        cosine=float(cos.mean()) if n else 1.0,
        min_cosine=float(cos.min()) if n else 1.0,
        drop_interval=paired_drop_interval(ref1, art1, confidence, seed=seed),
        classes=classes,
    )
