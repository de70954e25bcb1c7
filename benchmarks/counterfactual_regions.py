"""Where a built-in-faces model's error to the exact ground truth lies: in the pixels the
ideal change touches, or in the rest of the image.

    python benchmarks/counterfactual_regions.py runs/00001-demo/model
    python benchmarks/counterfactual_regions.py MODEL --n 300 --grid regions.png
    python benchmarks/counterfactual_regions.py MODEL --n 500 --by-source

For each domain of a model trained on ``faces-attr``: the share of pixels the ideal
translation changes (any channel moved by more than ``--threshold`` of 255), the mean
squared error (0-255 scale) of the translation to the truth inside and outside that
region (the unchanged input's beside it), and the PSNR the translation would have if
either region were exact. Also G asked to keep every label (the identity) against the
input. ``--grid`` writes 8 rows per domain of input | translation | truth | |error|,
upscaled 3x. ``--by-source`` adds, per target, the mean per-image PSNR (as ``stargan
score`` averages it) of the inputs of each hair colour and age group, the unchanged
input's beside it. Prints a table, then one JSON line.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np
import torch

from _report import print_report
from stargan.data.builtin import load_builtin, split_labels
from stargan.data.faces import params_for
from stargan.evaluate.image_metrics import psnr
from stargan.evaluate.score import changed_with_truth, translate_batched
from stargan.images import save_png
from stargan.translate import Translator


def db(mse: float) -> float:
    return 10 * math.log10(255**2 / max(mse, 1e-10))


def sq_error(a: torch.Tensor, b: torch.Tensor, where: torch.Tensor) -> float:
    """Mean squared error (0-255) over the pixels ``where`` is true (0 if none)."""
    err = (a.float() - b.float()).pow(2)[where]
    return float(err.mean()) if err.numel() else 0.0


def measure(x, fake, truth, threshold: int) -> dict[str, float]:
    changed = (truth.float() - x.float()).abs().amax(1, keepdim=True) > threshold
    changed = changed.expand_as(x)
    share = float(changed.float().mean())
    inside, outside = sq_error(fake, truth, changed), sq_error(fake, truth, ~changed)
    return {
        "n": x.size(0),
        "changed_share": share,
        "psnr": db(sq_error(fake, truth, torch.ones_like(changed))),
        "mse_changed": inside,
        "input_mse_changed": sq_error(x, truth, changed),
        "mse_rest": outside,
        "psnr_if_changed_exact": db(outside * (1 - share)),
        "psnr_if_rest_exact": db(inside * share),
    }


def by_source(groups: list[str], x, fake, truth) -> dict[str, tuple[int, float, float]]:
    """{input group: (n, mean PSNR of the translations, of the unchanged inputs)}."""
    fake_db, input_db = psnr(fake, truth), psnr(x, truth)
    out = {}
    for group in sorted(set(groups)):
        rows = torch.tensor([k for k, g in enumerate(groups) if g == group])
        out[group] = (len(rows), float(fake_db[rows].mean()), float(input_db[rows].mean()))
    return out


def grid_rows(x, fake, truth) -> torch.Tensor:
    error = (fake.float() - truth.float()).abs().to(torch.uint8)
    tiles = [torch.cat(list(t), 2) for t in zip(x, fake, truth, error, strict=True)]
    return torch.cat(tiles, 1)  # [3, rows * S, 4 * S]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model", type=Path, help="a model folder trained on faces-attr")
    ap.add_argument("--n", type=int, default=300, help="test images")
    ap.add_argument("--threshold", type=int, default=8, help="changed: moved by more than this")
    ap.add_argument("--grid", type=Path, help="write input | fake | truth | error rows here")
    ap.add_argument("--by-source", action="store_true", help="PSNR per input hair colour, age")
    args = ap.parse_args()
    tr = Translator.from_pretrained(args.model)
    if tr.meta.get("dataset") != "faces-attr" or tr.layout.joint:
        raise SystemExit(f"{args.model} was not trained on faces-attr alone")
    spec, seed = tr.layout.specs[0], int(tr.meta.get("data_seed", 0))
    test = load_builtin("faces-attr", "test", tr.image_size, args.n, seed, spec.names)
    x_u8 = torch.from_numpy(np.array(test.images)).permute(0, 3, 1, 2)
    c_own = torch.from_numpy(split_labels("faces-attr", spec, "test", args.n, seed))
    own = tr.layout.encode(0, c_own)
    identity = db(sq_error(translate_batched(tr, x_u8, own, 100, own), x_u8, x_u8 >= 0))
    rows = [("G keeping every label, PSNR to the input", f"{identity:.2f} dB")]
    params = [params_for(seed, "test", i) for i in range(args.n)]
    source = [p.hair_colour + ("" if p.young else ", old") for p in params]
    result, pictures = {}, []
    for name, c_trg in spec.single_changes(c_own):
        changed, fake, truth = changed_with_truth(tr, x_u8, seed, c_own, c_trg)
        x = x_u8[changed]
        m = measure(x, fake, truth, args.threshold)
        result[name] = m
        rows.append(
            (
                f"{name} (n={m['n']}, {100 * m['changed_share']:.0f}% of pixels change)",
                f"PSNR {m['psnr']:.2f} dB; MSE changed {m['mse_changed']:.0f} "
                f"(input {m['input_mse_changed']:.0f}), rest {m['mse_rest']:.1f}; "
                f"exact changed region {m['psnr_if_changed_exact']:.2f} dB, "
                f"exact rest {m['psnr_if_rest_exact']:.2f} dB",
            )
        )
        if args.by_source:
            groups = by_source([source[i] for i in changed.tolist()], x, fake, truth)
            for group, (n, fake_db, input_db) in groups.items():
                rows.append(
                    (f"  {name} from {group} (n={n})", f"{fake_db:.2f} dB (input {input_db:.2f})")
                )
                key = group.replace(", ", "_")
                m[f"psnr_from_{key}"], m[f"n_from_{key}"] = fake_db, n
        if args.grid:
            pictures.append(grid_rows(*(t[:8] for t in (x, fake, truth))))
    if args.grid:
        width = max(p.size(1) for p in pictures)
        padded = [torch.nn.functional.pad(p, (0, 0, 0, width - p.size(1))) for p in pictures]
        big = torch.cat(padded, 2).repeat_interleave(3, 1).repeat_interleave(3, 2)
        save_png(big.permute(1, 2, 0).contiguous().numpy(), args.grid)
        rows.append(("grid", str(args.grid)))
    flat = {"identity_psnr": identity}
    for name, m in result.items():
        flat |= {f"{name}_{k}": v for k, v in m.items()}
    print_report(rows, flat)


if __name__ == "__main__":
    main()
