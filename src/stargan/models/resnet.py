"""ResNet-18 (He et al. 2016, "Deep Residual Learning for Image Recognition", Table 1).

The evaluation classifier of the StarGAN paper's Table 3 is a ResNet-18 trained from scratch
on real images; this is our own implementation of that network. Code names map to the
paper's Table 1: ``stem`` is conv1 (+ the max pool of conv2_x), ``layer1``..``layer4`` are
conv2_x..conv5_x, ``head`` is the final fully connected layer.

``small_input=True`` swaps the ImageNet stem (7x7 stride-2 conv and a stride-2 max pool, a
4x reduction that would leave a 64 px image 2x2 at conv5_x) for a CIFAR-style stem, like
the first layer of the paper's CIFAR-10 nets (section 4.2): one 3x3 stride-1 conv, no pool.
"""

from __future__ import annotations

import torch
from torch import nn

WIDTHS = (64, 128, 256, 512)
BLOCKS = (2, 2, 2, 2)  # ResNet-18
# Image sizes up to this use the CIFAR-style stem. It costs 15x the standard stem's FLOPs
# at any size (0.56 vs 0.037 GFLOP per 32 px forward, 2.2 vs 0.15 at 64 px): training the
# judge of a 32 px model would take most of an hour on a 2-core CPU instead of minutes.
# The standard stem still learns domain classes at 32 px (its last maps are 1x1).
SMALL_INPUT_MAX = 16


class BasicBlock(nn.Module):
    """Two 3x3 convs with batch norm; identity shortcut, or a 1x1 projection (option B of
    the paper) when the block changes width or resolution."""

    def __init__(self, ch_in: int, ch_out: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(ch_in, ch_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(ch_out)
        self.conv2 = nn.Conv2d(ch_out, ch_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(ch_out)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or ch_in != ch_out:
            self.shortcut = nn.Sequential(
                nn.Conv2d(ch_in, ch_out, 1, stride, bias=False), nn.BatchNorm2d(ch_out)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.relu(self.bn1(self.conv1(x)))
        h = self.bn2(self.conv2(h))
        return self.relu(h + self.shortcut(x))


class ResNet18(nn.Module):
    """ResNet-18: stem, four stages of two BasicBlocks (64, 128, 256, 512 channels; stages
    2-4 halve the resolution), global average pool, linear head."""

    def __init__(self, num_outputs: int, small_input: bool = False) -> None:
        super().__init__()
        self.small_input = small_input
        if small_input:
            self.stem = nn.Sequential(
                nn.Conv2d(3, WIDTHS[0], 3, 1, 1, bias=False),
                nn.BatchNorm2d(WIDTHS[0]),
                nn.ReLU(inplace=True),
            )
        else:
            self.stem = nn.Sequential(
                nn.Conv2d(3, WIDTHS[0], 7, 2, 3, bias=False),
                nn.BatchNorm2d(WIDTHS[0]),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(3, 2, 1),
            )
        ch = WIDTHS[0]
        stages = []
        for i, (width, n) in enumerate(zip(WIDTHS, BLOCKS, strict=True)):
            blocks = [BasicBlock(ch, width, 1 if i == 0 else 2)]
            blocks += [BasicBlock(width, width) for _ in range(n - 1)]
            stages.append(nn.Sequential(*blocks))
            ch = width
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(ch, num_outputs)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Kaiming-normal (fan_out, ReLU) convs, as the paper (its ref. [13]); batch norm as
        the identity; the linear head keeps PyTorch's default (uniform, fan_in)."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x: [N, 3, H, W] in [-1, 1] -> logits [N, num_outputs]
        h = self.stem(x)
        h = self.layer4(self.layer3(self.layer2(self.layer1(h))))
        return self.head(self.pool(h).flatten(1))


def resnet18_for(image_size: int, num_outputs: int) -> ResNet18:
    """ResNet-18 with the stem that suits ``image_size``: CIFAR-style up to 16 px."""
    return ResNet18(num_outputs, small_input=image_size <= SMALL_INPUT_MAX)
