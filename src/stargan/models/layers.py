"""Layers shared by the StarGAN networks."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn


def upsample_nearest2x(x: torch.Tensor) -> torch.Tensor:
    """``F.interpolate(x, scale_factor=2, mode="nearest")`` (each pixel repeated 2 x 2), bit
    for bit, as a broadcast and one copy. Where freed memory goes back to the system
    (inference) torch's CPU kernel is the slower one for batches ([8, 512, 32, 32]: 195 ms
    against 25 ms, 2 threads); under ``stargan train``'s memory settings the two cost the
    same forward (docs/speed.md), and torch's backward is the faster, so where autograd
    records (training) the call is torch's own."""
    if x.requires_grad and torch.is_grad_enabled():
        # training: torch's kernel has a dedicated backward, 2-3x faster than summing the
        # broadcast's gradient ([16, 32, 32, 32] bf16: 2.7 against 7.5 ms forward + backward)
        return F.interpolate(x, scale_factor=2.0, mode="nearest")
    n, c, h, w = x.shape
    return x[:, :, :, None, :, None].expand(n, c, h, 2, w, 2).reshape(n, c, 2 * h, 2 * w)


def upsample_conv3x3(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None
) -> torch.Tensor:
    """``F.conv2d(upsample_nearest2x(x), weight, bias, padding=1)`` for a 3x3 ``weight``,
    computed on the low-resolution map (the sub-pixel form): the up-sampled map is never made.

    Each output pixel (2i + a, 2j + b) sees a 2 x 2 window of ``x``, the same for all four
    pixels of a 2 x 2 block up to a shift, with the 3 x 3 taps that fall on one input pixel
    summed. So one convolution with four 2 x 2 kernels per output channel over the
    (H + 1) x (W + 1) positions of the padded map (16 multiply-adds per output and input
    channel and input pixel, plus the border, instead of 36), then a pixel shuffle and a
    one-pixel crop. The result is that crop, a strided view. The same values up to the order
    of float sums (~1e-7 relative in fp32); the kernels are summed in the weight's dtype
    (fp32 under autocast), so bf16 rounds once, as the unfolded conv does. Gradients reach
    ``weight`` through the sums. x: [N, C, H, W] -> [N, O, 2H, 2W].
    """
    if weight.size(-2) != 3 or weight.size(-1) != 3:
        raise ValueError("upsample_conv3x3 needs a 3x3 kernel")
    h, w = x.size(-2), x.size(-1)
    kernels = _subpixel_kernels(weight)  # [O * 4, C, 2, 2]
    bias4 = None if bias is None else bias.repeat_interleave(4)
    y = F.conv2d(x, kernels, bias4, padding=1)  # [N, O * 4, H + 1, W + 1]
    return F.pixel_shuffle(y, 2)[:, :, 1 : 2 * h + 1, 1 : 2 * w + 1]


def _fold_for_upsample(weight: torch.Tensor, dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The three taps along ``dim`` as the two output phases of a nearest x2 see them: an
    odd output pixel 2p + 1 reads input pixels (p, p + 1) with taps (w0 + w1, w2), an even
    one 2p reads (p - 1, p) with (w0, w1 + w2)."""
    w0, w1, w2 = weight.select(dim, 0), weight.select(dim, 1), weight.select(dim, 2)
    return torch.stack([w0 + w1, w2], dim), torch.stack([w0, w1 + w2], dim)


def _subpixel_kernels(weight: torch.Tensor) -> torch.Tensor:
    """[O, C, 3, 3] -> [O * 4, C, 2, 2], channel o * 4 + 2 * a + b holding the 2 x 2 kernel of
    row phase 1 - a and column phase 1 - b. Odd phases first: with padding 1 the odd
    pixel's window starts one input pixel after the even one's, so after the pixel shuffle
    every output pixel sits one row and one column in (the crop of
    :func:`upsample_conv3x3`)."""
    odd_rows, even_rows = _fold_for_upsample(weight, 2)
    odd_odd, odd_even = _fold_for_upsample(odd_rows, 3)
    even_odd, even_even = _fold_for_upsample(even_rows, 3)
    kernels = torch.stack([odd_odd, odd_even, even_odd, even_even], 1)  # [O, 4, C, 2, 2]
    return kernels.reshape(weight.size(0) * 4, weight.size(1), 2, 2)


def conv3x3_avgpool2(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None
) -> torch.Tensor:
    """``F.avg_pool2d(F.conv2d(x, weight, bias, padding=1), 2)`` for a 3x3 ``weight``, as one
    4x4 convolution of stride 2 (padding 1) whose kernel is the 3x3 one averaged over the
    four shifts of the 2 x 2 pooling window: the full-resolution map is never made, and each
    output pixel costs 16 multiply-adds per output and input channel instead of 4 x 9. The
    same values up to the order of float sums, for even and odd map sizes (pooling floors);
    the kernel is summed in the weight's dtype, as in :func:`upsample_conv3x3`.
    """
    if weight.size(-2) != 3 or weight.size(-1) != 3:
        raise ValueError("conv3x3_avgpool2 needs a 3x3 kernel")
    kernel = _spread_for_pool(_spread_for_pool(weight, 2), 3) * 0.25
    return F.conv2d(x, kernel, bias, stride=2, padding=1)


def _spread_for_pool(weight: torch.Tensor, dim: int) -> torch.Tensor:
    """Three taps along ``dim`` -> the four of a 3-tap conv summed over a 2-pixel window:
    4-tap m takes 3-tap u where m - u is 0 or 1."""
    w0, w1, w2 = weight.select(dim, 0), weight.select(dim, 1), weight.select(dim, 2)
    return torch.stack([w0, w0 + w1, w1 + w2, w2], dim)


class UpsampleConv2d(nn.Conv2d):
    """Nearest x2 up-sampling, then this 3x3 convolution (stride 1, padding 1), computed as
    :func:`upsample_conv3x3`. Parameters and state dict are those of the ``nn.Conv2d``; not
    a plain convolution (its output is twice the input's size), so code that rewrites
    ``nn.Conv2d`` layers must treat it apart."""

    def __init__(self, in_channels: int, out_channels: int, bias: bool = True) -> None:
        super().__init__(in_channels, out_channels, 3, 1, 1, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return upsample_conv3x3(x, self.weight, self.bias)


class FoldedUpsample(nn.Identity):
    """Where a nearest x2 stood before the :class:`UpsampleConv2d` that now does it; kept so
    that the layers after it keep their indices (and checkpoints their state-dict keys)."""


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


class CondInstanceNorm(nn.Module):
    """Instance norm whose scale and bias also depend on the label c (conditional instance
    norm, Dumoulin et al. 2017; FiLM, Perez et al. 2018): ``IN(h) * (1 + gamma(c)) +
    beta(c)``, gamma and beta linear in c and zero at start (the plain instance norm)."""

    def __init__(self, channels: int, c_dim: int) -> None:
        super().__init__()
        self.norm = instance_norm(channels)
        self.film = nn.Linear(c_dim, 2 * channels)
        nn.init.zeros_(self.film.weight)
        nn.init.zeros_(self.film.bias)

    def forward(self, h: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        gamma, beta = self.film(c.to(h.dtype)).unsqueeze(-1).unsqueeze(-1).chunk(2, dim=1)
        return self.norm(h) * (1 + gamma) + beta


class CondResidualBlock(nn.Module):
    """``ResidualBlock`` with conditional instance norms."""

    def __init__(self, channels: int, c_dim: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, 1, 1, bias=False)
        self.norm1 = CondInstanceNorm(channels, c_dim)
        self.conv2 = nn.Conv2d(channels, channels, 3, 1, 1, bias=False)
        self.norm2 = CondInstanceNorm(channels, c_dim)

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.norm1(self.conv1(x), c))
        return x + self.norm2(self.conv2(h), c)


class LabelFree(nn.Module):
    """A layer that does not use the label, called as the conditional ones: ``(h, c)``."""

    def __init__(self, layer: nn.Module) -> None:
        super().__init__()
        self.layer = layer

    def forward(self, h: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        return self.layer(h)


class CondSequential(nn.Sequential):
    """``nn.Sequential`` of layers called as ``layer(h, c)`` (``LabelFree`` wraps the others)."""

    def __init__(self, *layers: Any) -> None:
        if len(layers) == 1 and isinstance(layers[0], OrderedDict):  # a slice: already wrapped
            super().__init__(layers[0])
            return
        conditioned = (CondInstanceNorm, CondResidualBlock, LabelFree)
        super().__init__(*(m if isinstance(m, conditioned) else LabelFree(m) for m in layers))

    def forward(self, h: torch.Tensor, c: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        for layer in self:
            h = layer(h, c)
        return h


class LeakyReLU(nn.LeakyReLU):
    """LeakyReLU with the same values and first and second derivatives as ``nn.LeakyReLU``,
    but a gradient that is a function of the incoming gradient alone.

    The gradient penalty (eq. 8) differentiates D's input gradient once more. PyTorch's
    double backward of ``leaky_relu`` sends ``zeros_like(grad)`` to the layer's input (the
    slope of a piecewise-linear function has no derivative), and autograd then runs the
    backward of every earlier layer of D on those zeros: about a sixth of a D step's
    convolution work at 128 px, all adding exact zeros to D's gradients. Written as
    ``x * slope`` with ``slope`` read from the detached input, that branch does not exist.
    Bit-identical in fp32: ``x * 1 == x``, and for ``x <= 0`` leaky_relu computes
    ``x * slope`` (under fp16/bf16 autocast the slope is rounded to that type).
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (torch.is_grad_enabled() and x.requires_grad):
            return F.leaky_relu(x, self.negative_slope, self.inplace)
        one = torch.ones((), dtype=x.dtype, device=x.device)
        return x * torch.where(x.detach() > 0, one, self.negative_slope)


class Conv2d(nn.Conv2d):
    """``nn.Conv2d`` (same parameters, same state dict) that computes small output maps as
    one matrix product of image patches (im2col) when ``matmul_max_out`` allows it.

    oneDNN, PyTorch's CPU convolution, is slow on maps of a few pixels with many channels,
    and slower still in the backward and the gradient penalty's double backward: D's
    1024 -> 2048 conv on 4x4 maps ran at ~20 GFLOP/s per core forward and ~15 backward,
    the same product as a matrix multiply at ~50 (128 px, batch 16, measured on the
    project's 2-core CPU). Same math; float sums run in another order (~1e-6 relative).
    """

    matmul_max_out: int = 0  # output maps at most this wide run as a matrix product; 0: never

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.matmul_max_out and self._out_width(x.size(-1)) <= self.matmul_max_out:
            return conv2d_as_matmul(x, self.weight, self.bias, self.stride, self.padding)
        return super().forward(x)

    def _out_width(self, width: int) -> int:
        return (width + 2 * self.padding[1] - self.kernel_size[1]) // self.stride[1] + 1


def conv2d_as_matmul(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    stride: tuple[int, int],
    padding: tuple[int, int],
) -> torch.Tensor:
    """``F.conv2d(x, weight, bias, stride, padding)`` (zero padding, no dilation or groups)
    as ``patches @ weight^T``; every op here has a derivative of any order.

    x: [N, C, H, W]; weight: [O, C, kh, kw] -> [N, O, H', W'], laid out channels-last (a view
    of the [N*H'*W', O] product), which the next such conv reads without a transpose.
    """
    n, c = x.shape[:2]
    out_ch, _, kh, kw = weight.shape
    (sh, sw), (ph, pw) = stride, padding
    x = F.pad(x.permute(0, 2, 3, 1), (0, 0, pw, pw, ph, ph))  # [N, H+2p, W+2p, C]
    patches = x.unfold(1, kh, sh).unfold(2, kw, sw)  # [N, H', W', C, kh, kw]
    h_out, w_out = patches.shape[1:3]
    rows = patches.reshape(n * h_out * w_out, c * kh * kw)
    out = F.linear(rows, weight.reshape(out_ch, -1), bias)  # [N*H'*W', O]
    return out.view(n, h_out, w_out, out_ch).permute(0, 3, 1, 2)


def use_matmul_convs(net: nn.Module, max_out: int) -> None:
    """Run ``net``'s :class:`Conv2d` layers with output maps at most ``max_out`` pixels wide
    as matrix products (0: all through the stock convolution)."""
    for m in net.modules():
        if isinstance(m, Conv2d):
            if m.groups != 1 or m.dilation != (1, 1) or m.padding_mode != "zeros":
                raise ValueError(f"conv2d_as_matmul computes plain convolutions, not {m}")
            m.matmul_max_out = max_out
