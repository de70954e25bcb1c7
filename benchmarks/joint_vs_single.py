"""StarGAN-JNT against StarGAN-SNG (paper Fig. 6), and the wrong mask vector (Fig. 8), on
the built-in faces, scored against the exact ground truth.

    python benchmarks/joint_vs_single.py -o jnt-sng                 # train both, score
    python benchmarks/joint_vs_single.py -o jnt-sng --iters 8000 --n 300
    python benchmarks/joint_vs_single.py -o out --jnt JNT_MODEL --sng SNG_MODEL  # score only

JNT is ``faces-joint-v1`` (faces-attr + faces-expr with the mask vector); SNG the same
config trained on faces-expr alone, for the same number of iterations (JNT spends half of
them on faces-attr batches, so SNG sees twice the expression batches). Both translate
the faces-attr test faces (which the SNG model never saw: a different face population,
as CelebA faces were for the paper's RaFD-only model) to every expression; the truth is
the renderer's image of the same face with that expression. The wrong mask: JNT given
the expression labels with the faces-attr mask bit, as in the paper's Fig. 8. Reported
per model: target expression right (a judge trained on faces-expr renders), PSNR and
SSIM to the truth (the unchanged input's beside them), and the share of the attributes
(hair, sex, age) a faces-attr judge still reads as the input's. ``--grid`` shows, per
face, the input, then for three expressions: truth, JNT, SNG, wrong mask.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from _report import print_report
from stargan.config import apply_overrides
from stargan.data import faces
from stargan.data.builtin import counterfactual_images, labels_of, load_builtin
from stargan.data.dataset import to_model_range
from stargan.evaluate.classifier import predict
from stargan.evaluate.image_metrics import psnr, ssim
from stargan.evaluate.score import builtin_judge, translate_batched
from stargan.export import export_model
from stargan.images import make_grid, save_png
from stargan.presets import get_preset
from stargan.train import run_training
from stargan.translate import Translator

GRID_EXPRESSIONS = ("happy", "surprised", "angry")
GRID_FACES = 6


def configs(iters: int, overrides: list[str]):
    """(JNT, SNG) configs: faces-joint-v1 (with ``--set`` overrides, e.g.
    ``data.faces-expr.num_train=64``), and the same trained on faces-expr alone."""
    jnt = apply_overrides(get_preset("faces-joint-v1"), overrides)
    train = replace(jnt.train, num_iters=iters, num_iters_decay=iters // 2, ckpt_every=iters)
    jnt = replace(jnt, train=train)
    sng = replace(jnt, name="faces-expr-sng", data=jnt.joint[0], joint=())
    return jnt, sng


def train_and_export(cfg, out: Path) -> tuple[Path, float]:
    start = time.perf_counter()
    run = run_training(cfg, out / "runs", progress=False)
    seconds = time.perf_counter() - start
    return export_model(run, out / f"{cfg.name}-model"), seconds


class Inputs:
    """The faces-attr test faces, their labels in both datasets, the expression targets
    and their exact truths."""

    def __init__(self, jnt: Translator, n: int) -> None:
        self.size = jnt.image_size
        sources = jnt.meta["sources"]
        self.attr_seed = int(sources[0]["data_seed"])
        self.expr_seed = int(sources[1]["data_seed"])
        self.attr_spec, self.expr_spec = jnt.layout.specs
        test = load_builtin(
            "faces-attr", "test", self.size, n, self.attr_seed, self.attr_spec.names
        )
        self.x_u8 = torch.from_numpy(np.array(test.images)).permute(0, 3, 1, 2)
        params = [faces.params_for(self.attr_seed, "test", k) for k in range(n)]
        self.c_attr = torch.from_numpy(labels_of("faces-attr", self.attr_spec, params))
        self.c_expr = torch.from_numpy(labels_of("faces-expr", self.expr_spec, params))

    def target(self, expression: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(rows it changes, their expression targets, the truths uint8 [n, 3, S, S])."""
        c_trg = self.expr_spec.change(self.c_expr, (expression,))
        rows = (c_trg != self.c_expr).any(1).nonzero().flatten()
        truth, valid = counterfactual_images(
            self.attr_seed, "test", rows.tolist(), self.size, self.expr_spec, c_trg[rows].numpy()
        )
        keep = torch.from_numpy(valid)
        return rows[keep], c_trg[rows][keep], torch.from_numpy(truth[valid]).permute(0, 3, 1, 2)


def translations(tr: Translator, inputs: Inputs, rows, c_trg, wrong_mask: bool) -> torch.Tensor:
    """``tr``'s expression translations of the faces ``rows`` (uint8)."""
    layout = tr.layout
    part = layout.datasets.index("faces-expr") if layout.joint else 0
    c_src, c_to = layout.encode(part, inputs.c_expr[rows]), layout.encode(part, c_trg)
    if wrong_mask:
        c_to = layout.with_mask(c_to, "faces-attr")
    return translate_batched(tr, inputs.x_u8[rows], c_to, 100, c_src)


def score(models: dict[str, tuple[Translator, bool]], inputs: Inputs, steps: int) -> dict:
    """Per model (and the unchanged input): expression right, PSNR / SSIM to the truth,
    attributes kept, over every (face, other expression)."""
    expr_judge, _ = builtin_judge(
        "faces-expr", inputs.expr_seed, inputs.expr_spec, inputs.size, steps, False
    )
    attr_judge, _ = builtin_judge(
        "faces-attr", inputs.attr_seed, inputs.attr_spec, inputs.size, steps, False
    )
    attrs_real = predict(attr_judge, to_model_range(inputs.x_u8), "multi")
    sums = {name: {"hit": 0.0, "psnr": 0.0, "ssim": 0.0, "kept": 0.0, "n": 0} for name in models}
    sums["input"] = {"psnr": 0.0, "ssim": 0.0, "n": 0}
    for expression in inputs.expr_spec.names:
        rows, c_trg, truth = inputs.target(expression)
        if len(rows) == 0:
            continue
        _add(sums["input"], inputs.x_u8[rows], truth)
        for name, (tr, wrong) in models.items():
            fake = translations(tr, inputs, rows, c_trg, wrong)
            read = predict(expr_judge, to_model_range(fake), "categorical")
            sums[name]["hit"] += float((read.argmax(1) == c_trg.argmax(1)).sum())
            attrs = predict(attr_judge, to_model_range(fake), "multi")
            sums[name]["kept"] += float((attrs == attrs_real[rows]).float().mean(1).sum())
            _add(sums[name], fake, truth)
    return {
        name: {k: v / max(s["n"], 1) for k, v in s.items() if k != "n"} | {"n": s["n"]}
        for name, s in sums.items()
    }


def _add(acc: dict, images: torch.Tensor, truth: torch.Tensor) -> None:
    acc["psnr"] += float(psnr(images, truth).sum())
    acc["ssim"] += float(ssim(images, truth).sum())
    acc["n"] += len(images)


def write_grid(models: dict[str, tuple[Translator, bool]], inputs: Inputs, path: Path) -> None:
    """A row per face (the first GRID_FACES with none of the grid's expressions): the
    input, then per grid expression its truth and each model's translation."""
    names = inputs.expr_spec.names
    own = inputs.c_expr.argmax(1).tolist()
    faces_ = [k for k, e in enumerate(own) if names[e] not in GRID_EXPRESSIONS][:GRID_FACES]
    rows = torch.tensor(faces_, dtype=torch.long)
    cells = [inputs.x_u8[rows]]
    for expression in GRID_EXPRESSIONS:
        c_trg = inputs.expr_spec.change(inputs.c_expr[rows], (expression,))
        truth, _ = counterfactual_images(
            inputs.attr_seed, "test", faces_, inputs.size, inputs.expr_spec, c_trg.numpy()
        )
        cells.append(torch.from_numpy(truth).permute(0, 3, 1, 2))
        cells += [translations(tr, inputs, rows, c_trg, wrong) for tr, wrong in models.values()]
    tiles = torch.stack(cells, 1).flatten(0, 1)
    save_png(make_grid(tiles, len(cells)), path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-o", "--out", type=Path, required=True, help="runs, models and the grid")
    ap.add_argument("--iters", type=int, default=8000, help="training iterations of each")
    ap.add_argument("--n", type=int, default=300, help="faces-attr test faces")
    ap.add_argument("--judge-steps", type=int, default=600)
    ap.add_argument("--jnt", type=Path, help="a trained JNT model folder (skip its training)")
    ap.add_argument("--sng", type=Path, help="a trained SNG model folder (skip its training)")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    jnt_cfg, sng_cfg = configs(args.iters, args.overrides)
    rows, result = [], {"iters": args.iters}
    paths = {}
    for name, cfg, given in (("jnt", jnt_cfg, args.jnt), ("sng", sng_cfg, args.sng)):
        if given is not None:
            paths[name] = given
            continue
        paths[name], seconds = train_and_export(cfg, args.out)
        rows.append(
            (f"{name.upper()} training ({cfg.name}, {args.iters} iterations)", f"{seconds:.0f} s")
        )
        result[f"{name}_train_s"] = seconds
    jnt, sng = Translator.from_pretrained(paths["jnt"]), Translator.from_pretrained(paths["sng"])
    if not jnt.layout.joint or jnt.layout.datasets != ("faces-attr", "faces-expr"):
        raise SystemExit(f"{paths['jnt']} is not a faces-attr + faces-expr joint model")
    if sng.layout.joint or sng.meta.get("dataset") != "faces-expr":
        raise SystemExit(f"{paths['sng']} is not a faces-expr model")
    models = {"JNT": (jnt, False), "SNG": (sng, False), "JNT, wrong mask": (jnt, True)}
    inputs = Inputs(jnt, args.n)
    means = score(models, inputs, args.judge_steps)
    base = means["input"]
    rows.append(("unchanged input", f"PSNR {base['psnr']:.2f} dB, SSIM {base['ssim']:.3f}"))
    for name in models:
        m = means[name]
        rows.append(
            (
                f"{name} (n={m['n']})",
                f"expression right {100 * m['hit']:.1f}%, PSNR {m['psnr']:.2f} dB, "
                f"SSIM {m['ssim']:.3f}, attributes kept {100 * m['kept']:.1f}%",
            )
        )
        slug = name.lower().replace(", ", "_").replace(" ", "_")
        result |= {f"{slug}_{k}": v for k, v in m.items()}
    result |= {f"input_{k}": v for k, v in base.items()}
    grid = args.out / "jnt_sng_grid.png"
    write_grid(models, inputs, grid)
    rows.append(("grid (input, then truth / JNT / SNG / wrong mask per expression)", str(grid)))
    print_report(rows, result)


if __name__ == "__main__":
    main()
