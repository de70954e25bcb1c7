"""Per-image distances between uint8 images [N, C, H, W] (values 0..255): L1, PSNR and SSIM.

Every function returns a float64 tensor [N] (one value per image pair) on the inputs' device,
so callers can average, take medians or group by domain as they like.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

PSNR_CAP = 100.0  # dB given to identical images (their MSE is 0)
SSIM_SIGMA = 1.5
SSIM_WIN = 11  # taps of the Gaussian window: scikit-image's 2 * int(3.5 * sigma + 0.5) + 1
SSIM_K1, SSIM_K2 = 0.01, 0.03
SSIM_MIN_SIZE = 7
_SSIM_CHUNK = 32  # images per convolution, to bound memory: 5 float64 maps per channel


def l1(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference per image on a [0, 1] scale: mean(|a - b|) / 255."""
    x, y = _pair(a, b)
    return (x - y).abs().flatten(1).mean(1) / 255.0


def psnr(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Peak signal-to-noise ratio per image in dB, 10 log10(255^2 / MSE), capped at 100 dB
    (identical images, MSE 0, get exactly 100)."""
    x, y = _pair(a, b)
    mse = (x - y).pow(2).flatten(1).mean(1)
    db = 10 * torch.log10(255.0**2 / mse.clamp_min(1e-300))
    return db.clamp_max(PSNR_CAP)


def ssim(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Structural similarity per image (Wang et al. 2004), in float64.

    Equal to scikit-image's ``structural_similarity(a, b, gaussian_weights=True, sigma=1.5,
    use_sample_covariance=False, data_range=255, channel_axis=...)``: local means, variances
    and covariance under an 11 x 11 Gaussian window (sigma 1.5, normalised), K1 = 0.01,
    K2 = 0.03, the SSIM map

        ((2 mu_a mu_b + C1) (2 s_ab + C2)) / ((mu_a^2 + mu_b^2 + C1) (s_a^2 + s_b^2 + C2))

    with C1 = (K1 * 255)^2, C2 = (K2 * 255)^2, averaged over the valid region only (the
    (win - 1) / 2 border pixels, where the window would leave the image, are dropped), then
    averaged over channels.

    Images smaller than 11 px on a side (7 to 10 px) use a smaller window, the largest odd
    size that fits (7 or 9), as scikit-image does when given that ``win_size``: the Gaussian
    filter keeps its 11 taps, reaching past the image edge into a mirror image of it
    (scipy's 'reflect' border), and only (win - 1) / 2 border pixels are dropped. Such values
    agree with scikit-image but are not quite the 11 x 11 SSIM of larger images.
    """
    x, y = _pair(a, b)
    h, w = x.shape[-2:]
    if min(h, w) < SSIM_MIN_SIZE:
        raise ValueError(f"ssim needs images of at least {SSIM_MIN_SIZE} px, got {h} x {w}")
    win = min(SSIM_WIN, (min(h, w) - 1) // 2 * 2 + 1)  # largest odd size that fits
    # Mirror just enough border that the 11-tap filter's output covers the pixels kept: none
    # for an 11 px window, 2 px for a 7 px one.
    x, y = _mirror(x, (SSIM_WIN - win) // 2), _mirror(y, (SSIM_WIN - win) // 2)
    g = _gaussian(SSIM_WIN, SSIM_SIGMA, x.device)
    return torch.cat(
        [
            _ssim_chunk(x[s : s + _SSIM_CHUNK], y[s : s + _SSIM_CHUNK], g)
            for s in range(0, x.size(0), _SSIM_CHUNK)
        ]
    )


def _ssim_chunk(x: torch.Tensor, y: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    n, c = x.shape[:2]
    # Filter the five moment images of every channel at once: [n, 5 * c, H, W].
    maps = _blur(torch.cat([x, y, x * x, y * y, x * y], 1), g)
    mu_x, mu_y, xx, yy, xy = maps.unflatten(1, (5, c)).unbind(1)  # each [n, c, H', W']
    var_x = xx - mu_x * mu_x  # population (co)variances: use_sample_covariance=False
    var_y = yy - mu_y * mu_y
    cov = xy - mu_x * mu_y
    c1, c2 = (SSIM_K1 * 255.0) ** 2, (SSIM_K2 * 255.0) ** 2
    s = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / (
        (mu_x * mu_x + mu_y * mu_y + c1) * (var_x + var_y + c2)
    )
    return s.flatten(2).mean(2).mean(1)  # valid region per channel, then over channels


def _blur(z: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """Separable Gaussian filter of every channel, 'valid' region only: [N, K, H, W] ->
    [N, K, H - win + 1, W - win + 1]. scikit-image filters with mirrored borders and then
    drops (win - 1) / 2 border pixels, which for an 11 px window leaves exactly these."""
    k, win = z.size(1), g.numel()
    z = F.conv2d(z, g.view(1, 1, win, 1).expand(k, 1, win, 1), groups=k)
    return F.conv2d(z, g.view(1, 1, 1, win).expand(k, 1, 1, win), groups=k)


def _mirror(z: torch.Tensor, p: int) -> torch.Tensor:
    """Pads H and W by p pixels of mirror image, edge pixel repeated (scipy's 'reflect',
    ``d c b a | a b c d``; torch's 'reflect' mode would skip the edge pixel). p <= H, W."""
    if p == 0:
        return z
    for dim in (-2, -1):
        n = z.size(dim)
        i = torch.arange(-p, n + p, device=z.device)
        i = torch.where(i < 0, -1 - i, torch.where(i >= n, 2 * n - 1 - i, i))
        z = z.index_select(dim, i)
    return z


def _gaussian(win: int, sigma: float, device: torch.device) -> torch.Tensor:
    """Normalised 1-D Gaussian taps [win], as scipy.ndimage.gaussian_filter uses them."""
    r = torch.arange(win, dtype=torch.float64, device=device) - (win - 1) / 2
    g = torch.exp(-0.5 * (r / sigma) ** 2)
    return g / g.sum()


def _pair(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Checks two uint8 image batches [N, C, H, W] and returns them as float64."""
    if a.shape != b.shape:
        raise ValueError(f"image batches differ in shape: {tuple(a.shape)} vs {tuple(b.shape)}")
    if a.dim() != 4:
        raise ValueError(f"expected images [N, C, H, W], got shape {tuple(a.shape)}")
    if a.dtype != torch.uint8 or b.dtype != torch.uint8:
        # A float image could be in [0, 1] or [-1, 1]; guessing would silently change the
        # peak of PSNR and the constants of SSIM, so convert with to_uint8 first.
        raise ValueError(f"expected uint8 images, got {a.dtype} and {b.dtype}")
    return a.double(), b.double()
