"""int8 generator (stargan.quantize): same call as G, close to fp32, deterministic, errors."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from stargan.config import ModelConfig
from stargan.data.labels import LabelSpec
from stargan.errors import StarGANError
from stargan.models.v1 import Generator
from stargan.quantize import (
    Int8Generator,
    calibration_set,
    int8_unsupported_reason,
    quantize_generator,
)
from stargan.translate import Translator

needs_int8 = pytest.mark.skipif(
    int8_unsupported_reason() is not None, reason=f"int8: {int8_unsupported_reason()}"
)
C_DIM, SIZE = 3, 32


def _g(seed: int = 0) -> Generator:
    torch.manual_seed(seed)
    return Generator(C_DIM, conv_dim=16, repeat_num=2).eval()


def _images(n: int, seed: int) -> torch.Tensor:
    """Smooth images in [-1, 1] (upsampled 8x8 noise): closer to photos than pixel noise."""
    gen = torch.Generator().manual_seed(seed)
    low = torch.rand(n, 3, 8, 8, generator=gen) * 2 - 1
    return F.interpolate(low, size=SIZE, mode="bilinear", align_corners=False)


def _labels(n: int) -> torch.Tensor:
    return torch.eye(C_DIM)[torch.arange(n) % C_DIM]


def _psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = ((a - b) * 127.5).pow(2).mean().item()  # outputs in [-1, 1] mapped to [0, 255]
    return 10 * math.log10(255**2 / mse)


@pytest.fixture(scope="module")
def pair() -> tuple[Generator, Int8Generator]:
    G = _g()
    return G, quantize_generator(G, _images(12, seed=1), _labels(12))


def test_float_path_equals_generator() -> None:
    """Before calibration ends the int8 model runs in float: it must be G exactly (checks
    the restructuring, the fused norm and the sub-pixel form of ConvTranspose2d)."""
    G, x, c = _g(), _images(3, seed=2), _labels(3)
    with torch.no_grad():
        torch.testing.assert_close(Int8Generator(G)(x, c), G(x, c), atol=2e-5, rtol=0)


@needs_int8
def test_shape_range_and_psnr(pair) -> None:
    G, q = pair
    x, c = _images(6, seed=3), _labels(6)  # other images than the calibration ones
    with torch.no_grad():
        y, ref = q(x, c), G(x, c)
    assert y.shape == (6, 3, SIZE, SIZE) and y.dtype == torch.float32 and y.is_contiguous()
    assert y.abs().max() <= 1
    assert _psnr(y, ref) > 35  # the bar; measured ~45 dB here
    assert (y - ref).abs().max() > 0  # really quantized, not the float path


@needs_int8
def test_deterministic_and_batch_independent(pair) -> None:
    G, q = pair
    x, c = _images(5, seed=4), _labels(5)
    again = quantize_generator(G, _images(12, seed=1), _labels(12))
    y = q(x, c)
    assert torch.equal(y, q(x, c))
    assert torch.equal(y, again(x, c))
    alone = torch.cat([q(x[i : i + 1], c[i : i + 1]) for i in range(5)])
    torch.testing.assert_close(y, alone, atol=1e-6, rtol=0)


@needs_int8
def test_generator_untouched_and_works_in_translator(pair) -> None:
    G, q = pair
    before = {k: v.clone() for k, v in G.state_dict().items()}
    quantize_generator(G, _images(2, seed=5), _labels(2))
    assert all(torch.equal(before[k], v) for k, v in G.state_dict().items())
    cfg = ModelConfig(image_size=SIZE, c_dim=C_DIM, g_conv_dim=16, g_repeat_num=2)
    spec = LabelSpec(("a", "b", "c"), "multi", ())
    tr, tr_int8 = Translator(G, cfg, spec), Translator(q, cfg, spec)
    x = _images(2, seed=6)
    assert tr_int8.device == torch.device("cpu")
    assert (
        _psnr(tr_int8.translate(x, "b=1", c_org=_labels(2)), tr.translate(x, "b=1", _labels(2)))
        > 35
    )


def test_calibration_set_pairs_each_image_with_each_change() -> None:
    cfg = ModelConfig(image_size=SIZE, c_dim=C_DIM, g_conv_dim=16, g_repeat_num=2)
    spec = LabelSpec(("a", "b", "c"), "multi", ())
    tr = Translator(_g(), cfg, spec)
    x, c_org = _images(2, seed=8), torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 1.0]])
    xs, cs = calibration_set(tr, x, c_org)
    assert xs.shape == (6, 3, SIZE, SIZE) and torch.equal(xs[4:], x)
    assert torch.equal(cs[:2], torch.tensor([[0.0, 0.0, 0.0], [1.0, 1.0, 1.0]]))  # a flipped
    with pytest.raises(StarGANError, match="discriminator"):
        calibration_set(tr, x)  # no D to estimate the labels


def test_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    G, x = _g(), _images(2, seed=7)
    with pytest.raises(StarGANError, match=r"labels must be \[2, 3\]"):
        quantize_generator(G, x, torch.zeros(2, 5))
    with pytest.raises(StarGANError, match="not a StarGAN v1 generator"):
        Int8Generator(torch.nn.Sequential())
    monkeypatch.setattr(torch.cpu, "_is_vnni_supported", lambda: False)
    assert "VNNI" in int8_unsupported_reason()
    with pytest.raises(StarGANError, match="int8 inference is not available: .*VNNI"):
        quantize_generator(G, x, _labels(2))
