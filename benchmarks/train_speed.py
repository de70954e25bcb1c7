"""Training speed of the StarGAN v1 loop: seconds per iteration over whole n_critic cycles.

    python benchmarks/train_speed.py --image-size 128 --batch-size 16
    python benchmarks/train_speed.py --image-size 128 --plain     # stock kernels
    python benchmarks/train_speed.py --image-size 128 --precision bf16
    python benchmarks/train_speed.py --flops --peak-gflops 150    # share of the matmul peak
    python benchmarks/train_speed.py --preset celeba-subset-v1 --precision auto  # a preset's step
    python benchmarks/train_speed.py --preset celeba-subset-v1 --set loss.penalty_every=4

Prints a table, then the same figures as one JSON object on the last line. Iterations are
D updates; every n_critic-th also updates G ("D+G" iterations). On a shared machine compare
runs interleaved (A B A B) and read ``cpu_sec_per_iter`` (this process's CPU seconds, which
other jobs inflate much less than wall time) next to ``load_avg_1min``.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import tempfile
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from _report import print_report
from stargan.config import PRECISIONS, Config, DataConfig, ModelConfig, apply_overrides, validate
from stargan.data.builtin import load_builtin
from stargan.errors import StarGANError
from stargan.presets import get_preset
from stargan.train.memory import keep_freed_memory
from stargan.train.v1 import V1Trainer


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--image-size", type=int, default=128)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--conv-dim", type=int, default=64)
    add_preset_option(ap)
    ap.add_argument("--cycles", type=int, default=2, help="timed n_critic cycles")
    ap.add_argument("--warmup-cycles", type=int, default=1)
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--device", default="cpu", help="cpu or cuda[:N]")
    ap.add_argument(
        "--flops", action="store_true", help="also count FLOPs over one more (untimed) cycle"
    )
    ap.add_argument(
        "--plain", action="store_true", help="train.fast_kernels=false: stock kernels only"
    )
    ap.add_argument("--precision", choices=PRECISIONS, default="fp32")
    ap.add_argument(
        "--peak-gflops",
        type=float,
        default=0.0,
        help="the machine's matmul peak (matmul_peak.py) for --flops' share of peak",
    )
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    load_start = os.getloadavg()[0]

    with tempfile.TemporaryDirectory() as tmp:
        trainer = warmed_trainer(Path(tmp), args)
        n_critic = trainer.cfg.optim.n_critic
        d_only, d_and_g = [], []
        cpu_start, faults_start = time.process_time(), _minor_faults()
        for _ in range(args.cycles * n_critic):
            g_iter = (trainer.state.step + 1) % n_critic == 0
            _sync(args.device)
            start = time.perf_counter()
            trainer.train_step()
            _sync(args.device)
            (d_and_g if g_iter else d_only).append(time.perf_counter() - start)
        iters = len(d_only) + len(d_and_g)
        cpu_per_iter = (time.process_time() - cpu_start) / iters
        faults_per_iter = (_minor_faults() - faults_start) / iters
        flops_per_iter = _cycle_flops(trainer, n_critic) if args.flops else None
    rss_gib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    result = {
        "image_size": trainer.cfg.model.image_size,
        "batch_size": args.batch_size,
        "preset": args.preset,
        "overrides": args.set,
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
        "fast_kernels": trainer.fast_kernels,
        "precision": args.precision,
        "cpu_sec_per_iter": cpu_per_iter,
        "minor_faults_per_iter": faults_per_iter,
        "load_avg_1min": load_start,
        "load_avg_1min_end": os.getloadavg()[0],
    }
    if flops_per_iter and args.peak_gflops:
        result["share_of_peak"] = result["gflops_achieved"] / args.peak_gflops
    print_report(
        [
            ("image size", str(trainer.cfg.model.image_size)),
            ("preset", " ".join([args.preset or "paper networks (--conv-dim)", *args.set])),
            ("batch size", str(args.batch_size)),
            ("threads", str(args.threads)),
            ("sec/iter (whole cycles)", f"{result['sec_per_iter']:.3f}"),
            ("D-only iteration (median)", f"{result['d_only_sec']:.3f} s"),
            ("D+G iteration (median)", f"{result['d_and_g_sec']:.3f} s"),
            ("CPU seconds per iteration", f"{cpu_per_iter:.3f}"),
            ("minor page faults per iteration", f"{faults_per_iter:.0f}"),
            ("peak RSS", f"{rss_gib:.2f} GiB"),
            ("kernels", "stock (--plain)" if args.plain else "fast"),
            ("precision", args.precision),
            (
                "1-min load average, start/end",
                f"{load_start:.2f} / {result['load_avg_1min_end']:.2f}",
            ),
            *(
                [
                    ("GFLOP per iteration (cycle mean)", f"{result['gflop_per_iter']:.1f}"),
                    ("achieved GFLOP/s", f"{result['gflops_achieved']:.1f}"),
                ]
                if flops_per_iter
                else []
            ),
            *(
                [("share of matmul peak", f"{100 * result['share_of_peak']:.0f}%")]
                if "share_of_peak" in result
                else []
            ),
        ],
        result,
    )


def add_preset_option(ap: argparse.ArgumentParser) -> None:
    ap.add_argument(
        "--preset",
        default=None,
        help="a single-dataset StarGAN v1 preset's networks, losses and n_critic on built-in "
        "faces at its image size (--image-size and --conv-dim then unused); default: the "
        "paper's networks",
    )
    ap.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a config override on top of --preset, as `stargan train --set` (repeatable)",
    )


def warmed_trainer(tmp: Path, args: argparse.Namespace) -> V1Trainer:
    """The benchmark's trainer from the command line's options (the paper's networks, or
    ``--preset``'s), after ``--warmup-cycles`` whole n_critic cycles (memory, oneDNN's
    primitive caches)."""
    if args.set and not args.preset:
        raise SystemExit("--set changes a preset: give --preset NAME too")
    cfg = (
        preset_config(
            args.preset, args.batch_size, args.device, args.plain, args.precision, args.set
        )
        if args.preset
        else bench_config(
            args.image_size,
            args.batch_size,
            args.conv_dim,
            args.device,
            args.plain,
            args.precision,
        )
    )
    trainer = trainer_for(tmp, cfg)
    for _ in range(args.warmup_cycles * trainer.cfg.optim.n_critic):
        trainer.train_step()
    return trainer


def bench_config(
    image_size: int, batch_size: int, conv_dim: int, device: str, plain: bool, precision: str
) -> Config:
    """The paper's networks at ``image_size`` and ``conv_dim``, built-in faces, c_dim 5."""
    model = ModelConfig(
        image_size=image_size,
        c_dim=5,
        g_conv_dim=conv_dim,
        d_conv_dim=conv_dim,
        d_repeat_num=6 if image_size >= 64 else 4,
    )
    return _on_builtin(Config(name="bench", model=model), batch_size, device, plain, precision)


# what the benchmark sets itself (_on_builtin, c_dim): --set may not change these keys, nor
# any data.* key
_BENCH_KEYS = {"model.c_dim", "train.batch_size", "train.device", "train.precision"}
_BENCH_KEYS |= {"train.fast_kernels", "train.num_iters", "train.tensorboard"}


def preset_config(
    name: str,
    batch_size: int,
    device: str,
    plain: bool,
    precision: str,
    overrides: Sequence[str] = (),
) -> Config:
    """A preset's networks, losses and optimiser (with ``overrides``, ``KEY=VALUE``) on
    built-in faces (5 attributes, as CelebA's), at its image size; a joint or v2 preset is
    refused, and so are overrides of what the benchmark sets (``_BENCH_KEYS``, ``data.*``:
    use its own options)."""
    for item in overrides:
        key = item.split("=", 1)[0].strip()
        if key in _BENCH_KEYS or key.startswith("data."):
            raise SystemExit(f"--set {item}: the benchmark sets this itself (see --help)")
    try:
        cfg = validate(apply_overrides(get_preset(name), list(overrides)))
    except StarGANError as err:
        raise SystemExit(f"--set: {err}") from None
    if cfg.model.arch != "v1" or cfg.joint:
        raise SystemExit(f"--preset takes a single-dataset StarGAN v1 preset, not {name!r}")
    cfg = replace(cfg, model=replace(cfg.model, c_dim=5))
    return _on_builtin(cfg, batch_size, device, plain, precision)


def _on_builtin(cfg: Config, batch_size: int, device: str, plain: bool, precision: str) -> Config:
    """``cfg`` on a few built-in faces with the benchmark's training settings."""
    train = replace(
        cfg.train,
        batch_size=batch_size,
        num_iters=10**6,
        tensorboard=False,
        device=device,
        fast_kernels=not plain,
        precision=precision,
    )
    data = DataConfig(dataset="faces-attr", num_train=max(4 * batch_size, 64))
    return replace(cfg, data=data, train=train)


def trainer_for(tmp: Path, cfg: Config) -> V1Trainer:
    size, n = cfg.model.image_size, cfg.data.num_train
    data = load_builtin("faces-attr", "train", size, n, cache_dir=tmp)
    if cfg.train.fast_kernels:
        keep_freed_memory()  # as run_training does (process-wide: stays on afterwards)
    return V1Trainer(cfg, tmp, data)


def _minor_faults() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def _cycle_flops(trainer: V1Trainer, n_critic: int) -> float:
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
