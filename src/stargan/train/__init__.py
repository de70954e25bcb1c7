"""Training: the loop, checkpoints, run folders, logging."""

from stargan.train.run import prepare_config, run_training
from stargan.train.v1 import Trainer

__all__ = ["Trainer", "prepare_config", "run_training"]
