"""Shared layers: the nearest-neighbour x2 up-sampling equals torch's, values and gradients."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from stargan.models.layers import UpsampleNearest2x, upsample_nearest2x


def test_upsample_nearest2x_is_interpolate_bit_for_bit() -> None:
    """Both paths (the broadcast where nothing is recorded, torch's kernel where autograd
    records) give torch's values bit for bit, and the recorded one its exact gradient: each
    input pixel gets the sum of its 2 x 2 output pixels' gradients."""
    for shape in ((2, 3, 4, 5), (1, 16, 8, 8)):
        x = torch.randn(shape, requires_grad=True)
        torch_y = F.interpolate(x, scale_factor=2, mode="nearest")
        with torch.no_grad():
            assert torch.equal(upsample_nearest2x(x), torch_y)
        assert torch.equal(upsample_nearest2x(x.detach()), torch_y)
        ours = upsample_nearest2x(x)
        assert torch.equal(ours, torch_y)
        g = torch.randn_like(ours)
        (grad_ours,) = torch.autograd.grad(ours, x, g)
        torch.testing.assert_close(grad_ours, 4 * F.avg_pool2d(g, 2), rtol=0, atol=1e-6)


def test_upsample_module_and_channels_last_input() -> None:
    x = torch.randn(2, 4, 3, 3).contiguous(memory_format=torch.channels_last)
    assert torch.equal(UpsampleNearest2x()(x), torch.nn.Upsample(scale_factor=2)(x))
    assert UpsampleNearest2x()(x.bfloat16()).dtype == torch.bfloat16
