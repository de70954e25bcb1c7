"""StarGAN v1 generator and discriminator (Choi et al. 2018, Tables 4-5).

Paper names: G(x, c) -> y; D(x) -> (D_src(x), D_cls(x)). G's label input ``c`` is the
target labels (the paper) or their difference from the input's own (``label_input``).
"""

from __future__ import annotations

import torch
from torch import nn

from stargan.config import G_CONDITIONS, G_OUTPUTS, G_UPSAMPLES, ModelConfig
from stargan.models.layers import (
    CondInstanceNorm,
    CondResidualBlock,
    CondSequential,
    Conv2d,
    FoldedUpsample,
    LeakyReLU,
    ResidualBlock,
    UpsampleConv2d,
    instance_norm,
)


class Generator(nn.Module):
    """7x7 conv, 2 stride-2 down-convs, residual blocks, 2 stride-2 up-convs, 7x7 conv, tanh.

    The paper's network is the default. Options of the quality recipe (docs/quality.md):

    ``skip``: the encoder's feature maps (after the 7x7 conv and after the first down-conv)
    are added to the decoder's maps of the same size (U-Net style, as the skip connections
    of STGAN / AttGAN, without their extra parameters), so detail the bottleneck loses
    can still reach the output. Same weights as the paper's G.

    ``output``: ``image`` (paper: ``tanh(conv(h))``); ``residual``: ``clamp(x + conv(h))``,
    G learns only the change (Shen & Liu, CVPR 2017, residual images), starting as the
    identity; ``mask``: a fourth output channel is an attention mask ``a = sigmoid(.)``
    that blends the input with a colour map, ``a * x + (1 - a) * tanh(colour)``
    (GANimation, Pumarola et al. 2018).

    ``upsample``: ``deconv`` (paper: 4x4 stride-2 transposed convs) or ``resize``
    (nearest-neighbour x2, then a 3x3 conv: no checkerboard pattern from uneven kernel
    overlap; Odena et al., Distill 2016).

    ``cond_norm``: every instance norm's scale and bias also depend on the label input
    (``CondInstanceNorm``; zero at start, so G starts as the paper's). The tiled label
    enters the first conv only, whose instance norm subtracts each channel's spatial
    mean: a constant channel survives there only through the zero padding at the border.
    """

    __constants__ = ["skip", "cond_norm"]  # TorchScript: compile the taken branch only

    def __init__(
        self,
        c_dim: int,
        conv_dim: int = 64,
        repeat_num: int = 6,
        skip: bool = False,
        output: str = "image",
        upsample: str = "deconv",
        cond_norm: bool = False,
    ) -> None:
        super().__init__()
        if output not in G_OUTPUTS or upsample not in G_UPSAMPLES:
            raise ValueError(f"output {output!r} / upsample {upsample!r}: unknown")
        self.c_dim, self.skip, self.output, self.upsample = c_dim, skip, output, upsample
        self.cond_norm = cond_norm

        def norm(channels: int) -> nn.Module:
            return CondInstanceNorm(channels, c_dim) if cond_norm else instance_norm(channels)

        layers: list[nn.Module] = [
            nn.Conv2d(3 + c_dim, conv_dim, 7, 1, 3, bias=False),
            norm(conv_dim),
            nn.ReLU(inplace=True),
        ]
        ch = conv_dim
        for _ in range(2):  # down-sampling
            layers += [nn.Conv2d(ch, ch * 2, 4, 2, 1, bias=False), norm(ch * 2)]
            layers += [nn.ReLU(inplace=True)]
            ch *= 2
        block = (lambda: CondResidualBlock(ch, c_dim)) if cond_norm else (lambda: ResidualBlock(ch))
        layers += [block() for _ in range(repeat_num)]  # bottleneck
        up_relus = []
        for _ in range(2):  # up-sampling
            layers += _up_conv(ch, ch // 2, upsample)
            layers += [norm(ch // 2), nn.ReLU(inplace=True)]
            up_relus.append(len(layers) - 1)
            ch //= 2
        out_ch = 4 if output == "mask" else 3
        layers += [nn.Conv2d(ch, out_ch, 7, 1, 3, bias=False)]
        if output == "image":
            layers += [nn.Tanh()]
        self.main = (CondSequential if cond_norm else nn.Sequential)(*layers)
        if output == "residual":  # start as the identity: G(x, c) = x
            nn.init.zeros_(layers[-1].weight)
        # skip: the maps after the stem's ReLU (index 2, full size) and after the first
        # down-block's ReLU (5, half size) are added after the last and the first up-block's
        self.full_at, self.half_at = (up_relus[1], up_relus[0]) if skip else (-1, -1)

    @property
    def is_paper(self) -> bool:
        """Whether this is the paper's network (no option of the quality recipe)."""
        plain = not self.skip and not self.cond_norm
        return plain and self.output == "image" and self.upsample == "deconv"

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        # x: [N, 3, H, W] in [-1, 1]; c: [N, c_dim] target label -> [N, 3, H, W]
        return self.outputs(x, c)[0]

    def outputs(self, x: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(G(x, c), and for output "mask" its mask a [N, 1, H, W], 1 = keep the input)."""
        c_map = c.to(x.dtype)[:, :, None, None].expand(-1, -1, x.size(2), x.size(3))
        h = self._main(torch.cat([x, c_map], dim=1), c)
        if self.output == "image":
            return h, None
        if self.output == "residual":
            return (x + h).clamp(-1.0, 1.0), None
        a = torch.sigmoid(h[:, 3:])
        return a * x + (1 - a) * torch.tanh(h[:, :3]), a

    def _main(self, h: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        if not self.skip:
            return self.main(h, c) if self.cond_norm else self.main(h)
        full, half = h, h
        for i, layer in enumerate(self.main):
            h = layer(h, c) if self.cond_norm else layer(h)
            if i == 2:
                full = h
            elif i == 5:
                half = h
            elif i == self.half_at:
                h = h + half
            elif i == self.full_at:
                h = h + full
        return h


def _up_conv(ch_in: int, ch_out: int, upsample: str) -> list[nn.Module]:
    if upsample == "resize":
        # nearest x2 + 3x3 conv, computed on the low-resolution map by the conv
        return [FoldedUpsample(), UpsampleConv2d(ch_in, ch_out, bias=False)]
    return [nn.ConvTranspose2d(ch_in, ch_out, 4, 2, 1, bias=False)]


class WithMask(nn.Module):
    """G called as in training: ``(G(x, c), mask)`` (the mask is None unless
    ``model.g_output=mask``); a module of its own so that DDP and ``torch.compile`` wrap
    the call the loss needs."""

    def __init__(self, G: Generator) -> None:
        super().__init__()
        self.G = G

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        return self.G.outputs(x, c)


class Discriminator(nn.Module):
    """PatchGAN trunk of stride-2 4x4 convs with LeakyReLU(0.01); D_src and D_cls heads.

    ``domain_heads`` (``model.d_domain_heads``): D_src has two real/fake maps per label,
    one for images with the label on and one with it off (``2 * c_dim`` channels), and an
    image is judged by the mean of the maps its labels pick (:func:`src_for_labels`):
    StarGAN v2's multi-task D, one critic per domain, for multi-label attributes."""

    def __init__(
        self,
        image_size: int = 128,
        c_dim: int = 5,
        conv_dim: int = 64,
        repeat_num: int = 6,
        domain_heads: bool = False,
    ) -> None:
        super().__init__()
        # layers.Conv2d / LeakyReLU: nn's, with faster kernels for the WGAN-GP (see there)
        layers: list[nn.Module] = [Conv2d(3, conv_dim, 4, 2, 1), LeakyReLU(0.01)]
        ch = conv_dim
        for _ in range(1, repeat_num):
            layers += [Conv2d(ch, ch * 2, 4, 2, 1), LeakyReLU(0.01)]
            ch *= 2
        self.main = nn.Sequential(*layers)
        self.conv_src = Conv2d(ch, 2 * c_dim if domain_heads else 1, 3, 1, 1, bias=False)
        self.conv_cls = Conv2d(ch, c_dim, image_size // 2**repeat_num, bias=False)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # x: [N, 3, H, W] -> out_src [N, 1 or 2 c_dim, H/2^r, W/2^r], out_cls [N, c_dim]
        h = self.main(x)
        return self.conv_src(h), self.conv_cls(h).flatten(1)


def src_for_labels(out_src: torch.Tensor, c: torch.Tensor, own: slice) -> torch.Tensor:
    """D_src's verdict [N, 1, h, w] on images labelled ``c`` ([N, >= c_dim], 0/1 values):
    ``out_src`` itself for one shared head; with per-label heads ([N, 2 c_dim, h, w]: the
    "on" maps, then the "off" maps), the mean over the labels in ``own`` (the columns the
    batch's dataset knows) of the map each label's value picks."""
    if out_src.size(1) == 1:
        return out_src
    c_dim = out_src.size(1) // 2
    on, off = out_src[:, :c_dim][:, own], out_src[:, c_dim:][:, own]
    c_own = c[:, own].to(out_src.dtype)[:, :, None, None]
    return (c_own * on + (1 - c_own) * off).mean(1, keepdim=True)


def discriminator(cfg: ModelConfig) -> Discriminator:
    """D of a v1 model config."""
    return Discriminator(
        cfg.image_size, cfg.c_dim, cfg.d_conv_dim, cfg.d_repeat_num, cfg.d_domain_heads
    )


def label_input(
    c_trg: torch.Tensor,
    c_org: torch.Tensor | None,
    condition: str,
    mask_dim: int = 0,
    strength: float = 1.0,
) -> torch.Tensor:
    """G's label input for target labels ``c_trg`` of inputs whose own labels are ``c_org``
    (both [N, c_dim + mask_dim], encoded as in training).

    ``condition`` (``model.g_condition``): ``target``, the paper's ``c_trg``;
    ``difference``, ``c_trg - c_org`` (STGAN, Liu et al., CVPR 2019): +1 where a domain is
    switched on, -1 where it is switched off, 0 where it is kept, so keeping is the
    zero input and the cycle's second pass gets exactly the negated change. The joint
    mask vector (last ``mask_dim`` columns) stays the target's: it says which dataset's
    labels the rest are. ``strength`` scales the difference (AttGAN's and STGAN's test-time
    intensity, ``test_int``): training uses 1; above 1 pushes the change harder."""
    if condition not in G_CONDITIONS:
        raise ValueError(f"condition {condition!r}: unknown (one of {', '.join(G_CONDITIONS)})")
    if condition == "target":
        return c_trg
    if c_org is None:
        raise ValueError("a difference-conditioned G needs the inputs' own labels c_org")
    c = (c_trg - c_org) * strength
    if mask_dim:
        c = torch.cat([c[:, : c.size(1) - mask_dim], c_trg[:, c.size(1) - mask_dim :]], dim=1)
    return c


def generator(cfg: ModelConfig) -> Generator:
    """G of a v1 model config (label input ``c_dim + mask_dim`` wide)."""
    return Generator(
        cfg.c_dim + cfg.mask_dim,
        cfg.g_conv_dim,
        cfg.g_repeat_num,
        cfg.g_skip,
        cfg.g_output,
        cfg.g_upsample,
        cfg.g_cond_norm,
    )


def build_v1(cfg: ModelConfig) -> dict[str, nn.Module]:
    return {
        "G": generator(cfg),
        "D": discriminator(cfg),
    }
