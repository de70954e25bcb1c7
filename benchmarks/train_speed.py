"""Training speed of the StarGAN v1 loop: seconds per iteration over whole n_critic cycles.

    python benchmarks/train_speed.py --image-size 128 --batch-size 16

Prints a table, then the same figures as one JSON object on the last line. Iterations are
D updates; every n_critic-th also updates G ("D+G" iterations).
"""

from __future__ import annotations

import argparse
import resource
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from _report import print_report
from stargan.config import Config, DataConfig, ModelConfig, TrainConfig
from stargan.data.builtin import load_builtin
from stargan.train.v1 import Trainer


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--image-size", type=int, default=128)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--conv-dim", type=int, default=64)
    ap.add_argument("--cycles", type=int, default=2, help="timed n_critic cycles")
    ap.add_argument("--warmup-cycles", type=int, default=1)
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--device", default="cpu", help="cpu or cuda[:N]")
    ap.add_argument(
        "--flops", action="store_true", help="also count FLOPs over one more (untimed) cycle"
    )
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    cfg = Config(
        name="bench",
        model=ModelConfig(
            image_size=args.image_size,
            c_dim=5,
            g_conv_dim=args.conv_dim,
            d_conv_dim=args.conv_dim,
            d_repeat_num=6 if args.image_size >= 64 else 4,
        ),
        data=DataConfig(dataset="faces-attr", num_train=max(4 * args.batch_size, 64)),
        train=TrainConfig(
            batch_size=args.batch_size, num_iters=10**6, tensorboard=False, device=args.device
        ),
    )
    with tempfile.TemporaryDirectory() as tmp:
        data = load_builtin(
            "faces-attr", "train", args.image_size, cfg.data.num_train, cache_dir=Path(tmp)
        )
        trainer = Trainer(cfg, Path(tmp), data)
        n_critic = cfg.optim.n_critic
        for _ in range(args.warmup_cycles * n_critic):
            trainer.train_step()
        d_only, d_and_g = [], []
        for _ in range(args.cycles * n_critic):
            g_iter = (trainer.state.step + 1) % n_critic == 0
            _sync(args.device)
            start = time.perf_counter()
            trainer.train_step()
            _sync(args.device)
            (d_and_g if g_iter else d_only).append(time.perf_counter() - start)
        flops_per_iter = _cycle_flops(trainer, n_critic) if args.flops else None
    rss_gib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    result = {
        "image_size": args.image_size,
        "batch_size": args.batch_size,
        "threads": args.threads,
        "device": args.device,
        "n_critic": n_critic,
        "iters_timed": len(d_only) + len(d_and_g),
        "sec_per_iter": (sum(d_only) + sum(d_and_g)) / (len(d_only) + len(d_and_g)),
        "d_only_sec": statistics.median(d_only),
        "d_and_g_sec": statistics.median(d_and_g),
        "peak_rss_gib": rss_gib,
        **(_flop_figures(flops_per_iter, d_only, d_and_g) if flops_per_iter else {}),
        "torch": torch.__version__,
        "numpy": np.__version__,
    }
    print_report(
        [
            ("image size", str(args.image_size)),
            ("batch size", str(args.batch_size)),
            ("threads", str(args.threads)),
            ("sec/iter (whole cycles)", f"{result['sec_per_iter']:.3f}"),
            ("D-only iteration (median)", f"{result['d_only_sec']:.3f} s"),
            ("D+G iteration (median)", f"{result['d_and_g_sec']:.3f} s"),
            ("peak RSS", f"{rss_gib:.2f} GiB"),
            *(
                [
                    ("GFLOP per iteration (cycle mean)", f"{result['gflop_per_iter']:.1f}"),
                    ("achieved GFLOP/s", f"{result['gflops_achieved']:.1f}"),
                ]
                if flops_per_iter
                else []
            ),
        ],
        result,
    )


def _cycle_flops(trainer: Trainer, n_critic: int) -> float:
    """FLOPs per iteration, averaged over one whole n_critic cycle, by torch's per-op
    formulas. (FlopCounterMode itself fails here: its module hooks do not support the
    autograd.grad of the gradient penalty.)"""
    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils.flop_counter import flop_registry

    class Counter(TorchDispatchMode):
        total = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            out = func(*args, **kwargs)
            formula = flop_registry.get(func._overloadpacket)
            if formula is not None:
                Counter.total += formula(*args, **kwargs, out_val=out)
            return out

    with Counter():
        for _ in range(n_critic):
            trainer.train_step()
    return Counter.total / n_critic


def _flop_figures(flops_per_iter: float, d_only: list[float], d_and_g: list[float]) -> dict:
    seconds = (sum(d_only) + sum(d_and_g)) / (len(d_only) + len(d_and_g))
    return {
        "gflop_per_iter": flops_per_iter / 1e9,
        "gflops_achieved": flops_per_iter / 1e9 / seconds,
    }


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


if __name__ == "__main__":
    main()
