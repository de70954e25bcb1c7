"""CycleGAN's networks (Zhu et al. 2017, appendix 7.2), the StarGAN paper's pairwise baseline.

Paper names: G: X -> Y and F: Y -> X are both :class:`ResnetGenerator`; D_X and D_Y are
both :class:`PatchDiscriminator`. Instance norm without affine parameters or running
statistics, so every conv carries a bias; weights drawn from N(0, 0.02) (paper 7.1).
"""

from __future__ import annotations

import torch
from torch import nn

from stargan.cyclegan_config import CycleModelConfig

LEAKY_SLOPE = 0.2
INIT_STD = 0.02


def _norm(channels: int) -> nn.InstanceNorm2d:
    return nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)


class ReflectResidualBlock(nn.Module):
    """R_k: two 3x3 convs with k filters, reflection-padded, instance norm, ReLU between."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.main = nn.Sequential(
            nn.ReflectionPad2d(1),
            nn.Conv2d(channels, channels, 3),
            _norm(channels),
            nn.ReLU(inplace=True),
            nn.ReflectionPad2d(1),
            nn.Conv2d(channels, channels, 3),
            _norm(channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.main(x)


class ResnetGenerator(nn.Module):
    """c7s1-d, d2d, d4d, R4d x blocks, u2d, u1d, c7s1-3, tanh, for d = ``dim``.

    c7s1-k: 7x7 conv, stride 1, k filters (reflection padding); dk: 3x3 conv, stride 2;
    uk: 3x3 fractionally strided conv, stride 1/2; each followed by instance norm and
    ReLU except the last conv, followed by tanh. The stride-2 convs pad with zeros (the
    size-preserving ones reflect, which is where reflection removes border artifacts).
    """

    def __init__(self, dim: int = 64, blocks: int = 9) -> None:
        super().__init__()
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(3),
            nn.Conv2d(3, dim, 7),
            _norm(dim),
            nn.ReLU(inplace=True),
        ]
        ch = dim
        for _ in range(2):  # d2d, d4d
            layers += [nn.Conv2d(ch, ch * 2, 3, 2, 1), _norm(ch * 2), nn.ReLU(inplace=True)]
            ch *= 2
        layers += [ReflectResidualBlock(ch) for _ in range(blocks)]
        for _ in range(2):  # u2d, u1d
            layers += [
                nn.ConvTranspose2d(ch, ch // 2, 3, 2, 1, output_padding=1),
                _norm(ch // 2),
                nn.ReLU(inplace=True),
            ]
            ch //= 2
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ch, 3, 7), nn.Tanh()]
        self.main = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x: [N, 3, H, W] in [-1, 1], H and W multiples of 4 -> [N, 3, H, W] in [-1, 1]
        return self.main(x)


class PatchDiscriminator(nn.Module):
    """C_d (no norm), C_2d, ... with ``layers`` stride-2 4x4 convs, one more stride-1 C,
    then a 1-channel 4x4 conv: one real/fake score per overlapping patch. Widths double
    up to 8d. ``layers=3``: C64-C128-C256-C512, the paper's 70x70 PatchGAN."""

    def __init__(self, dim: int = 64, layers: int = 3) -> None:
        super().__init__()
        seq: list[nn.Module] = [nn.Conv2d(3, dim, 4, 2, 1), nn.LeakyReLU(LEAKY_SLOPE, True)]
        ch = dim
        for n in range(1, layers + 1):
            out, stride = dim * min(2**n, 8), 2 if n < layers else 1
            seq += [nn.Conv2d(ch, out, 4, stride, 1), _norm(out), nn.LeakyReLU(LEAKY_SLOPE, True)]
            ch = out
        seq += [nn.Conv2d(ch, 1, 4, 1, 1)]
        self.main = nn.Sequential(*seq)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x: [N, 3, H, W] -> patch scores [N, 1, H / 2**layers - 2, W / 2**layers - 2]
        return self.main(x)


def receptive_field(layers: int) -> int:
    """Side of the input patch one output of ``PatchDiscriminator(layers=...)`` sees:
    two 4x4 stride-1 convs (1 + 3 + 3), then each 4x4 stride-2 conv back to the input."""
    side = 7
    for _ in range(layers):
        side = (side - 1) * 2 + 4
    return side


def init_weights(net: nn.Module) -> nn.Module:
    """Paper 7.1: weights from N(0, 0.02); biases 0."""
    for m in net.modules():
        if isinstance(m, nn.Conv2d | nn.ConvTranspose2d):
            nn.init.normal_(m.weight, 0.0, INIT_STD)
            nn.init.zeros_(m.bias)
    return net


def build_generator(cfg: CycleModelConfig) -> ResnetGenerator:
    return init_weights(ResnetGenerator(cfg.g_dim, cfg.g_blocks))


def build_discriminator(cfg: CycleModelConfig) -> PatchDiscriminator:
    return init_weights(PatchDiscriminator(cfg.d_dim, cfg.d_layers))


def build_pair(cfg: CycleModelConfig) -> dict[str, nn.Module]:
    """One CycleGAN: G (X -> Y), F (Y -> X), D_X, D_Y, in this order of initialisation."""
    return {
        "G": build_generator(cfg),
        "F": build_generator(cfg),
        "D_X": build_discriminator(cfg),
        "D_Y": build_discriminator(cfg),
    }
