"""Training: `TrainConfig` (every option, shared by the CLI, recipes and the library), the loop `fit`
(baseline training, pruning recovery and QAT all use it) and `train_checkpoint` (`edgeattn train`)."""

from edgeattn.train.config import TrainConfig
from edgeattn.train.job import TrainResult, train_checkpoint
from edgeattn.train.loop import fit

__all__ = ["TrainConfig", "TrainResult", "fit", "train_checkpoint"]
