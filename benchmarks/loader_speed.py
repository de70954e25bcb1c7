"""How fast real photos reach training: decoding CelebA cold vs reusing the cache (warm).

    python benchmarks/loader_speed.py                      # 64 and 128 px, all cores
    python benchmarks/loader_speed.py --image-size 128 --workers 1
    python benchmarks/loader_speed.py --path /data/celeba  # any official-layout folder

Cold: a fresh, empty cache folder, so every image of both official splits is decoded
(``--workers`` threads), centre-cropped to 178, resized and streamed into the
memory-mapped cache. Warm: the same loads again (file stats + memory map, nothing
decoded), then every image gathered once in random batches of 16 with
``dataset.batch``, as the trainer draws them. Warm pages come from the OS page cache
(the cold run has just written them). Prints a table, then the figures as one JSON line.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from _report import print_report
from stargan.data.celeba import load_celeba
from stargan.data.dataset import ImageLabelDataset, epoch_batch_indices

SUBSET = Path(__file__).resolve().parents[2] / "shared" / "data" / "celeba_subset"
BATCH = 16


def _parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    ap.add_argument("--path", type=Path, default=SUBSET, help="CelebA folder (official layout)")
    ap.add_argument("--image-size", type=int, nargs="+", default=[64, 128], help="output px")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="decode threads")
    args = ap.parse_args()
    if args.workers < 1 or min(args.image_size) < 1:
        ap.error("--workers and --image-size must be >= 1")
    return args


def _load_all(root: Path, size: int, cache: Path, workers: int) -> list[ImageLabelDataset]:
    return [
        load_celeba(root, (), size, split, "official", cache_dir=cache, workers=workers)
        for split in ("train", "test")
    ]


def _gather(datasets: list[ImageLabelDataset]) -> int:
    """Read every image once in random batches of 16, as training does; images read."""
    count = 0
    for ds in datasets:
        for step in range(len(ds) // BATCH):
            x, _ = ds.batch(epoch_batch_indices(len(ds), BATCH, step, seed=0))
            count += int(x.shape[0])
    return count


def measure(root: Path, size: int, workers: int) -> dict[str, float]:
    """Cold and warm throughput at ``size`` px, in a throw-away cache folder."""
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        n = sum(len(ds) for ds in _load_all(root, size, Path(tmp), workers))
        cold = time.perf_counter() - start
        start = time.perf_counter()
        datasets = _load_all(root, size, Path(tmp), workers)
        opened = time.perf_counter() - start
        start = time.perf_counter()
        gathered = _gather(datasets)
        gather = time.perf_counter() - start
    return {
        "images": n,
        "cold_images_per_s": n / cold,
        "warm_open_ms": 1000 * opened,
        "warm_gather_images_per_s": gathered / gather,
        "warm_images_per_s": n / (opened + gather * n / gathered),
    }


def main() -> None:
    args = _parse_args()
    rows: list[tuple[str, str]] = [("data", str(args.path)), ("workers", str(args.workers))]
    result: dict = {"workers": args.workers}
    for size in args.image_size:
        r = measure(args.path, size, args.workers)
        result["images"] = r["images"]
        rows += [
            (f"{size} px cold (decode + cache)", f"{r['cold_images_per_s']:,.0f} images/s"),
            (f"{size} px warm (open + batches)", f"{r['warm_images_per_s']:,.0f} images/s"),
            (f"{size} px   open cached split(s)", f"{r['warm_open_ms']:.1f} ms"),
            (f"{size} px   gather batches of 16", f"{r['warm_gather_images_per_s']:,.0f} images/s"),
        ]
        result |= {f"{k}_{size}": v for k, v in r.items() if k != "images"}
    rows.insert(1, ("images", str(result["images"])))
    print_report(rows, result)


if __name__ == "__main__":
    main()
