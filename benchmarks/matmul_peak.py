"""The machine's fp32 matmul peak: the yardstick for achieved GFLOP/s in training.

    python benchmarks/matmul_peak.py                  # 4096 x 4096, all threads
    python benchmarks/matmul_peak.py --size 2048 --threads 1

Times ``--repeats`` products of two random square fp32 matrices after one warm-up and
reports the best and the median rate (2 n^3 FLOPs per product). ``train_speed.py --flops``
divides its achieved GFLOP/s by this.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch

from _report import print_report


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=4096)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--dtype", choices=["float32", "bfloat16"], default="float32")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    load_before = os.getloadavg()[0]
    gen = torch.Generator().manual_seed(0)
    dtype = getattr(torch, args.dtype)
    a = torch.randn(args.size, args.size, generator=gen).to(dtype)
    b = torch.randn(args.size, args.size, generator=gen).to(dtype)
    torch.mm(a, b)  # warm-up
    seconds = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        torch.mm(a, b)
        seconds.append(time.perf_counter() - start)
    flops = 2 * args.size**3
    result = {
        "size": args.size,
        "threads": args.threads,
        "dtype": args.dtype,
        "gflops_best": flops / min(seconds) / 1e9,
        "gflops_median": flops / statistics.median(seconds) / 1e9,
        "load_avg_1min": load_before,
    }
    print_report(
        [
            ("matrix", f"{args.size} x {args.size} {args.dtype}"),
            ("threads", str(args.threads)),
            ("best", f"{result['gflops_best']:.1f} GFLOP/s"),
            ("median", f"{result['gflops_median']:.1f} GFLOP/s"),
            ("1-min load average before", f"{load_before:.2f}"),
        ],
        result,
    )


if __name__ == "__main__":
    main()
