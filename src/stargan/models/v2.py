"""StarGAN v2 networks (Choi et al. 2020, "StarGAN v2: Diverse Image Synthesis for Multiple
Domains", section 2 and appendix A, Tables 6-8).

Paper names: generator G(x, s) -> x_fake; mapping network F(z, y) -> s; style encoder
E(x, y) -> s; discriminator D(x, y) -> the real/fake logit of domain y.

The architecture is that of the official code (clovaai/stargan-v2, ``core/model.py``), so
the parameter counts match it exactly. Submodule *attribute* names (``from_rgb``,
``encode``, ``decode``, ``to_rgb``, ``conv1``, ``norm1``, ``conv1x1``, ``shared``,
``unshared``, ``main`` and the Sequential indices) are kept as the official ones on
purpose: the released checkpoints (``100000_nets_ema.ckpt``) then load with
``load_state_dict(strict=True)`` and no table of renamed keys. Their meaning:

* ``from_rgb`` / ``to_rgb``: the first 3x3 conv / the last IN-LeakyReLU-1x1 conv of G;
* ``encode`` / ``decode``: G's down-sampling then bottleneck blocks / its AdaIN bottleneck
  then up-sampling blocks (``decode`` is stored in forward order, mirror of ``encode``);
* ``shared`` / ``unshared``: layers common to all domains / one output head per domain;
* ``conv1x1``: the learned shortcut of a residual block that changes width.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from stargan.config import ModelConfig
from stargan.errors import StarGANError
from stargan.models.layers import (
    conv3x3_avgpool2,
    instance_norm,
    upsample_conv3x3,
    upsample_nearest2x,
)

LEAK = 0.2  # negative slope of every LeakyReLU in v2

# Resolutions at which G (w_hpf > 0) adds high-pass encoder features to the decoder; the
# official code hard-codes these, so they are absolute sizes, not fractions of img_size.
SKIP_SIZES = (32, 64, 128)

FAN_HINT = (
    "needs a face landmark network weights file: FAN (wing.ckpt of the official "
    "StarGAN v2) to compute the masks; set w_hpf 0 to train or translate without it"
)


def default_base_dim(img_size: int) -> int:
    """Width after the first conv: 64 at 256 px, 32 at 512 px (the official 2**14 / size)."""
    return 2**14 // img_size


def _check_img_size(img_size: int, minimum: int, network: str) -> None:
    if img_size < minimum or img_size & (img_size - 1):
        raise StarGANError(
            f"v2 {network} needs img_size a power of two >= {minimum}, got {img_size}"
        )


def _check_input_size(x: torch.Tensor, img_size: int, network: str) -> None:
    # E and D end in a 4x4 valid conv that must see a 4x4 map; any other input size would
    # give a bigger map whose flattened values would be misread as per-domain outputs.
    if x.shape[-2:] != (img_size, img_size):
        raise StarGANError(
            f"{network} was built for {img_size}x{img_size} images, got {tuple(x.shape[-2:])}"
        )


def _select_domain(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """out [N, num_domains, ...], y [N] domain indices -> out[i, y[i]] for each i."""
    return out[torch.arange(out.size(0), device=out.device), y]


# ---------------------------------------------------------------- blocks
class ResBlock(nn.Module):
    """Pre-activation residual block: [IN] - LReLU - conv3x3 - [avgpool] - [IN] - LReLU -
    conv3x3, plus a shortcut (1x1 conv if the width changes, then avgpool); the sum is
    divided by sqrt(2) to keep unit variance. Used by G's encoder (with IN) and by E and D
    (without normalisation). The official order of operations, computed cheaper: conv1 and
    its avgpool as one strided conv (:func:`conv3x3_avgpool2`), the shortcut pooled first."""

    def __init__(
        self, dim_in: int, dim_out: int, normalize: bool = False, downsample: bool = False
    ) -> None:
        super().__init__()
        self.normalize = normalize
        self.downsample = downsample
        self.conv1 = nn.Conv2d(dim_in, dim_in, 3, 1, 1)
        self.conv2 = nn.Conv2d(dim_in, dim_out, 3, 1, 1)
        if normalize:
            self.norm1 = instance_norm(dim_in)
            self.norm2 = instance_norm(dim_in)
        self.conv1x1 = (
            nn.Conv2d(dim_in, dim_out, 1, 1, 0, bias=False) if dim_in != dim_out else None
        )

    def _shortcut(self, x: torch.Tensor) -> torch.Tensor:
        # a 1x1 conv commutes with average pooling: run it on the 4x smaller map
        if self.downsample:
            x = F.avg_pool2d(x, 2)
        return self.conv1x1(x) if self.conv1x1 is not None else x

    def _residual(self, x: torch.Tensor) -> torch.Tensor:
        if self.normalize:
            x = self.norm1(x)
        x = F.leaky_relu(x, LEAK)
        if self.downsample:  # conv1 then avgpool, as one strided conv
            x = conv3x3_avgpool2(x, self.conv1.weight, self.conv1.bias)
        else:
            x = self.conv1(x)
        if self.normalize:
            x = self.norm2(x)
        return self.conv2(F.leaky_relu(x, LEAK))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (self._shortcut(x) + self._residual(x)) / math.sqrt(2)


class AdaIN(nn.Module):
    """Adaptive instance norm: (1 + gamma(s)) * IN(x) + beta(s), with gamma and beta from one
    linear layer of the style code. The ``1 +`` makes a zero style output the identity."""

    def __init__(self, style_dim: int, channels: int) -> None:
        super().__init__()
        self.norm = nn.InstanceNorm2d(channels, affine=False)
        self.fc = nn.Linear(style_dim, channels * 2)

    def forward(self, x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        # x: [N, C, H, W]; s: [N, style_dim]
        gamma, beta = self.fc(s)[:, :, None, None].chunk(2, dim=1)
        return (1 + gamma) * self.norm(x) + beta


class AdaINResBlock(nn.Module):
    """Decoder block of G: AdaIN - LReLU - [upsample x2] - conv3x3 - AdaIN - LReLU - conv3x3,
    plus a shortcut ([upsample], then 1x1 conv if the width changes), summed / sqrt(2). The
    official order of operations, computed cheaper: the up-sampling and conv1 in the
    sub-pixel form (:func:`upsample_conv3x3`), the shortcut's 1x1 conv before its up-sampling.

    With ``w_hpf > 0`` the official block returns the residual branch alone (the high-pass
    skips of G carry the source's detail instead); it still builds ``conv1x1``, so that conv
    is counted and saved but unused and never gets a gradient. Kept for exact counts and
    loading the released CelebA-HQ weights.
    """

    def __init__(
        self,
        dim_in: int,
        dim_out: int,
        style_dim: int = 64,
        w_hpf: float = 0.0,
        upsample: bool = False,
    ) -> None:
        super().__init__()
        self.use_shortcut = w_hpf == 0
        self.upsample = upsample
        self.conv1 = nn.Conv2d(dim_in, dim_out, 3, 1, 1)
        self.conv2 = nn.Conv2d(dim_out, dim_out, 3, 1, 1)
        self.norm1 = AdaIN(style_dim, dim_in)
        self.norm2 = AdaIN(style_dim, dim_out)
        self.conv1x1 = (
            nn.Conv2d(dim_in, dim_out, 1, 1, 0, bias=False) if dim_in != dim_out else None
        )

    def _shortcut(self, x: torch.Tensor) -> torch.Tensor:
        # a 1x1 conv commutes with nearest x2: run it on the 4x smaller map
        x = self.conv1x1(x) if self.conv1x1 is not None else x
        return upsample_nearest2x(x) if self.upsample else x

    def _residual(self, x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        x = F.leaky_relu(self.norm1(x, s), LEAK)
        if self.upsample:  # nearest x2 then conv1, in the sub-pixel form
            x = upsample_conv3x3(x, self.conv1.weight, self.conv1.bias)
        else:
            x = self.conv1(x)
        return self.conv2(F.leaky_relu(self.norm2(x, s), LEAK))

    def forward(self, x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        out = self._residual(x, s)
        if self.use_shortcut:
            out = (out + self._shortcut(x)) / math.sqrt(2)
        return out


class HighPass(nn.Module):
    """Fixed 3x3 Laplacian-like high-pass filter, applied to each channel, scaled by 1/w_hpf.

    The kernel is a non-persistent buffer: it follows ``.to(device)`` but is not saved,
    exactly like the released official checkpoints (which have no ``hpf.filter`` key).
    """

    def __init__(self, w_hpf: float) -> None:
        super().__init__()
        kernel = torch.tensor([[-1.0, -1.0, -1.0], [-1.0, 8.0, -1.0], [-1.0, -1.0, -1.0]])
        self.register_buffer("filter", kernel / w_hpf, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        channels = x.size(1)
        weight = self.filter.to(x.dtype).expand(channels, 1, 3, 3).contiguous()
        return F.conv2d(x, weight, padding=1, groups=channels)


# ---------------------------------------------------------------- networks
class Generator(nn.Module):
    """G(x, s): from_rgb, down-sampling ResBlocks with IN, 2 bottleneck ResBlocks, 2 AdaIN
    bottleneck blocks, up-sampling AdaIN blocks, to_rgb (IN - LReLU - 1x1 conv); no tanh.

    ``w_hpf > 0`` (the CelebA-HQ model) adds one more down/up pair and the high-pass skips:
    at 32, 64 and 128 px the decoder adds ``HighPass(mask * encoder feature)``, the mask
    being a face-landmark heatmap, so that eyes, nose and mouth of the source survive.
    """

    def __init__(
        self,
        img_size: int = 256,
        style_dim: int = 64,
        max_conv_dim: int = 512,
        w_hpf: float = 0.0,
        base_dim: int | None = None,
    ) -> None:
        super().__init__()
        _check_img_size(img_size, 16, "generator")
        if w_hpf < 0:
            raise StarGANError(f"w_hpf must be >= 0, got {w_hpf}")
        self.img_size = img_size
        self.w_hpf = w_hpf
        dim_in = base_dim or default_base_dim(img_size)
        self.from_rgb = nn.Conv2d(3, dim_in, 3, 1, 1)
        self.encode = nn.ModuleList()
        self.decode = nn.ModuleList()  # built back to front: decode[i] mirrors encode[-1-i]
        self.to_rgb = nn.Sequential(
            instance_norm(dim_in), nn.LeakyReLU(LEAK), nn.Conv2d(dim_in, 3, 1, 1, 0)
        )
        num_resample = int(math.log2(img_size)) - 4 + (1 if w_hpf > 0 else 0)
        dim_out = dim_in
        for _ in range(num_resample):
            dim_out = min(dim_in * 2, max_conv_dim)
            self.encode.append(ResBlock(dim_in, dim_out, normalize=True, downsample=True))
            self.decode.insert(0, AdaINResBlock(dim_out, dim_in, style_dim, w_hpf, upsample=True))
            dim_in = dim_out
        for _ in range(2):  # bottleneck
            self.encode.append(ResBlock(dim_out, dim_out, normalize=True))
            self.decode.insert(0, AdaINResBlock(dim_out, dim_out, style_dim, w_hpf))
        self.hpf = HighPass(w_hpf) if w_hpf > 0 else None

    def _check_masks(self, masks: Sequence[torch.Tensor] | None) -> None:
        if self.w_hpf > 0 and masks is None:
            raise StarGANError(f"this generator has w_hpf {self.w_hpf} > 0 and {FAN_HINT}")
        if self.w_hpf == 0 and masks is not None:
            raise StarGANError("masks were given but this generator has w_hpf 0: pass no masks")
        if masks is not None and len(masks) != 2:
            raise StarGANError(f"masks must be 2 heatmaps (face, inner face), got {len(masks)}")

    def forward(
        self, x: torch.Tensor, s: torch.Tensor, masks: Sequence[torch.Tensor] | None = None
    ) -> torch.Tensor:
        # x: [N, 3, H, W] in [-1, 1]; s: [N, style_dim]; masks: (face, inner face) heatmaps,
        # each [N, 1, h, w] in [0, 1] (any h, w: resized here) -> [N, 3, H, W], not clamped
        self._check_masks(masks)
        h = self.from_rgb(x)
        skips: dict[int, torch.Tensor] = {}
        for block in self.encode:
            if masks is not None and h.size(2) in SKIP_SIZES:
                skips[h.size(2)] = h
            h = block(h)
        for block in self.decode:
            h = block(h, s)
            size = h.size(2)
            if masks is not None and size in skips:
                # whole-face mask at the coarsest skip, inner-face mask (no face line,
                # mouth or eyebrows) at the finer ones, as in the official code
                mask = masks[0] if size == SKIP_SIZES[0] else masks[1]
                mask = F.interpolate(mask, size=h.shape[-2:], mode="bilinear", align_corners=False)
                h = h + self.hpf(mask * skips[size])
        return self.to_rgb(h)


class MappingNetwork(nn.Module):
    """F(z, y): a shared 4-layer MLP (latent -> hidden, 3 x hidden -> hidden, ReLU after
    each), then per domain 3 x (hidden -> hidden, ReLU) and hidden -> style_dim."""

    def __init__(
        self, latent_dim: int = 16, style_dim: int = 64, num_domains: int = 2, hidden_dim: int = 512
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Linear(latent_dim, hidden_dim), nn.ReLU()]
        for _ in range(3):
            layers += [nn.Linear(hidden_dim, hidden_dim), nn.ReLU()]
        self.shared = nn.Sequential(*layers)
        self.unshared = nn.ModuleList()
        for _ in range(num_domains):
            head: list[nn.Module] = []
            for _ in range(3):
                head += [nn.Linear(hidden_dim, hidden_dim), nn.ReLU()]
            self.unshared.append(nn.Sequential(*head, nn.Linear(hidden_dim, style_dim)))

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        # z: [N, latent_dim]; y: [N] target domain indices -> s: [N, style_dim]
        h = self.shared(z)
        return _select_domain(torch.stack([head(h) for head in self.unshared], dim=1), y)


def _downsampling_trunk(
    img_size: int, max_conv_dim: int, base_dim: int
) -> tuple[list[nn.Module], int]:
    """The body shared by E and D: conv3x3, log2(size) - 2 down-sampling ResBlocks without
    normalisation (width doubling up to max_conv_dim), LReLU, 4x4 valid conv, LReLU.
    Returns the layers, ending on a [N, dim, 1, 1] map, and that dim."""
    dim_in = base_dim
    layers: list[nn.Module] = [nn.Conv2d(3, dim_in, 3, 1, 1)]
    for _ in range(int(math.log2(img_size)) - 2):
        dim_out = min(dim_in * 2, max_conv_dim)
        layers.append(ResBlock(dim_in, dim_out, downsample=True))
        dim_in = dim_out
    layers += [nn.LeakyReLU(LEAK), nn.Conv2d(dim_in, dim_in, 4, 1, 0), nn.LeakyReLU(LEAK)]
    return layers, dim_in


class StyleEncoder(nn.Module):
    """E(x, y): the shared down-sampling trunk, then one linear head per domain."""

    def __init__(
        self,
        img_size: int = 256,
        style_dim: int = 64,
        num_domains: int = 2,
        max_conv_dim: int = 512,
        base_dim: int | None = None,
    ) -> None:
        super().__init__()
        _check_img_size(img_size, 8, "style encoder")
        self.img_size = img_size
        layers, dim = _downsampling_trunk(
            img_size, max_conv_dim, base_dim or default_base_dim(img_size)
        )
        self.shared = nn.Sequential(*layers)
        self.unshared = nn.ModuleList(nn.Linear(dim, style_dim) for _ in range(num_domains))

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        # x: [N, 3, img_size, img_size]; y: [N] domain indices -> s: [N, style_dim]
        _check_input_size(x, self.img_size, "style encoder")
        h = self.shared(x).flatten(1)
        return _select_domain(torch.stack([head(h) for head in self.unshared], dim=1), y)


class Discriminator(nn.Module):
    """D(x, y): the shared down-sampling trunk, a 1x1 conv to one logit per domain; returns
    the logit of each sample's domain y (a multi-task discriminator)."""

    def __init__(
        self,
        img_size: int = 256,
        num_domains: int = 2,
        max_conv_dim: int = 512,
        base_dim: int | None = None,
    ) -> None:
        super().__init__()
        _check_img_size(img_size, 8, "discriminator")
        self.img_size = img_size
        layers, dim = _downsampling_trunk(
            img_size, max_conv_dim, base_dim or default_base_dim(img_size)
        )
        self.main = nn.Sequential(*layers, nn.Conv2d(dim, num_domains, 1, 1, 0))

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        # x: [N, 3, img_size, img_size]; y: [N] domain indices -> logits [N]
        _check_input_size(x, self.img_size, "discriminator")
        return _select_domain(self.main(x).flatten(1), y)


# ---------------------------------------------------------------- init and builder
def he_init_(module: nn.Module) -> nn.Module:
    """He init of every Conv2d and Linear inside ``module``, as the official ``he_init``:
    weights ~ N(0, 2 / fan_in), biases 0; norms keep their defaults. Returns ``module``.

    The official code copies the EMA networks *before* this init, so its EMA nets start
    from PyTorch's default init; a training loop that wants to match it must do the same.
    """
    for layer in module.modules():
        if isinstance(layer, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_normal_(layer.weight, mode="fan_in", nonlinearity="relu")
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)
    return module


def build_v2(
    img_size: int,
    num_domains: int,
    latent_dim: int = 16,
    style_dim: int = 64,
    w_hpf: float = 0.0,
    max_conv_dim: int = 512,
    *,
    base_dim: int | None = None,
    mapping_dim: int = 512,
) -> dict[str, nn.Module]:
    """The four StarGAN v2 networks {"G", "F", "E", "D"}, with PyTorch's default init
    (apply :func:`he_init_` to the trained copies). ``base_dim`` overrides the width after
    the first conv (default 2**14 // img_size) and ``mapping_dim`` F's hidden width
    (official 512), for small models."""
    if num_domains < 1:
        raise StarGANError(f"num_domains must be >= 1, got {num_domains}")
    return {
        "G": Generator(img_size, style_dim, max_conv_dim, w_hpf, base_dim),
        "F": MappingNetwork(latent_dim, style_dim, num_domains, mapping_dim),
        "E": StyleEncoder(img_size, style_dim, num_domains, max_conv_dim, base_dim),
        "D": Discriminator(img_size, num_domains, max_conv_dim, base_dim),
    }


def build_v2_config(cfg: ModelConfig) -> dict[str, nn.Module]:
    """:func:`build_v2` from a run's model config (``c_dim``: the number of domains)."""
    return build_v2(
        cfg.image_size,
        cfg.c_dim,
        cfg.latent_dim,
        cfg.style_dim,
        cfg.w_hpf,
        cfg.max_conv_dim,
        base_dim=cfg.base_dim or None,
        mapping_dim=cfg.mapping_dim,
    )
