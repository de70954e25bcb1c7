"""Face Alignment Network (FAN) giving the face masks of StarGAN v2's CelebA-HQ generator.

StarGAN v2 trained with ``w_hpf > 0`` passes high-pass encoder features to the decoder
through masks made from face-landmark heatmaps (G(x, s, masks), models/v2.py). The official
code (clovaai/stargan-v2, ``core/wing.py``) takes the heatmaps from a pretrained FAN, a
stacked-hourglass landmark network from AdaptiveWingLoss (Wang et al. 2019) with CoordConv
layers, released as ``wing.ckpt``. This file rebuilds that network and its mask recipe.

Submodule attribute names (``conv1``, ``bn1``, ``conv2``-``conv4``, ``m0``, ``top_m_0``,
``conv_last0``, ``bn_end0``, ``l0``; inside the hourglass ``coordconv`` and ``b1_4`` ...
``b2_plus_1`` ...; inside blocks ``bn1``-``bn3``, ``conv1``-``conv3``, ``downsample``) are
the official ones, so the official ``state_dict`` loads without a table of renamed keys.
Their meaning: ``m0`` the (single) hourglass, ``top_m_0`` / ``conv_last0`` / ``bn_end0``
the head after it, ``l0`` the 1x1 conv to 98 landmark heatmaps + 1 boundary map; in an
hourglass level ``b1_`` is the skip branch, ``b2_`` the block after pooling, ``b3_`` the
block before up-sampling, ``b2_plus_1`` the bottom of the hourglass.

Landmark indices (WFLW, 98 points): 0-32 face contour, 33-50 eyebrows, 51-54 nose bridge,
55-59 nostrils, 60-75 eyes, 76-87 outer lip, 88-95 inner lip, 96-97 pupils.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from stargan.errors import StarGANError
from stargan.models.layers import upsample_nearest2x

FAN_SIZE = 256  # FAN sees 256x256 images (its first CoordConv is built for that size)
NUM_LANDMARKS = 98

# Mask recipe of the official ``preprocess`` (core/wing.py). Heatmaps are first zeroed
# below TRUNCATE and min-max normalised per channel (+ NORM_EPS); then each landmark group
# is shifted vertically (wrapping around, rows: positive = up) and raised to a power, which
# sharpens its blob. Shifts are in pixels of the 256 px heatmaps.
TRUNCATE = 0.1
NORM_EPS = 1e-6
PART_OPS: tuple[tuple[slice, int, int], ...] = (  # (channels, shift up, power)
    (slice(8, 25), 0, 3),  # lower face contour (its top 8 points each side are dropped)
    (slice(33, 51), -7, 2),  # eyebrows
    (slice(55, 60), 8, 4),  # nostrils
    (slice(77, 82), -8, 4),  # upper lip
    (slice(83, 88), 8, 4),  # lower lip
    (slice(88, 96), -2, 3),  # inner lip
)
# Dropped: upper face contour, two eyebrow points (33, 46) and the mouth corners (76, 82).
ZEROED = (*range(0, 8), *range(25, 33), 33, 46, 76, 82)
NOSE_SHIFTED = slice(52, 55)  # nose bridge below its top point, shifted up NOSE_SHIFT
NOSE_SHIFT = 4
EYES = slice(60, 76)  # eyes: (eye moved down 8) ** 3 + (eye moved down 24)
# Dropped from the inner-face mask only: contour, mouth, eyebrows.
NOT_INNER = (slice(8, 25), slice(76, 96), slice(33, 51))

WEIGHTS_HINT = (
    "the face landmark network weights (wing.ckpt of the official StarGAN v2) cannot be "
    "downloaded here; copy the file to this machine, or set w_hpf 0 to train or translate "
    "without the face masks"
)


# ---------------------------------------------------------------- layers
class AddCoords(nn.Module):
    """Appends 3 fixed channels to x: the row coordinate, the column coordinate (each in
    [-1, 1]) and the radius sqrt(row**2 + col**2) / its max. The official ``AddCoordsTh``
    with ``with_r=True``; its ``with_boundary`` channels are never added in this FAN (one
    hourglass, built ``first_one`` and called without a previous heatmap), so they are left
    out. The coordinates are a non-persistent buffer: they move with ``.to()`` and are not
    saved, like the official plain tensor attributes."""

    def __init__(self, height: int, width: int) -> None:
        super().__init__()
        rows = torch.arange(height).unsqueeze(1).expand(height, width).float()
        cols = torch.arange(width).unsqueeze(0).expand(height, width).float()
        rows = (rows / (height - 1)) * 2 - 1  # same op order as the official: same bits
        cols = (cols / (width - 1)) * 2 - 1
        radius = torch.sqrt(rows.pow(2) + cols.pow(2))
        radius = radius / radius.max()
        self.register_buffer("coords", torch.stack([rows, cols, radius])[None], persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x: [N, C, height, width] -> [N, C + 3, height, width]
        if x.shape[-2:] != self.coords.shape[-2:]:
            raise StarGANError(
                f"FAN coordinate layer was built for {tuple(self.coords.shape[-2:])} maps, "
                f"got {tuple(x.shape[-2:])}"
            )
        coords = self.coords.to(x.dtype).expand(x.size(0), -1, -1, -1)
        return torch.cat([x, coords], dim=1)


class CoordConv(nn.Module):
    """``AddCoords`` then a conv over the C + 3 channels (official ``CoordConvTh``)."""

    def __init__(
        self,
        height: int,
        width: int,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        padding: int = 0,
    ) -> None:
        super().__init__()
        self.addcoords = AddCoords(height, width)
        self.conv = nn.Conv2d(in_channels + 3, out_channels, kernel_size, stride, padding)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(self.addcoords(x))


class ConvBlock(nn.Module):
    """Hierarchical residual block of FAN (Bulat & Tzimiropoulos 2017): three BN-ReLU-conv3x3
    steps giving out/2, out/4, out/4 channels, concatenated to ``out_planes`` and added to the
    input (through BN-ReLU-conv1x1 when the width changes). Convs have no bias."""

    def __init__(self, in_planes: int, out_planes: int) -> None:
        super().__init__()
        half, quarter = out_planes // 2, out_planes // 4
        self.bn1 = nn.BatchNorm2d(in_planes)
        self.conv1 = nn.Conv2d(in_planes, half, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(half)
        self.conv2 = nn.Conv2d(half, quarter, 3, 1, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(quarter)
        self.conv3 = nn.Conv2d(quarter, quarter, 3, 1, 1, bias=False)
        self.downsample = (
            nn.Sequential(
                nn.BatchNorm2d(in_planes),
                nn.ReLU(),
                nn.Conv2d(in_planes, out_planes, 1, 1, bias=False),
            )
            if in_planes != out_planes
            else None
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out1 = self.conv1(F.relu(self.bn1(x)))
        out2 = self.conv2(F.relu(self.bn2(out1)))
        out3 = self.conv3(F.relu(self.bn3(out2)))
        residual = x if self.downsample is None else self.downsample(x)
        return torch.cat([out1, out2, out3], dim=1) + residual


class HourGlass(nn.Module):
    """CoordConv 1x1 (256 + 3 -> 256 channels at 64x64), then a recursive hourglass of
    ``depth`` levels of 256-channel ConvBlocks: at each level the input goes through ``b1_``
    at full size and through avgpool - ``b2_`` - (next level, or ``b2_plus_1`` at the
    bottom) - ``b3_`` - nearest x2 up-sampling; the two are summed."""

    def __init__(self, depth: int = 4, features: int = 256, size: int = 64) -> None:
        super().__init__()
        self.depth = depth
        self.coordconv = CoordConv(size, size, features, features, kernel_size=1)
        # Registered in the official order (b1_4, b2_4, b1_3, ..., b2_plus_1, b3_1, ..., b3_4)
        # so state_dict keys come out in the same order as in wing.ckpt.
        self._build(depth, features)

    def _build(self, level: int, features: int) -> None:
        self.add_module(f"b1_{level}", ConvBlock(features, features))
        self.add_module(f"b2_{level}", ConvBlock(features, features))
        if level > 1:
            self._build(level - 1, features)
        else:
            self.add_module(f"b2_plus_{level}", ConvBlock(features, features))
        self.add_module(f"b3_{level}", ConvBlock(features, features))

    def _level(self, level: int, x: torch.Tensor) -> torch.Tensor:
        up = self.get_submodule(f"b1_{level}")(x)
        low = self.get_submodule(f"b2_{level}")(F.avg_pool2d(x, 2, stride=2))
        if level > 1:
            low = self._level(level - 1, low)
        else:
            low = self.get_submodule(f"b2_plus_{level}")(low)
        low = self.get_submodule(f"b3_{level}")(low)
        return up + upsample_nearest2x(low)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._level(self.depth, self.coordconv(x))


# ---------------------------------------------------------------- network
class FAN(nn.Module):
    """The official StarGAN v2 ``FAN`` (one hourglass, 98 landmarks).

    ``forward`` maps images in [0, 1] at 256x256 to 99 heatmaps at 64x64 (98 landmarks +
    a boundary map); :meth:`get_heatmap` turns images in [-1, 1] into G's two masks.

    ``end_relu`` (a ReLU on the heatmaps) defaults to False because the official StarGAN v2
    builds its FAN as ``FAN(fname_pretrained=args.wing_path)`` (core/model.py), leaving the
    official default ``end_relu=False``. It changes the masks, since ReLU comes before the
    bilinear up-sampling that precedes the truncation.
    """

    def __init__(self, num_landmarks: int = NUM_LANDMARKS, end_relu: bool = False) -> None:
        super().__init__()
        self.num_landmarks = num_landmarks
        self.end_relu = end_relu
        self.conv1 = CoordConv(FAN_SIZE, FAN_SIZE, 3, 64, kernel_size=7, stride=2, padding=3)
        self.bn1 = nn.BatchNorm2d(64)
        self.conv2 = ConvBlock(64, 128)
        self.conv3 = ConvBlock(128, 128)
        self.conv4 = ConvBlock(128, 256)
        self.m0 = HourGlass(depth=4, features=256, size=FAN_SIZE // 4)
        self.top_m_0 = ConvBlock(256, 256)
        self.conv_last0 = nn.Conv2d(256, 256, 1, 1, 0)
        self.bn_end0 = nn.BatchNorm2d(256)
        self.l0 = nn.Conv2d(256, num_landmarks + 1, 1, 1, 0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x: [N, 3, 256, 256] in [0, 1] -> [N, num_landmarks + 1, 64, 64]
        h = F.relu(self.bn1(self.conv1(x)))  # [N, 64, 128, 128]
        h = F.avg_pool2d(self.conv2(h), 2, stride=2)  # [N, 128, 64, 64]
        h = self.conv4(self.conv3(h))  # [N, 256, 64, 64]
        h = self.top_m_0(self.m0(h))
        h = F.relu(self.bn_end0(self.conv_last0(h)))
        out = self.l0(h)
        return F.relu(out) if self.end_relu else out

    @torch.no_grad()
    def get_heatmap(self, x: torch.Tensor) -> list[torch.Tensor]:
        """G's masks for images x [N, 3, H, W] in [-1, 1] (any size; resized to 256 as the
        official): ``[face, inner_face]``, each [N, 1, 256, 256] in [0, 1]. ``face`` covers
        the lower face contour, eyebrows, nose, eyes and mouth; ``inner_face`` drops the
        contour, eyebrows and mouth. The official ``FAN.get_heatmap``; no gradient flows."""
        if self.training:
            # BatchNorm would use batch statistics and overwrite the pretrained running ones.
            raise RuntimeError("FAN.get_heatmap needs eval mode: call fan.eval() first")
        x = F.interpolate(x, size=FAN_SIZE, mode="bilinear", align_corners=False)
        heatmaps = self(x * 0.5 + 0.5)[:, : self.num_landmarks]  # boundary map dropped
        scale = x.size(2) // heatmaps.size(2)  # 4
        heatmaps = F.interpolate(heatmaps, scale_factor=scale, mode="bilinear", align_corners=True)
        return list(masks_from_heatmaps(heatmaps))


def _shift_up(x: torch.Tensor, rows: int) -> torch.Tensor:
    """Moves the content of [N, C, H, W] maps ``rows`` up (down if negative), wrapping
    around as the official ``shift``."""
    return torch.roll(x, shifts=-rows, dims=2)


def masks_from_heatmaps(heatmaps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The official ``preprocess``: 98 landmark heatmaps [N, 98, 256, 256] -> (face mask,
    inner-face mask), each [N, 1, 256, 256] in [0, 1] (see the recipe constants above).

    One deliberate difference: the official zeroes NaNs of the inner mask where the face
    mask *after its own NaNs were zeroed* is NaN, i.e. never; here both masks have their
    NaNs zeroed. NaNs only come from non-finite inputs, so finite inputs give equal masks.
    """
    # The shifts are pixels at 256 px (the official scales some, not all, by H // 256,
    # and only ever calls it at 256), so other sizes are refused rather than guessed.
    if heatmaps.dim() != 4 or heatmaps.shape[1:] != (NUM_LANDMARKS, FAN_SIZE, FAN_SIZE):
        raise StarGANError(
            f"heatmaps must be [N, {NUM_LANDMARKS}, {FAN_SIZE}, {FAN_SIZE}], "
            f"got {tuple(heatmaps.shape)}"
        )
    x = torch.where(heatmaps < TRUNCATE, torch.zeros_like(heatmaps), heatmaps)
    flat = x.flatten(2)
    lo, hi = flat.amin(dim=2, keepdim=True), flat.amax(dim=2, keepdim=True)
    x = ((flat - lo) / (hi - lo + NORM_EPS)).view_as(x)

    for channels, rows, power in PART_OPS:
        x[:, channels] = _shift_up(x[:, channels], rows) ** power
    x[:, list(ZEROED)] = 0
    x[:, NOSE_SHIFTED] = _shift_up(x[:, NOSE_SHIFTED], NOSE_SHIFT)
    eyes = x[:, EYES]
    x[:, EYES] = _shift_up(eyes, -8) ** 3 + _shift_up(eyes, -24)

    inner = x.clone()
    for channels in NOT_INNER:
        inner[:, channels] = 0
    face, inner = x.sum(dim=1, keepdim=True), inner.sum(dim=1, keepdim=True)
    face = torch.where(torch.isnan(face), torch.zeros_like(face), face)
    inner = torch.where(torch.isnan(inner), torch.zeros_like(inner), inner)
    return face.clamp(0, 1), inner.clamp(0, 1)


# ---------------------------------------------------------------- loading
def load_fan(path: str | Path) -> FAN:
    """The official FAN from ``path``, in eval mode with gradients off.

    ``path`` is the official ``wing.ckpt`` (a torch pickle ``{"state_dict": {...}}``, read
    with ``weights_only=True``: nothing but tensors and plain containers is unpickled), a
    bare state dict pickle, or a ``.safetensors`` file of the same state dict. As the
    official ``load_pretrained_weights``, keys the network lacks are ignored; unlike it, a
    missing weight is an error rather than silently left random. BatchNorm
    ``num_batches_tracked`` counters (unused in eval) may be absent.
    """
    path = Path(path)
    if not path.exists():
        raise StarGANError(f"FAN weights file {path} not found: {WEIGHTS_HINT}")
    if not path.is_file():
        raise StarGANError(f"FAN weights path {path} is not a file")
    state = _read_state(path)
    fan = FAN()
    fan.load_state_dict(_merge_state(fan, state, path))
    return fan.eval().requires_grad_(False)


def _read_state(path: Path) -> dict[str, torch.Tensor]:
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except (SafetensorError, OSError, ValueError) as err:
            raise StarGANError(f"{path} is not a readable safetensors file: {err}") from err
    try:
        ckpt: Any = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        # The restricted unpickler and the archive readers raise many types on a foreign
        # file (UnpicklingError, RuntimeError, EOFError, ...); all mean the same to the user.
        first = str(err).strip().splitlines()[-1][:160] if str(err).strip() else ""
        raise StarGANError(
            f"{path} is not a PyTorch weights file readable without running code "
            f"({type(err).__name__}{': ' + first if first else ''})"
        ) from err
    if isinstance(ckpt, dict) and "state_dict" in ckpt:
        ckpt = ckpt["state_dict"]
    if not isinstance(ckpt, dict) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in ckpt.items()
    ):
        raise StarGANError(
            f"{path} holds no state dict (name -> tensor) of FAN: expected the official "
            f"wing.ckpt ({{'state_dict': {{...}}}})"
        )
    return ckpt


def _merge_state(fan: FAN, state: dict[str, torch.Tensor], path: Path) -> dict[str, torch.Tensor]:
    """The model's state dict updated with the file's tensors of the same names; errors for
    missing weights or wrong shapes."""
    if state and all(k.startswith("module.") for k in state):  # saved from nn.DataParallel
        state = {k.removeprefix("module."): v for k, v in state.items()}
    own = fan.state_dict()
    found = {k: v for k, v in state.items() if k in own}
    if not found:
        raise StarGANError(
            f"{path} holds no FAN weights (none of its {len(state)} tensors is named like "
            f"the official FAN's, e.g. 'conv1.conv.weight')"
        )
    missing = [k for k in own if k not in found and not k.endswith("num_batches_tracked")]
    if missing:
        raise StarGANError(
            f"{path} lacks {len(missing)} FAN weights, e.g. {', '.join(missing[:3])}"
        )
    wrong = [
        f"{k} {tuple(v.shape)} (FAN has {tuple(own[k].shape)})"
        for k, v in found.items()
        if v.shape != own[k].shape
    ]
    if wrong:
        raise StarGANError(f"{path} has FAN weights of the wrong shape: {'; '.join(wrong[:3])}")
    return {**own, **found}
