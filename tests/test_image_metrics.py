"""Per-image L1, PSNR and SSIM: closed-form cases, SSIM's properties, and agreement with
scikit-image's ``structural_similarity`` on fixed image pairs (reference values hard-coded)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from stargan.evaluate.image_metrics import l1, psnr, ssim

# Reference values: scikit-image 0.26.0, numpy 2.4.6, in a separate venv, from this script
# (the images come from integer arithmetic and the legacy RandomState, whose streams numpy
# keeps fixed, so the test regenerates them exactly without scikit-image):
#
#   import numpy as np
#   from skimage.metrics import structural_similarity
#
#   def smooth(h, w):  # integer triangle waves per channel, [3, h, w]
#       yy, xx = np.mgrid[0:h, 0:w]
#       return np.stack([np.abs((xx * 4 + yy * 3 + 50 * c) % 400 - 200) + 27 for c in range(3)])
#
#   def cases():
#       rs = np.random.RandomState(0)
#       a = rs.randint(0, 256, (3, 32, 32))
#       yield "noise 32x32", a, rs.randint(0, 256, (3, 32, 32))
#       a = smooth(64, 64)
#       yield "smooth 64x64 vs noisy", a, np.clip(a + rs.randint(-30, 31, a.shape), 0, 255)
#       a = rs.randint(0, 256, (3, 16, 16))
#       yield "16x16 vs blend", a, (a + rs.randint(0, 256, a.shape)) // 2
#       a = smooth(24, 40)
#       yield "smooth 24x40 vs noisy", a, np.clip(a + rs.randint(-60, 61, a.shape), 0, 255)
#       a = smooth(8, 9)
#       yield "8x9 vs noisy", a, np.clip(a + rs.randint(-40, 41, a.shape), 0, 255)
#       a = rs.randint(0, 256, (3, 7, 12))
#       yield "7x12 vs blend", a, (3 * a + rs.randint(0, 256, a.shape)) // 4
#
#   for name, a, b in cases():
#       a, b = a.astype(np.uint8), b.astype(np.uint8)
#       win = min(11, (min(a.shape[1:]) - 1) // 2 * 2 + 1)  # largest odd size that fits
#       kw = dict(gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
#                 data_range=255, channel_axis=0, win_size=win)
#       print(f"{name}: {structural_similarity(a, b, **kw)!r}")
SKIMAGE_SSIM = {
    "noise 32x32": 0.002887678034721279,
    "smooth 64x64 vs noisy": 0.35748998036242563,
    "16x16 vs blend": 0.5983217241814138,
    "smooth 24x40 vs noisy": 0.12535757852362575,
    "8x9 vs noisy": 0.23159097206918625,  # window 7
    "7x12 vs blend": 0.9341207114172013,  # window 7
}


def _smooth(h: int, w: int) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w]
    return np.stack([np.abs((xx * 4 + yy * 3 + 50 * c) % 400 - 200) + 27 for c in range(3)])


def _cases():
    rs = np.random.RandomState(0)
    a = rs.randint(0, 256, (3, 32, 32))
    yield "noise 32x32", a, rs.randint(0, 256, (3, 32, 32))
    a = _smooth(64, 64)
    yield "smooth 64x64 vs noisy", a, np.clip(a + rs.randint(-30, 31, a.shape), 0, 255)
    a = rs.randint(0, 256, (3, 16, 16))
    yield "16x16 vs blend", a, (a + rs.randint(0, 256, a.shape)) // 2
    a = _smooth(24, 40)
    yield "smooth 24x40 vs noisy", a, np.clip(a + rs.randint(-60, 61, a.shape), 0, 255)
    a = _smooth(8, 9)
    yield "8x9 vs noisy", a, np.clip(a + rs.randint(-40, 41, a.shape), 0, 255)
    a = rs.randint(0, 256, (3, 7, 12))
    yield "7x12 vs blend", a, (3 * a + rs.randint(0, 256, a.shape)) // 4


def _u8(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(a.astype(np.uint8))[None]  # [1, 3, H, W]


@pytest.mark.parametrize("name", list(SKIMAGE_SSIM))
def test_ssim_matches_scikit_image(name: str) -> None:
    _, a, b = next(c for c in _cases() if c[0] == name)
    got = ssim(_u8(a), _u8(b))
    assert got.shape == (1,) and got.dtype == torch.float64
    assert got.item() == pytest.approx(SKIMAGE_SSIM[name], abs=1e-9)


def _noisy(n: int = 4, size: int = 24, amp: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    a = torch.randint(40, 216, (n, 3, size, size), generator=g)
    noise = torch.randint(-amp, amp + 1, a.shape, generator=g)
    return a.to(torch.uint8), (a + noise).clamp(0, 255).to(torch.uint8)


def test_ssim_batch_equals_one_by_one() -> None:
    a, b = _noisy(n=40, amp=50)  # more than one internal chunk of 32
    whole = ssim(a, b)
    assert whole.shape == (40,)
    singles = torch.cat([ssim(a[i : i + 1], b[i : i + 1]) for i in range(40)])
    torch.testing.assert_close(whole, singles, rtol=0, atol=1e-12)


def test_ssim_identity_symmetry_and_monotone_in_noise() -> None:
    a, b = _noisy(amp=30)
    assert torch.allclose(ssim(a, a), torch.ones(4, dtype=torch.float64), atol=1e-12)
    torch.testing.assert_close(ssim(a, b), ssim(b, a), rtol=0, atol=1e-12)
    means = [ssim(*_noisy(amp=amp)).mean().item() for amp in (0, 5, 15, 40, 100)]
    assert means[0] == pytest.approx(1.0)
    assert all(means[i] > means[i + 1] for i in range(len(means) - 1)), means
    assert means[-1] < 0.7  # noise of +-100 on texture of +-88: structure mostly lost


def test_ssim_rejects_tiny_or_float_images() -> None:
    with pytest.raises(ValueError, match="at least 7"):
        ssim(*_noisy(size=6))
    a, _ = _noisy()
    with pytest.raises(ValueError, match="uint8"):
        ssim(a.float(), a.float())
    with pytest.raises(ValueError, match="shape"):
        ssim(a, a[:, :, :-1])


def test_psnr_closed_form() -> None:
    a = torch.full((2, 3, 8, 8), 100, dtype=torch.uint8)
    b = a.clone()
    b[1] += 5  # every pixel off by 5: MSE 25
    got = psnr(a, b)
    assert got.dtype == torch.float64
    assert got[0].item() == 100.0  # identical: capped
    assert got[1].item() == pytest.approx(20 * math.log10(255 / 5), abs=1e-12)  # 34.15 dB


def test_l1_known_value() -> None:
    a = torch.zeros((2, 3, 4, 4), dtype=torch.uint8)
    b = a.clone()
    b[0, :, :2] = 255  # half the pixels full scale: 0.5
    b[1] = 51  # every pixel 51 / 255 = 0.2
    torch.testing.assert_close(l1(a, b), torch.tensor([0.5, 0.2], dtype=torch.float64))
    assert l1(b, a).tolist() == l1(a, b).tolist()  # no uint8 wrap-around
