"""Quality study: which training recipe gives the best translations for the same wall time.

Each variant changes one thing against a base (``--base``: default ``study``, the demo
network as it was when the study ran, with the paper's G and losses; or any preset), or
combines winners. A run trains for ``max(--budgets)`` minutes of
training wall time and is scored against the exact ground truth of the built-in faces at
every budget on the way (scoring time is not counted): target accuracy, preservation of
the other attributes, PSNR / SSIM (and LPIPS with the weights) to the ideal translation,
per-attribute PSNR beside the unchanged input's, and cycle reconstruction PSNR
(x -> c_trg -> c_org).

    python benchmarks/quality_study.py --variants paper,residual,skip --seeds 0,1 \\
        --budgets 2,4 --jobs 2 -o study                       # screening
    python benchmarks/quality_study.py --variants mask+resize+nsr1 -o study  # combined
    python benchmarks/quality_study.py --table study          # table and plot again
    python benchmarks/quality_study.py --list                 # the changes

``--jobs 2`` trains two runs side by side with one thread each (``--threads``): budgets
are then minutes of one core, counted as the process's CPU time (so that other load on
the machine does not shorten a run), which treats every variant alike but gives less
work per minute than one run on both cores. Results append to
``OUT/results.jsonl`` (a finished cell is not run again), grids go to ``OUT/grids/``, and
``OUT/table.md`` and ``OUT/plot.png`` are rewritten at the end.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

from stargan.config import Config, DataConfig, LossConfig, ModelConfig, OptimConfig, TrainConfig
from stargan.data import faces
from stargan.data.builtin import labels_of, load_builtin
from stargan.data.dataset import to_model_range
from stargan.evaluate.image_metrics import psnr
from stargan.evaluate.score import score_model
from stargan.images import make_grid, save_png
from stargan.presets import PRESETS, get_preset
from stargan.train.memory import keep_freed_memory
from stargan.train.run import load_splits, prepare_config
from stargan.train.v1 import V1Trainer
from stargan.translate import Translator

# one change each: name -> (overrides on the base preset, what it tests, where it is from);
# a variant is one of these or several joined by "+" (e.g. "mask+resize+nsr1")
CHANGES: dict[str, tuple[list[str], str]] = {
    "paper": ([], "the base as it is (with --base study: the paper's losses and G)"),
    "rec10": (["loss.lambda_rec=10"], "the paper's lambda_rec (the demo used 30)"),
    "residual": (["model.g_output=residual"], "G outputs x + delta (Shen & Liu 2017)"),
    "mask": (
        ["model.g_output=mask", "loss.lambda_mask=0.1"],
        "attention mask blending x and a colour map (GANimation, Pumarola et al. 2018)",
    ),
    "mask-noreg": (["model.g_output=mask"], "the mask without its regulariser"),
    "skip": (["model.g_skip=true"], "encoder-decoder skips (U-Net; STGAN / AttGAN)"),
    "resize": (["model.g_upsample=resize"], "nearest x2 + conv up-sampling (Odena et al. 2016)"),
    "ema": (["optim.g_ema_beta=0.99"], "EMA of G's weights for sampling (StarGAN v2)"),
    "nsr1": (
        ["loss.adv=ns-r1", "optim.n_critic=1"],
        "non-saturating loss + R1, a G update every iteration (StarGAN v2)",
    ),
    "ncrit2": (["optim.n_critic=2"], "a G update every 2nd iteration (paper: 5th)"),
    "bf16": (["train.precision=bf16"], "bf16 autocast (2x per iteration on AVX512-BF16)"),
    "px64": (["model.image_size=64", "model.d_repeat_num=5"], "64 px at the same time"),
    "g16": (["model.g_conv_dim=16"], "a narrower G (conv_dim 16): 3-4x fewer FLOPs"),
    "cls3": (["loss.lambda_cls=3"], "a stronger domain classification loss"),
    "cls2": (["loss.lambda_cls=2"], "a somewhat stronger domain classification loss"),
    "lmask0.3": (["loss.lambda_mask=0.3"], "a 3x stronger mask regulariser: change more"),
    "tv": (["loss.lambda_mask_tv=1"], "total variation of the mask: no specks (GANimation)"),
    "clsgrad1": (
        ["loss.lambda_cls_grad=1"],
        "D_cls's input gradient penalised: robust to specks (Ross & Doshi-Velez 2018)",
    ),
    "clsgrad2": (["loss.lambda_cls_grad=2"], "the same penalty, 2x (celeba-subset-v1's)"),
    "clsgrad10": (["loss.lambda_cls_grad=10"], "the same penalty, 10x"),
    "diff": (
        ["model.g_condition=difference"],
        "G told the change c_trg - c_org, not the target (STGAN, Liu et al. 2019)",
    ),
    "single": (["train.targets=single"], "targets that change one domain each (as scored)"),
    "mixed": (["train.targets=mixed"], "half the targets permuted (paper), half single changes"),
    "cin": (["model.g_cond_norm=true"], "the label after each of G's norms (conditional IN)"),
    "heads": (
        ["model.d_domain_heads=true", "loss.adv=ns-r1"],
        "D_src a real/fake map per label value, NS + R1 (StarGAN v2's multi-task D and loss)",
    ),
    "tw": (
        ["train.target_weights=Young=2,Male=2"],
        "single-change targets drawn twice as often for the global changes (age, sex)",
    ),
    "lr1e-4": (["optim.g_lr=1e-4", "optim.d_lr=1e-4"], "the paper's learning rate"),
    "b32": (["train.batch_size=32"], "batch 32"),
    "b8": (["train.batch_size=8"], "batch 8: more updates per second, noisier ones"),
}

STUDY_BASE = "study"


def study_base() -> Config:
    """The base every change of docs/quality.md's table is measured against: the `demo`
    preset as it was when the study ran (32 px, conv_dim 32, 3 residual blocks, D with 4
    layers, Adam 2e-4, lambda_rec 30, batch 16, fp32), with the paper's G and losses. The
    demo preset has since taken the recipe, so it is kept here rather than looked up."""
    return Config(
        name="study-base",
        model=ModelConfig(
            image_size=32, g_conv_dim=32, g_repeat_num=3, d_conv_dim=32, d_repeat_num=4
        ),
        loss=LossConfig(lambda_rec=30.0),
        optim=OptimConfig(g_lr=2e-4, d_lr=2e-4, n_critic=5),
        data=DataConfig(dataset="faces-attr", num_train=12000, num_test=500),
        train=TrainConfig(batch_size=16, precision="fp32"),  # bf16 is a variant
    )


def base_config(name: str) -> Config:
    """``--base``: the study's own base, or a preset by name."""
    if name == STUDY_BASE:
        return study_base()
    if name not in PRESETS:
        raise SystemExit(f"unknown --base {name!r}; valid: {STUDY_BASE}, {', '.join(PRESETS)}")
    return get_preset(name)


def overrides_of(variant: str) -> list[str]:
    """The overrides of a variant: its changes' overrides, in order."""
    unknown = [name for name in variant.split("+") if name not in CHANGES]
    if unknown:
        raise SystemExit(f"unknown changes {unknown} in {variant!r}; --list shows them")
    return [o for name in variant.split("+") for o in CHANGES[name][0]]


KEYS = ("target_acc", "kept", "psnr", "ssim", "cycle_psnr")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-o", "--out", type=Path, default=Path("quality-study"))
    ap.add_argument(
        "--base",
        default=STUDY_BASE,
        help=f"what the variants change: {STUDY_BASE!r} (the study's base) or a preset",
    )
    ap.add_argument("--variants", default="paper,residual,mask,skip,ema,nsr1,bf16,px64")
    ap.add_argument("--seeds", default="0,1")
    ap.add_argument("--budgets", default="3,6,10", help="training minutes to score at")
    ap.add_argument("--jobs", type=int, default=1, help="runs side by side")
    ap.add_argument("--threads", type=int, default=0, help="per run (0: 2 // jobs, min 1)")
    ap.add_argument("--n", type=int, default=500, help="test faces scored")
    ap.add_argument("--table", type=Path, help="only rewrite the table and plot of OUT")
    ap.add_argument("--list", action="store_true", help="print the variants and exit")
    ap.add_argument("--worker", nargs=2, metavar=("VARIANT", "SEED"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.list:
        for name, (overrides, what) in CHANGES.items():
            print(f"{name:<12} {what}\n{'':<12} {' '.join(overrides) or '(none)'}")
        return
    if args.table:
        write_summary(args.table)
        return
    budgets = sorted(float(b) for b in args.budgets.split(","))
    threads = args.threads or max(1, 2 // args.jobs)
    if args.worker:
        variant, seed = args.worker
        run_cell(args.out, args.base, variant, int(seed), budgets, threads, args.n)
        return
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    base_config(args.base)  # an unknown base stops here, before any run
    for variant in variants:
        overrides_of(variant)  # unknown names stop here, before any run
    cells = [(v, int(s)) for v in variants for s in args.seeds.split(",")]
    done = {(r["variant"], r["seed"]) for r in read_results(args.out) if r["final"]}
    todo = [c for c in cells if c not in done]
    print(f"{len(todo)} runs to do ({len(cells) - len(todo)} done), {args.jobs} at a time")
    run_pool(args, todo, budgets, threads)
    write_summary(args.out)


def run_pool(args, todo: list[tuple[str, int]], budgets: list[float], threads: int) -> None:
    """Each cell in its own process (a clean allocator and thread pool per run)."""
    running: list[subprocess.Popen] = []
    base = [sys.executable, __file__, "-o", str(args.out), "--base", args.base]
    base += ["--budgets", ",".join(map(str, budgets)), "--threads", str(threads)]
    base += ["--n", str(args.n)]
    for variant, seed in todo:
        while len(running) >= args.jobs:
            running = [p for p in running if p.poll() is None]
            time.sleep(2)
        print(f"start {variant} seed {seed}", flush=True)
        running.append(subprocess.Popen([*base, "--worker", variant, str(seed)]))
    for p in running:
        p.wait()


def run_cell(
    out: Path, base: str, variant: str, seed: int, budgets: list[float], threads: int, n: int
) -> None:
    """Train one variant with one seed, scoring at each budget of training minutes."""
    torch.set_num_threads(threads)
    keep_freed_memory()
    overrides = overrides_of(variant) + [
        f"train.seed={seed}",
        "train.num_iters=100000000",
        "train.num_iters_decay=0",
        "train.sample_every=100000000",
        "train.ckpt_every=100000000",
        "train.tensorboard=false",
        "train.log_every=100",
    ]
    cfg = prepare_config(base_config(base), overrides)
    run_dir = out / "runs" / f"{variant}-s{seed}"
    run_dir.mkdir(parents=True, exist_ok=True)
    trainer = V1Trainer(
        cfg, run_dir, load_splits(cfg, "train", False), load_splits(cfg, "test", False)
    )
    test_set = _changed_test_set(cfg, n)
    clock = time.process_time if threads == 1 else time.perf_counter
    trained, start = 0.0, clock()
    for i, budget in enumerate(budgets):
        while trained + (clock() - start) < budget * 60:
            trainer.train_step()
        trained += clock() - start
        row = score_cell(trainer, cfg, test_set, n)
        row |= {"variant": variant, "seed": seed, "budget_min": budget, "threads": threads}
        row |= {"train_s": round(trained, 1), "final": i == len(budgets) - 1}
        _save_grid(trainer, out / "grids" / f"{variant}-s{seed}-{budget:g}min.png")
        with open(out / "results.jsonl", "a") as f:
            f.write(json.dumps(row) + "\n")
        print(f"{variant} seed {seed} {budget:g} min: " + _fmt(row), flush=True)
        start = clock()


def translator(trainer: V1Trainer, cfg: Config) -> Translator:
    """The model the trainer would export now (G's running average where kept)."""
    G = trainer.G_sample
    meta = {"dataset": cfg.data.dataset, "data_seed": cfg.data.seed, "crop": 0}
    return Translator(copy.deepcopy(G), cfg.model, trainer.layout, copy.deepcopy(trainer.D), meta)


def score_cell(trainer: V1Trainer, cfg: Config, test_set, n: int) -> dict:
    tr = translator(trainer, cfg)
    result = score_model(tr, n=n, progress=False, lpips_model=_lpips(cfg.model.image_size))
    overall, per = result["overall"], result["per_domain"]
    keys = ("target_acc", "psnr", "ssim", "l1", "identity_psnr", "lpips", "identity_lpips")
    row = {k: overall[k] for k in keys if k in overall}
    row["kept"] = _kept(tr, cfg, *test_set)
    row["per_domain"] = {
        name: {"acc": d["target_acc"], "psnr": d["psnr"], "input_psnr": d["identity_psnr"]}
        for name, d in per.items()
    }
    row["cycle_psnr"] = _cycle_psnr(tr, *test_set)
    row["iters"], row["g_updates"] = trainer.state.step, trainer.state.g_updates
    return row


def _lpips(image_size: int):
    """The LPIPS network where the weights are installed (`stargan weights`), else None."""
    from stargan.errors import StarGANError
    from stargan.evaluate.lpips import MIN_SIZE, load_lpips

    try:
        return load_lpips() if image_size >= MIN_SIZE else None
    except StarGANError:
        return None


def _changed_test_set(cfg: Config, n: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Test faces, their labels and one single-attribute change of each (for the cycle
    and kept measures)."""
    test = load_builtin("faces-attr", "test", cfg.model.image_size, n, cfg.data.seed)
    x = to_model_range(torch.from_numpy(np.array(test.images)).permute(0, 3, 1, 2))
    params = [faces.params_for(cfg.data.seed, "test", k) for k in range(len(test))]
    c_org = torch.from_numpy(labels_of("faces-attr", test.spec, params))
    changes = [c for _, c in test.spec.single_changes(c_org)]
    pick = torch.arange(len(test)) % len(changes)
    c_trg = torch.stack([changes[int(k)][i] for i, k in enumerate(pick)])
    return x, c_org, c_trg


@torch.no_grad()
def _cycle_psnr(tr: Translator, x, c_org, c_trg) -> float:
    """PSNR of G(G(x, c_trg), c_org) to x (the paper's cycle, eq. 4), uint8 images."""
    rec = tr.generate(tr.generate(x, c_trg, c_org), c_org, c_trg)
    return float(psnr(_u8(rec), _u8(x)).mean())


@torch.no_grad()
def _kept(tr: Translator, cfg: Config, x, c_org, c_trg) -> float:
    """Share of (image, other attribute) pairs whose label the judge still reads after
    a single-attribute change (the hair colours are one group, so changing one hair
    colour is allowed to change the other two)."""
    from stargan.evaluate.classifier import predict
    from stargan.evaluate.score import builtin_judge

    clf, spec = builtin_judge(
        "faces-attr", cfg.data.seed, tr.spec, cfg.model.image_size, 600, False
    )
    fake = to_model_range(_u8(tr.generate(x, c_trg, c_org)))
    pred = predict(clf, fake, spec.kind)
    changed = c_trg != c_org
    hair = torch.tensor([name.endswith("_Hair") for name in spec.names])
    touched = changed | (changed[:, hair].any(1, keepdim=True) & hair)
    keep = ~touched
    return float((pred[keep] == c_org[keep]).float().mean())


def _u8(x: torch.Tensor) -> torch.Tensor:
    return ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)


def _save_grid(trainer: V1Trainer, path: Path) -> None:
    images, nrow = trainer.sample_grids()[""]
    save_png(make_grid(images, nrow=nrow), path)


def _fmt(row: dict) -> str:
    return (
        f"acc {row['target_acc']:.3f} kept {row['kept']:.3f} PSNR {row['psnr']:.2f} "
        f"(input {row['identity_psnr']:.2f}) SSIM {row['ssim']:.3f} "
        f"cycle {row['cycle_psnr']:.2f} iters {row['iters']}"
    )


# ------------------------------------------------------------------ summary
def read_results(out: Path) -> list[dict]:
    path = out / "results.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def write_summary(out: Path) -> None:
    rows = read_results(out)
    cells: dict[tuple[str, float], list[dict]] = {}
    for r in rows:
        cells.setdefault((r["variant"], r["budget_min"]), []).append(r)
    lines = [
        "| variant | min | seeds | iters | target acc % | kept % | PSNR dB (input) | SSIM "
        "| LPIPS (input) | cycle PSNR | worst attr PSNR - input |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for (variant, budget), rs in cells.items():
        worst = [min(d["psnr"] - d["input_psnr"] for d in r["per_domain"].values()) for r in rs]
        lines.append(
            f"| {variant} | {budget:g} | {len(rs)} | {_med([r['iters'] for r in rs]):.0f} "
            f"| {_ms([100 * r['target_acc'] for r in rs], 1)} | "
            f"{_ms([100 * r['kept'] for r in rs], 1)} | {_ms([r['psnr'] for r in rs], 2)} "
            f"({rs[0]['identity_psnr']:.2f}) | {_ms([r['ssim'] for r in rs], 3)} | "
            f"{_lpips_cell(rs)} | {_ms([r['cycle_psnr'] for r in rs], 2)} | {_ms(worst, 2)} |"
        )
    (out / "table.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    _plot(cells, out / "plot.png")


def _lpips_cell(rs: list[dict]) -> str:
    if not all("lpips" in r for r in rs):
        return "-"
    return f"{_ms([r['lpips'] for r in rs], 3)} ({rs[0]['identity_lpips']:.3f})"


def _med(values: list[float]) -> float:
    return statistics.median(values)


def _ms(values: list[float], digits: int) -> str:
    """Median, and the spread (max - min) over seeds."""
    spread = max(values) - min(values)
    return f"{_med(values):.{digits}f} ±{spread / 2:.{digits}f}"


def _plot(cells: dict[tuple[str, float], list[dict]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 6.2))
    variants = sorted({v for v, _ in cells})
    colours = plt.get_cmap("tab20").colors
    for i, variant in enumerate(variants):
        budgets = sorted(b for v, b in cells if v == variant)
        style = {"color": colours[i % 20], "marker": "osD^v"[i % 5], "ls": ["-", "--"][i % 2]}
        for ax, key, scale in ((axes[0], "psnr", 1), (axes[1], "target_acc", 100)):
            med = [_med([r[key] * scale for r in cells[(variant, b)]]) for b in budgets]
            ax.plot(budgets, med, label=variant, **style)
    axes[0].set_ylabel("PSNR to ground truth (dB)")
    axes[1].set_ylabel("target attribute accuracy (%)")
    inputs = [r["identity_psnr"] for rs in cells.values() for r in rs]
    if inputs and math.isfinite(inputs[0]):
        axes[0].axhline(statistics.median(inputs), color="grey", ls=":", label="unchanged input")
    for ax in axes:
        ax.set_xlabel("training time (min; one core's CPU time with --jobs 2)")
        ax.grid(alpha=0.3)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=3, fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.22, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    main()
