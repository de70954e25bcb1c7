"""StarGAN v1 generator and discriminator (Choi et al. 2018, Tables 4-5).

Paper names: G(x, c) -> y; D(x) -> (D_src(x), D_cls(x)).
"""

from __future__ import annotations

import torch
from torch import nn

from stargan.config import ModelConfig
from stargan.models.layers import Conv2d, LeakyReLU, ResidualBlock, instance_norm


class Generator(nn.Module):
    """7x7 conv, 2 stride-2 down-convs, residual blocks, 2 stride-2 up-convs, 7x7 conv, tanh."""

    def __init__(self, c_dim: int, conv_dim: int = 64, repeat_num: int = 6) -> None:
        super().__init__()
        self.c_dim = c_dim
        layers: list[nn.Module] = [
            nn.Conv2d(3 + c_dim, conv_dim, 7, 1, 3, bias=False),
            instance_norm(conv_dim),
            nn.ReLU(inplace=True),
        ]
        ch = conv_dim
        for _ in range(2):  # down-sampling
            layers += [
                nn.Conv2d(ch, ch * 2, 4, 2, 1, bias=False),
                instance_norm(ch * 2),
                nn.ReLU(inplace=True),
            ]
            ch *= 2
        layers += [ResidualBlock(ch) for _ in range(repeat_num)]  # bottleneck
        for _ in range(2):  # up-sampling
            layers += [
                nn.ConvTranspose2d(ch, ch // 2, 4, 2, 1, bias=False),
                instance_norm(ch // 2),
                nn.ReLU(inplace=True),
            ]
            ch //= 2
        layers += [nn.Conv2d(ch, 3, 7, 1, 3, bias=False), nn.Tanh()]
        self.main = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        # x: [N, 3, H, W] in [-1, 1]; c: [N, c_dim] target label -> [N, 3, H, W]
        c_map = c.to(x.dtype)[:, :, None, None].expand(-1, -1, x.size(2), x.size(3))
        return self.main(torch.cat([x, c_map], dim=1))


class Discriminator(nn.Module):
    """PatchGAN trunk of stride-2 4x4 convs with LeakyReLU(0.01); D_src and D_cls heads."""

    def __init__(
        self, image_size: int = 128, c_dim: int = 5, conv_dim: int = 64, repeat_num: int = 6
    ) -> None:
        super().__init__()
        # layers.Conv2d / LeakyReLU: nn's, with faster kernels for the WGAN-GP (see there)
        layers: list[nn.Module] = [Conv2d(3, conv_dim, 4, 2, 1), LeakyReLU(0.01)]
        ch = conv_dim
        for _ in range(1, repeat_num):
            layers += [Conv2d(ch, ch * 2, 4, 2, 1), LeakyReLU(0.01)]
            ch *= 2
        self.main = nn.Sequential(*layers)
        self.conv_src = Conv2d(ch, 1, 3, 1, 1, bias=False)
        self.conv_cls = Conv2d(ch, c_dim, image_size // 2**repeat_num, bias=False)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # x: [N, 3, H, W] -> out_src [N, 1, H/2^r, W/2^r], out_cls [N, c_dim]
        h = self.main(x)
        return self.conv_src(h), self.conv_cls(h).flatten(1)


def build_v1(cfg: ModelConfig) -> dict[str, nn.Module]:
    return {
        "G": Generator(cfg.c_dim + cfg.mask_dim, cfg.g_conv_dim, cfg.g_repeat_num),
        "D": Discriminator(cfg.image_size, cfg.c_dim, cfg.d_conv_dim, cfg.d_repeat_num),
    }
