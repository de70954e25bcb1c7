"""Shared layers: the nearest-neighbour x2 up-sampling equals torch's, and so does the
sub-pixel form of up-sampling then a 3x3 conv, values and gradients."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
import torch.nn.functional as F

from stargan.models.layers import (
    UpsampleConv2d,
    conv3x3_avgpool2,
    upsample_conv3x3,
    upsample_nearest2x,
)


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


def test_upsample_nearest2x_of_a_channels_last_bf16_input() -> None:
    x = torch.randn(2, 4, 3, 3).contiguous(memory_format=torch.channels_last)
    assert torch.equal(upsample_nearest2x(x), torch.nn.Upsample(scale_factor=2)(x))
    assert upsample_nearest2x(x.bfloat16()).dtype == torch.bfloat16


def _upsample_then_conv(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None) -> torch.Tensor:
    return F.conv2d(F.interpolate(x, scale_factor=2.0, mode="nearest"), w, b, padding=1)


Conv3x3 = Callable[[torch.Tensor, torch.Tensor, torch.Tensor | None], torch.Tensor]


def _assert_same_values_and_gradients(
    ours_fn: Conv3x3, ref_fn: Conv3x3, shape: tuple[int, ...], out_hw: tuple[int, int]
) -> None:
    """ours_fn and ref_fn agree on a random float64 input of ``shape`` (6 output channels
    of size out_hw), and so do their gradients for input, weight and bias."""
    x = torch.randn(shape, dtype=torch.float64, requires_grad=True)
    w = torch.randn(6, shape[1], 3, 3, dtype=torch.float64, requires_grad=True)
    b = torch.randn(6, dtype=torch.float64, requires_grad=True)
    ref, ours = ref_fn(x, w, b), ours_fn(x, w, b)
    assert ours.shape == ref.shape == (shape[0], 6, *out_hw)
    torch.testing.assert_close(ours, ref, rtol=0, atol=1e-12)
    g = torch.randn_like(ref)
    for grad_ref, grad_ours in zip(
        torch.autograd.grad(ref, (x, w, b), g),
        torch.autograd.grad(ours, (x, w, b), g),
        strict=True,
    ):
        torch.testing.assert_close(grad_ours, grad_ref, rtol=0, atol=1e-12)


def test_upsample_conv3x3_is_nearest_x2_then_conv_values_and_gradients() -> None:
    """The sub-pixel form gives the values and the gradients (input, weight, bias) of the
    up-sampled map's convolution, on odd, one-pixel and non-square maps, in float64."""
    for shape in ((2, 5, 6, 7), (1, 3, 1, 1), (3, 4, 2, 9)):
        out_hw = (2 * shape[2], 2 * shape[3])
        _assert_same_values_and_gradients(upsample_conv3x3, _upsample_then_conv, shape, out_hw)


def test_upsample_conv_module_no_bias_bf16_and_bad_kernel() -> None:
    conv = UpsampleConv2d(4, 3, bias=False)
    assert conv.bias is None and set(conv.state_dict()) == {"weight"}
    x = torch.randn(2, 4, 5, 5)
    torch.testing.assert_close(conv(x), _upsample_then_conv(x, conv.weight, None))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = conv(x)
    assert y.dtype == torch.bfloat16
    ref = _upsample_then_conv(x, conv.weight, None)
    torch.testing.assert_close(y.float(), ref, atol=0.05, rtol=0.05)
    with pytest.raises(ValueError, match="3x3 kernel"):
        upsample_conv3x3(x, torch.randn(3, 4, 5, 5))


def test_conv3x3_avgpool2_is_conv_then_pool_values_and_gradients() -> None:
    """One strided 4x4 conv gives the values and gradients of the 3x3 conv then 2 x 2
    average pooling, on even, odd (pooling floors) and two-pixel maps, in float64."""

    def conv_then_pool(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None) -> torch.Tensor:
        return F.avg_pool2d(F.conv2d(x, w, b, padding=1), 2)

    for shape in ((2, 5, 6, 8), (1, 3, 7, 5), (3, 4, 2, 2)):
        out_hw = (shape[2] // 2, shape[3] // 2)
        _assert_same_values_and_gradients(conv3x3_avgpool2, conv_then_pool, shape, out_hw)
    with pytest.raises(ValueError, match="3x3 kernel"):
        conv3x3_avgpool2(torch.randn(1, 4, 4, 4), torch.randn(6, 4, 1, 1))


def test_folded_convs_trace_without_frozen_constants() -> None:
    """Traced (as the v2 TorchScript export does), the folded kernels are computed from the
    weight in the graph, not frozen: the traced module follows a change of dtype."""

    class Both(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.up = UpsampleConv2d(4, 3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return conv3x3_avgpool2(self.up(x), self.up.weight[:, :3], self.up.bias)

    both = Both()
    traced = torch.jit.trace(both, torch.randn(1, 4, 3, 3))
    x = torch.randn(2, 4, 5, 5, dtype=torch.float64)
    torch.testing.assert_close(traced.double()(x), both.double()(x))
