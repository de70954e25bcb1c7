"""Training: the loop, checkpoints, run folders, logging. One trainer per family:
``V1Trainer`` (StarGAN), ``V2Trainer`` (StarGAN v2); ``Trainer`` is V1Trainer's earlier name."""

from stargan.train.run import prepare_config, run_training
from stargan.train.v1 import Trainer, V1Trainer
from stargan.train.v2 import V2Trainer

__all__ = ["Trainer", "V1Trainer", "V2Trainer", "prepare_config", "run_training"]
