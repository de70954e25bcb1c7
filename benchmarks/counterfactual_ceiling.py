"""How close to the exact ground truth any translator of the built-in faces can get.

    python benchmarks/counterfactual_ceiling.py                 # the demo's setting: 32 px
    python benchmarks/counterfactual_ceiling.py --size 64 --n 300

The counterfactual truth keeps every latent factor of a face, including ones the input image
does not show: a woman's facial-hair latent (men only), a young face's amount of ageing, the
part of the hair-style latent a woman's style does not pin down. No translator can read those
from the input, so the best it can do is a guess, and its PSNR to the truth has a ceiling
below 100 dB. This script estimates it without training anything, on the demo's scoring
protocol (test split, one change per image, per-image PSNR averaged):

- for each test face and latent factor, ``--tries`` random redraws of that factor; a redraw
  that leaves the *input* image pixel-for-pixel unchanged is a value the input cannot rule
  out (rejection sampling of that factor's posterior given the image);
- **posterior sample**: the counterfactual rendered with such redrawn factors (each of
  ``--samples`` draws picks one accepted value per factor; factors with none keep the truth)
  scored against the truth. A perfect, sharp translator (what a GAN aims at) scores this on
  average;
- **posterior mean**: the pixel average of those renders against the truth: the best any
  translator can score in PSNR (it pays for blur in sharpness, not in PSNR).

PSNR is given as ``stargan score`` reports it (the mean of per-image PSNRs, each capped at
100 dB, so exact images weigh a lot) and of the pooled squared error (all images' pixels
together, as ``counterfactual_regions.py``), which exact images cannot inflate.

Both are optimistic (``--tries`` redraws can miss values the input allows, and the redraws
change one factor at a time), so the true ceilings are at or below these. Prints a table per
target domain, then one JSON line.
"""

from __future__ import annotations

import argparse
import dataclasses
import math

import numpy as np
import torch

from _report import print_report
from stargan.data import builtin, faces

LATENTS = tuple(f.name for f in dataclasses.fields(faces.FaceParams) if f.type in ("float", float))


SPEC = builtin.label_spec("faces-attr")  # the demo's labels


def targets(p: faces.FaceParams) -> dict[str, np.ndarray]:
    """The single changes ``stargan score`` makes to face ``p`` (those that change its
    labels): domain name -> target label vector."""
    own = torch.from_numpy(builtin.labels_of("faces-attr", SPEC, [p]))
    out = {}
    for change in SPEC.changes("single"):
        c_trg = SPEC.change(own, change)
        if not torch.equal(c_trg, own):  # e.g. black hair for a black-haired face
            out["+".join(change)] = c_trg[0].numpy()
    return out


def ideal(p: faces.FaceParams, c_trg: np.ndarray) -> faces.FaceParams:
    """The ground truth's parameters, as ``stargan score`` makes them."""
    truth = builtin.counterfactual_params(p, SPEC, c_trg)
    if truth is None:  # single changes of faces-attr always have one
        raise ValueError(f"no ground truth for {c_trg.tolist()}")
    return truth


def accepted_values(p: faces.FaceParams, size: int, tries: int, rng) -> dict[str, list[float]]:
    """Per latent factor: the redrawn values that leave ``p``'s image unchanged."""
    image = faces.render(p, size)
    found = {}
    for name in LATENTS:
        ok = [
            v
            for v in rng.random(tries).tolist()
            if np.array_equal(faces.render(dataclasses.replace(p, **{name: v}), size), image)
        ]
        if ok:
            found[name] = ok
    return found


def mse(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))


def db(mean_sq: float) -> float:
    """PSNR of a mean squared error, capped at 100 dB as ``stargan score``'s."""
    return min(100.0, 10 * math.log10(255**2 / max(mean_sq, 1e-300)))


def score_face(p, size: int, tries: int, samples: int, rng) -> dict[str, dict[str, float]]:
    hidden = accepted_values(p, size, tries, rng)
    x = faces.render(p, size)
    out = {}
    for domain, c_trg in targets(p).items():
        truth = faces.render(ideal(p, c_trg), size)
        draws = []
        for s in range(samples):
            guess = {
                name: vals[(s + rng.integers(len(vals))) % len(vals)]
                for name, vals in hidden.items()
            }
            draws.append(faces.render(ideal(dataclasses.replace(p, **guess), c_trg), size))
        mean = np.mean(np.stack(draws).astype(np.float64), 0)
        sample_mse = [mse(d, truth) for d in draws]
        out[domain] = {
            "input": db(mse(x, truth)),
            "sample": float(np.mean([db(e) for e in sample_mse])),
            "mean": db(mse(mean, truth)),
            "input_mse": mse(x, truth),
            "sample_mse": float(np.mean(sample_mse)),
            "mean_mse": mse(mean, truth),
        }
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", type=int, default=32, help="image size (the demo: 32)")
    ap.add_argument("--n", type=int, default=500, help="test faces (the demo scores 500)")
    ap.add_argument("--seed", type=int, default=0, help="data seed (the demo: 0)")
    ap.add_argument("--tries", type=int, default=8, help="redraws per latent factor")
    ap.add_argument("--samples", type=int, default=8, help="posterior draws per translation")
    args = ap.parse_args()
    rng = np.random.default_rng(12345)
    per_domain: dict[str, list[dict[str, float]]] = {}
    for i in range(args.n):
        p = faces.params_for(args.seed, "test", i)
        for domain, row in score_face(p, args.size, args.tries, args.samples, rng).items():
            per_domain.setdefault(domain, []).append(row)
    rows = [
        (
            "domain (n)",
            "PSNR dB to the truth, mean of images: input | sample | mean;"
            "  of the pooled error: input | sample | mean",
        )
    ]
    result: dict = {"size": args.size, "n": args.n}
    everything = [r for rs in per_domain.values() for r in rs]
    for domain, rs in [*per_domain.items(), ("overall", everything)]:
        kinds = ("input", "sample", "mean")
        means = {k: float(np.mean([r[k] for r in rs])) for k in kinds}
        pooled = {f"{k}_pooled": db(float(np.mean([r[f"{k}_mse"] for r in rs]))) for k in kinds}
        text = " | ".join(f"{means[k]:.2f}" for k in kinds)
        text += ";  " + " | ".join(f"{pooled[f'{k}_pooled']:.2f}" for k in kinds)
        rows.append((f"{domain} ({len(rs)})", text))
        result |= {f"{domain}_{k}": v for k, v in (means | pooled).items()}
    print_report(rows, result)


if __name__ == "__main__":
    main()
