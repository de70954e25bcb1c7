"""FID on real CelebA faces, and how long the Inception features take on this machine.

    python benchmarks/fid_speed.py                       # 1000 test vs 1000 train, 128 px
    python benchmarks/fid_speed.py --n 200 --threads 1   # a quicker look
    python benchmarks/fid_speed.py --inception pt_inception-2015-12-05-6726825d.pth

Faces are the official CelebA test and train splits of ``--path`` (centre crop 178,
resized to ``--image-size`` as training sees them). Reported: FID test vs train (two real
samples: the floor a generator can hope for at this n), FID test vs the same test images
Gaussian-blurred (must be far higher), and the wall time of the Inception features of the
n test images (resize to 299 included). The 1-minute load average before the run says
how busy the machine was. Needs ``stargan weights fid`` (or ``--inception``).
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageFilter

from _report import print_report
from stargan.data.celeba import load_celeba
from stargan.evaluate.fid import fid_from_features, inception_features, load_inception

SUBSET = Path(__file__).resolve().parents[2] / "shared" / "data" / "celeba_subset"


def gaussian_blur(images: np.ndarray, radius: float) -> np.ndarray:
    """uint8 [N, H, W, 3] -> the same images blurred (PIL Gaussian, ``radius`` = sigma)."""
    blurred = [Image.fromarray(im).filter(ImageFilter.GaussianBlur(radius)) for im in images]
    return np.stack([np.asarray(im) for im in blurred])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--path", type=Path, default=SUBSET, help="CelebA in its official layout")
    ap.add_argument("--n", type=int, default=1000, help="images per set")
    ap.add_argument("--image-size", type=int, default=128)
    ap.add_argument("--batch-size", type=int, default=50)
    ap.add_argument("--blur-radius", type=float, default=2.0)
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--inception", type=Path, default=None, help="a .pth/.safetensors file")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    load_before = os.getloadavg()[0]

    def faces(split: str) -> np.ndarray:
        data = load_celeba(args.path, (), args.image_size, split, "official")
        return np.asarray(data.images[: args.n])

    test, train = faces("test"), faces("train")
    model = load_inception(args.inception)

    start = time.perf_counter()
    f_test = inception_features(test, model, args.batch_size)
    feature_s = time.perf_counter() - start
    f_train = inception_features(train, model, args.batch_size)
    f_blur = inception_features(gaussian_blur(test, args.blur_radius), model, args.batch_size)
    start = time.perf_counter()
    fid_train = fid_from_features(f_test, f_train)
    fid_s = time.perf_counter() - start
    fid_blur = fid_from_features(f_test, f_blur)

    result = {
        "n": len(test),
        "n_train": len(train),
        "image_size": args.image_size,
        "threads": args.threads,
        "load_avg_before": load_before,
        "features_s": feature_s,
        "ms_per_image": 1000 * feature_s / len(test),
        "fid_test_vs_train": fid_train,
        "fid_test_vs_blurred": fid_blur,
        "blur_radius": args.blur_radius,
        "frechet_s": fid_s,
    }
    rows = [
        ("images per set", f"{len(test)} test, {len(train)} train at {args.image_size} px"),
        ("torch threads", f"{args.threads} (1-min load average before: {load_before:.2f})"),
        ("Inception features", f"{feature_s:.1f} s for {len(test)} images"),
        ("per image", f"{result['ms_per_image']:.0f} ms"),
        ("FID test vs train", f"{fid_train:.2f}"),
        (f"FID test vs blurred (r={args.blur_radius:g})", f"{fid_blur:.2f}"),
        ("Frechet distance", f"{fid_s:.2f} s"),
    ]
    print_report(rows, result)


if __name__ == "__main__":
    main()
