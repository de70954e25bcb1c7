"""How far apart the two resize filters are: bicubic (our default) vs bilinear (the official
StarGAN loaders': torchvision's Resize of a PIL image, i.e. Pillow's antialiased bilinear).

    python benchmarks/resize_filter.py                     # 200 CelebA images, 128 and 64 px
    python benchmarks/resize_filter.py --n 1000 --image-size 256
    python benchmarks/resize_filter.py --path /data/celeba # any official-layout folder

Each image (the first ``--n`` rows of ``list_attr_celeba.txt``) is decoded as the ``celeba``
loader decodes it (data/decode.py: centre crop 178, then resize) once per filter. Per size:
the mean absolute difference in 8-bit levels (0-255), the root mean square difference, the
PSNR of one against the other over all pixels (MSE pooled over the images), the lowest
per-image PSNR, and the largest difference of any pixel. Prints a table, then the figures
as one JSON line.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np

from _report import print_report
from stargan.data.celeba import ATTR_FILE, CROP, check_layout, read_attr_file
from stargan.data.decode import decode_one

SUBSET = Path(__file__).resolve().parents[2] / "shared" / "data" / "celeba_subset"


def _parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    ap.add_argument("--path", type=Path, default=SUBSET, help="CelebA folder (official layout)")
    ap.add_argument("--n", type=int, default=200, help="images compared")
    ap.add_argument("--image-size", type=int, nargs="+", default=[128, 64], help="output px")
    args = ap.parse_args()
    if args.n < 1 or min(args.image_size) < 1:
        ap.error("--n and --image-size must be >= 1")
    return args


def psnr(mse: float) -> float:
    """PSNR in dB of 8-bit images with mean squared difference ``mse`` (inf when equal)."""
    return math.inf if mse == 0 else 10 * math.log10(255.0**2 / mse)


def compare(paths: list[Path], size: int) -> dict[str, float]:
    """Bicubic vs bilinear decodes of ``paths`` at ``size`` px."""
    bicubic = np.stack([decode_one(p, size, CROP, "bicubic") for p in paths]).astype(np.float64)
    bilinear = np.stack([decode_one(p, size, CROP, "bilinear") for p in paths]).astype(np.float64)
    diff = bicubic - bilinear  # [N, S, S, 3], 8-bit levels
    per_image_mse = (diff**2).mean(axis=(1, 2, 3))
    return {
        "mad": float(np.abs(diff).mean()),
        "rmse": float(np.sqrt((diff**2).mean())),
        "psnr_db": psnr(float((diff**2).mean())),
        "min_psnr_db": psnr(float(per_image_mse.max())),
        "max_abs": float(np.abs(diff).max()),
    }


def main() -> None:
    args = _parse_args()
    image_dir = check_layout(args.path)
    _, files, _ = read_attr_file(args.path / ATTR_FILE)
    paths = [image_dir / f for f in files[: args.n]]
    rows = [("images", f"{len(paths)} of {args.path} (crop {CROP})")]
    result: dict[str, float | int] = {"images": len(paths)}
    for size in args.image_size:
        r = compare(paths, size)
        rows.append(
            (
                f"{size} px",
                f"mean |diff| {r['mad']:.2f} levels, RMS {r['rmse']:.2f}, "
                f"PSNR {r['psnr_db']:.1f} dB (worst image {r['min_psnr_db']:.1f} dB), "
                f"max |diff| {r['max_abs']:.0f}",
            )
        )
        result.update({f"{k}_{size}": v for k, v in r.items()})
    print_report(rows, result)


if __name__ == "__main__":
    main()
