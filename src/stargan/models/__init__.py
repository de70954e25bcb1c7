"""Model families. Each builder maps a ModelConfig to its named networks."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from stargan.config import ModelConfig
from stargan.errors import StarGANError
from stargan.models.v1 import Discriminator, Generator, build_v1
from stargan.models.v2 import build_v2_config

BUILDERS: dict[str, Callable[[ModelConfig], dict[str, nn.Module]]] = {
    "v1": build_v1,
    "v2": build_v2_config,
}


def build(cfg: ModelConfig) -> dict[str, nn.Module]:
    if cfg.arch not in BUILDERS:
        raise StarGANError(f"unknown model arch {cfg.arch!r}; valid: {', '.join(BUILDERS)}")
    if cfg.c_dim <= 0:
        raise StarGANError("model.c_dim must be resolved from the data before building")
    return BUILDERS[cfg.arch](cfg)


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


__all__ = ["BUILDERS", "Discriminator", "Generator", "build", "build_v1", "count_parameters"]
