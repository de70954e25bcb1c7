"""Inference speed of the StarGAN v1 generator (paper size by default).

    python benchmarks/infer_speed.py --image-size 128 --batch-size 16

"ms per image translation": a batch translated to every one of c_dim target domains,
time divided by batch_size * c_dim. "batch-1 latency": one image, one target. Prints a
table, then the same figures as one JSON object on the last line.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from _report import print_report
from stargan.models.v1 import Generator


def timed(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--image-size", type=int, default=128)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--c-dim", type=int, default=5)
    ap.add_argument("--conv-dim", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    G = Generator(args.c_dim, args.conv_dim).eval()
    x = torch.rand(args.batch_size, 3, args.image_size, args.image_size) * 2 - 1
    labels = torch.eye(args.c_dim)

    def all_domains() -> None:
        for c in labels:
            G(x, c.expand(args.batch_size, -1))

    def single() -> None:
        G(x[:1], labels[:1])

    with torch.inference_mode():
        all_domains(), single()  # warm-up
        batch_s = timed(all_domains, args.repeats)
        single_s = timed(single, args.repeats * 4)
    result = {
        "image_size": args.image_size,
        "batch_size": args.batch_size,
        "c_dim": args.c_dim,
        "threads": args.threads,
        "ms_per_image": 1000 * batch_s / (args.batch_size * args.c_dim),
        "batch1_ms": 1000 * single_s,
        "torch": torch.__version__,
    }
    print_report(
        [
            ("image size", str(args.image_size)),
            ("batch size", str(args.batch_size)),
            ("threads", str(args.threads)),
            ("ms per image translation", f"{result['ms_per_image']:.1f}"),
            ("batch-1 latency (ms)", f"{result['batch1_ms']:.1f}"),
        ],
        result,
    )


if __name__ == "__main__":
    main()
