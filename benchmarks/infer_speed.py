"""Inference speed of the StarGAN v1 generator (paper size by default).

    python benchmarks/infer_speed.py --image-size 128 --batch-size 16

    python benchmarks/infer_speed.py --image-size 128 --batch-size 16 --threads 2 --int8
    python benchmarks/infer_speed.py --image-size 128 --threads 2 --bf16

"ms per image translation": a batch translated to every one of c_dim target domains,
time divided by batch_size * c_dim. "batch-1 latency": one image, one target. Prints a
table, then the same figures as one JSON object on the last line.

``--int8`` also times the int8 generator (stargan.quantize; x86 CPUs with VNNI),
calibrated on another random batch, with fp32 and int8 runs alternating so that load
from other jobs hits both alike; ``int8_psnr_db`` compares its outputs with fp32's
(outputs mapped to [0, 255]). A randomly initialised G is a harder case than a trained
one: measure PSNR on a real model too (see stargan.quantize). ``--bf16`` times the bf16
path of ``stargan translate`` (``stargan.inference_precision``: autocast, float32 out) the
same way, with ``bf16_psnr_db``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import torch

from _report import print_report
from stargan.inference_precision import InferencePrecision, psnr_db
from stargan.models.v1 import Generator


def timed_alternating(fns: list, repeats: int) -> list[float]:
    """Median seconds of each of ``fns``, run in turn ``repeats`` times."""
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(repeats):
        for fn, ts in zip(fns, times, strict=True):
            start = time.perf_counter()
            fn()
            ts.append(time.perf_counter() - start)
    return [statistics.median(ts) for ts in times]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--image-size", type=int, default=128)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--c-dim", type=int, default=5)
    ap.add_argument("--conv-dim", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--int8", action="store_true", help="also time the int8 generator")
    ap.add_argument("--bf16", action="store_true", help="also time G under bf16 autocast")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    G = Generator(args.c_dim, args.conv_dim).eval()
    x = torch.rand(args.batch_size, 3, args.image_size, args.image_size) * 2 - 1
    labels = torch.eye(args.c_dim)
    nets, names = [G], ["fp32"]
    if args.int8:
        nets.append(int8_generator(G, args))
        names.append("int8")
    if args.bf16:
        nets.append(lambda x, c: InferencePrecision("bf16")(G, x, c))
        names.append("bf16")

    def all_domains(net) -> None:
        for c in labels:
            net(x, c.expand(args.batch_size, -1))

    def single(net) -> None:
        net(x[:1], labels[:1])

    with torch.inference_mode():
        for net in nets:
            all_domains(net), single(net)  # warm-up
        # seconds per call, one per net: [fp32] or [fp32, int8]
        batch_s = timed_alternating([lambda n=n: all_domains(n) for n in nets], args.repeats)
        single_s = timed_alternating([lambda n=n: single(n) for n in nets], args.repeats * 4)
        c = labels[torch.arange(args.batch_size) % args.c_dim]
        psnrs = {name: psnr_db(net(x, c), G(x, c)) for name, net in zip(names, nets, strict=True)}
    result = {
        "image_size": args.image_size,
        "batch_size": args.batch_size,
        "c_dim": args.c_dim,
        "threads": args.threads,
        "ms_per_image": 1000 * batch_s[0] / (args.batch_size * args.c_dim),
        "batch1_ms": 1000 * single_s[0],
        "torch": torch.__version__,
    }
    rows = [
        ("image size", str(args.image_size)),
        ("batch size", str(args.batch_size)),
        ("threads", str(args.threads)),
        ("ms per image translation", f"{result['ms_per_image']:.1f}"),
        ("batch-1 latency (ms)", f"{result['batch1_ms']:.1f}"),
    ]
    for k, name in enumerate(names[1:], start=1):
        result |= {
            f"{name}_ms_per_image": 1000 * batch_s[k] / (args.batch_size * args.c_dim),
            f"{name}_batch1_ms": 1000 * single_s[k],
            f"{name}_speedup": batch_s[0] / batch_s[k],
            f"{name}_batch1_speedup": single_s[0] / single_s[k],
            f"{name}_psnr_db": psnrs[name],
        }
        rows += [
            (f"{name} ms per image translation", f"{result[f'{name}_ms_per_image']:.1f}"),
            (f"{name} batch-1 latency (ms)", f"{result[f'{name}_batch1_ms']:.1f}"),
            (f"{name} PSNR vs fp32 (dB)", f"{psnrs[name]:.1f}"),
        ]
    print_report(rows, result)


def int8_generator(G: Generator, args: argparse.Namespace) -> torch.nn.Module:
    """G quantized to int8, calibrated on a random batch other than the timed one."""
    from stargan.quantize import int8_unsupported_reason, quantize_generator

    reason = int8_unsupported_reason()
    if reason is not None:
        sys.exit(f"--int8: {reason}")
    gen = torch.Generator().manual_seed(1)
    n = max(args.batch_size, args.c_dim)
    x_cal = torch.rand(n, 3, args.image_size, args.image_size, generator=gen) * 2 - 1
    return quantize_generator(G, x_cal, torch.eye(args.c_dim)[torch.arange(n) % args.c_dim])


if __name__ == "__main__":
    main()
