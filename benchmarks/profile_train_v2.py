"""Where a StarGAN v2 training iteration's time goes: its phases, and the top ops.

    python benchmarks/profile_train_v2.py                       # AFHQ setting at 128 px, batch 8
    python benchmarks/profile_train_v2.py --precision bf16 --iters 2
    python benchmarks/profile_train_v2.py --image-size 32 --batch-size 2 --iters 1   # smoke

The ``afhq-v2`` preset's networks and losses (w_hpf 0, the official AFHQ setting) at
``--image-size``, trained on built-in faces (``faces-sex``: 2 domains instead of AFHQ's 3,
which changes only the small per-domain heads of F, E and D). After one warm-up iteration,
``--iters`` iterations are timed phase by phase (wall seconds: the batch, the two D steps,
the latent- and reference-guided G steps, the EMA update), then one more runs under
torch.profiler for the top ops by self CPU time. Prints tables, then one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from collections import defaultdict
from dataclasses import replace
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

from profile_train import top_ops
from stargan.config import PRECISIONS, DataConfig
from stargan.data.builtin import load_builtin
from stargan.presets import get_preset
from stargan.train import V2Trainer, prepare_config
from stargan.train.memory import keep_freed_memory

PHASES = {"make_batch": "batch", "d_step": "D steps (2)", "update_ema": "EMA"}


def build(tmp: Path, args: argparse.Namespace) -> V2Trainer:
    base = get_preset("afhq-v2")
    cfg = replace(
        base,
        model=replace(base.model, image_size=args.image_size, c_dim=0),
        data=DataConfig(dataset="faces-sex", num_train=max(8 * args.batch_size, 64), num_test=16),
        train=replace(
            base.train, batch_size=args.batch_size, precision=args.precision, tensorboard=False
        ),
    )
    cfg = prepare_config(cfg)
    d = cfg.data
    data = load_builtin(d.dataset, "train", args.image_size, d.num_train, d.seed, progress=False)
    return V2Trainer(cfg, tmp, data, data)


def timed_phases(trainer: V2Trainer, seconds: dict[str, list[float]]) -> None:
    """Wrap the trainer's phase methods so each call adds its wall seconds to ``seconds``."""
    for method in ("make_batch", "d_step", "g_step", "update_ema"):
        inner = getattr(trainer, method)

        def wrapper(*a, _inner=inner, _method=method, **kw):
            start = time.perf_counter()
            out = _inner(*a, **kw)
            phase = PHASES.get(_method) or ("G latent step" if a[1] else "G reference step")
            seconds[phase].append(time.perf_counter() - start)
            return out

        setattr(trainer, method, wrapper)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--image-size", type=int, default=128)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--iters", type=int, default=2, help="timed iterations after one warm-up")
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--precision", choices=PRECISIONS, default="fp32")
    ap.add_argument("--top", type=int, default=12, help="ops listed")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    keep_freed_memory()  # as `stargan train` does: no page faults on every large block
    load_start = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        trainer = build(Path(tmp), args)
        trainer.train_step()  # warm-up: memory, oneDNN's primitive caches
        per_phase: dict[str, list[float]] = defaultdict(list)
        timed_phases(trainer, per_phase)
        iter_s = []
        for _ in range(args.iters):
            start = time.perf_counter()
            trainer.train_step()
            iter_s.append(time.perf_counter() - start)
        per_phase_timed = {k: list(v) for k, v in per_phase.items()}
        with profile(activities=[ProfilerActivity.CPU]) as prof:  # one more, for the ops
            trainer.train_step()
    total = statistics.median(iter_s)
    # per iteration: each phase's seconds summed over its calls, mean over iterations
    phases = {name: sum(values) / args.iters for name, values in per_phase_timed.items()}
    print(f"{'phase':<20}{'s/iter':>8}{'share':>8}")
    for name, sec in sorted(phases.items(), key=lambda kv: -kv[1]):
        print(f"{name:<20}{sec:>8.2f}{sec / total:>8.1%}")
    print(f"{'iteration':<20}{total:>8.2f}")
    averages = prof.key_averages()
    print(averages.table(sort_by="self_cpu_time_total", row_limit=args.top))
    print(
        json.dumps(
            {
                "image_size": args.image_size,
                "batch_size": args.batch_size,
                "threads": args.threads,
                "precision": args.precision,
                "sec_per_iter": round(total, 3),
                "phases_s": {k: round(v, 3) for k, v in phases.items()},
                "top_ops": top_ops(averages, args.top),
                "load_avg_1min": round(load_start, 2),
                "torch": torch.__version__,
            }
        )
    )


if __name__ == "__main__":
    main()
