"""Where a v1 training iteration's time goes: top ops by self CPU time (torch.profiler) for
one D-only iteration and one D+G iteration.

    python benchmarks/profile_train.py                        # 128 px, batch 16, fast kernels
    python benchmarks/profile_train.py --plain --top 20       # stock kernels only
    python benchmarks/profile_train.py --image-size 64 --threads 1
    python benchmarks/profile_train.py --preset celeba-subset-v1 --precision auto

Runs ``--warmup-cycles`` whole n_critic cycles first (memory, oneDNN's primitive caches),
then profiles the next D-only iteration and the next D+G one. Prints a table per
iteration, then one JSON object on the last line: per iteration its wall seconds, total
self CPU ms and the top ops (name, self CPU ms, share, calls). Self CPU time is wall time
spent in the op on the calling thread, so other jobs on the machine inflate it too.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

from stargan.config import PRECISIONS
from train_speed import add_preset_option, warmed_trainer


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--image-size", type=int, default=128)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--conv-dim", type=int, default=64)
    add_preset_option(ap)
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--warmup-cycles", type=int, default=1)
    ap.add_argument("--top", type=int, default=15, help="ops listed per iteration")
    ap.add_argument("--device", default="cpu")
    ap.add_argument(
        "--plain", action="store_true", help="train.fast_kernels=false: stock kernels only"
    )
    ap.add_argument("--precision", choices=PRECISIONS, default="fp32")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    load_start = os.getloadavg()[0]

    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        trainer = warmed_trainer(Path(tmp), args)
        n_critic = trainer.cfg.optim.n_critic
        for kind in ("D-only", "D+G"):
            while _is_g_iteration(trainer, n_critic) != (kind == "D+G"):
                trainer.train_step()
            start = time.perf_counter()
            with profile(activities=[ProfilerActivity.CPU]) as prof:
                trainer.train_step()
            seconds = time.perf_counter() - start
            averages = prof.key_averages()
            step = trainer.state.step - 1
            penalised = trainer.penalises_adversarial(step)
            print(
                f"\n== {kind} iteration (step {step}; adversarial penalty "
                f"{'computed' if penalised else 'skipped'}): {seconds:.2f} s wall"
            )
            print(averages.table(sort_by="self_cpu_time_total", row_limit=args.top))
            results[kind] = _summary(averages, seconds, args.top) | {"penalty": penalised}

    print(
        json.dumps(
            {
                "image_size": trainer.cfg.model.image_size,
                "preset": args.preset,
                "overrides": args.set,
                "batch_size": args.batch_size,
                "threads": args.threads,
                "fast_kernels": not args.plain,
                "load_avg_1min": round(load_start, 2),
                "load_avg_1min_end": round(os.getloadavg()[0], 2),
                "torch": torch.__version__,
                "iterations": results,
            }
        )
    )


def _is_g_iteration(trainer, n_critic: int) -> bool:
    return (trainer.state.step + 1) % n_critic == 0


def _summary(averages, seconds: float, top: int) -> dict:
    """Wall time, total self CPU time, and the ``top`` ops by self CPU time."""
    total_us = sum(e.self_cpu_time_total for e in averages)
    return {
        "wall_sec": round(seconds, 3),
        "self_cpu_ms": round(total_us / 1e3, 1),
        "top_ops": top_ops(averages, top),
    }


def top_ops(averages, top: int) -> list[dict]:
    """The ``top`` ops of a profile's ``key_averages()`` by self CPU time: name, self CPU
    ms, share of the total, calls."""
    ops = sorted(averages, key=lambda e: e.self_cpu_time_total, reverse=True)
    total_us = sum(e.self_cpu_time_total for e in averages)
    return [
        {
            "name": e.key,
            "self_cpu_ms": round(e.self_cpu_time_total / 1e3, 1),
            "share": round(e.self_cpu_time_total / total_us, 4),
            "calls": e.count,
        }
        for e in ops[:top]
    ]


if __name__ == "__main__":
    main()
