"""Evaluation helpers every stage shares: accuracy of logits, predictions of modules and runners,
and `evaluate_artifact` (top-1/top-5 of any artifact on its own runtime).

This package sits below `train`, `prune`, `quantize`, `validate` and `bench`: they import it, it
imports none of them.
"""

from edgeattn.evaluation.accuracy import Accuracy, accuracy_report, evaluate, topk_accuracy, topk_hits
from edgeattn.evaluation.predict import predict_all, predict_logits

__all__ = [
    "Accuracy",
    "accuracy_report",
    "evaluate",
    "predict_all",
    "predict_logits",
    "topk_accuracy",
    "topk_hits",
]
