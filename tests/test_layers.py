"""Shared layers: the nearest-neighbour x2 up-sampling equals torch's, values and gradients."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from stargan.models.layers import UpsampleNearest2x, upsample_nearest2x


def test_upsample_nearest2x_is_interpolate_bit_for_bit() -> None:
    for shape in ((2, 3, 4, 5), (1, 16, 8, 8)):
        x = torch.randn(shape, requires_grad=True)
        ours = upsample_nearest2x(x)
        torch_y = F.interpolate(x, scale_factor=2, mode="nearest")
        assert torch.equal(ours, torch_y)
        g = torch.randn_like(ours)
        (grad_ours,) = torch.autograd.grad(ours, x, g)
        (grad_torch,) = torch.autograd.grad(torch_y, x, g)
        torch.testing.assert_close(grad_ours, grad_torch, rtol=0, atol=1e-6)


def test_upsample_module_and_channels_last_input() -> None:
    x = torch.randn(2, 4, 3, 3).contiguous(memory_format=torch.channels_last)
    assert torch.equal(UpsampleNearest2x()(x), torch.nn.Upsample(scale_factor=2)(x))
    assert UpsampleNearest2x()(x.bfloat16()).dtype == torch.bfloat16
