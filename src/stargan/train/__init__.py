"""Training: the loop, checkpoints, run folders, logging."""

from stargan.train.loop import Trainer
from stargan.train.run import prepare_config, run_training

__all__ = ["Trainer", "prepare_config", "run_training"]
