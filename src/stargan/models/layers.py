"""Layers shared by the StarGAN networks."""

from __future__ import annotations

import torch
from torch import nn


def instance_norm(channels: int) -> nn.InstanceNorm2d:
    """Instance norm with affine parameters that always uses each image's own statistics.

    The official code builds ``InstanceNorm2d(track_running_stats=True)`` and never calls
    ``eval()``, so running statistics are kept but never used. Here no running statistics
    exist at all, so ``eval()`` is safe and inference normalises exactly as training does.
    """
    return nn.InstanceNorm2d(channels, affine=True, track_running_stats=False)


class ResidualBlock(nn.Module):
    """conv3x3 - IN - ReLU - conv3x3 - IN, plus the identity (paper Table 4)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.main = nn.Sequential(
            nn.Conv2d(channels, channels, 3, 1, 1, bias=False),
            instance_norm(channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(channels, channels, 3, 1, 1, bias=False),
            instance_norm(channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.main(x)
