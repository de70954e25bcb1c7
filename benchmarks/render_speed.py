"""How fast the procedural face renderer feeds training (one process, CPU).

Renders ``--n`` faces of the train split with :func:`stargan.data.faces.render_batch`
(sampling parameters included, as a data loader would) and reports images per second.
The last line of output is the same figures as one JSON object, for scripts.

Examples:
    python benchmarks/render_speed.py                 # 1000 faces at 64 px
    python benchmarks/render_speed.py --size 32 --n 5000
"""

from __future__ import annotations

import argparse
import json
import time

from stargan.data.faces import render_batch


def _parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--size", type=int, default=64, help="image side in pixels (16..256)")
    parser.add_argument("--n", type=int, default=1000, help="number of images to render")
    parser.add_argument("--seed", type=int, default=0, help="dataset seed")
    args = parser.parse_args()
    if args.n < 1:
        parser.error("--n must be >= 1")
    return args


def measure(size: int, n: int, seed: int = 0) -> dict[str, float]:
    """Render ``n`` images once (after a short warm-up) and time it with a monotonic clock."""
    render_batch(seed, "train", range(min(n, 20)), size)  # warm-up: imports, caches, allocator
    start = time.perf_counter()
    render_batch(seed, "train", range(n), size)
    seconds = time.perf_counter() - start
    return {
        "size": size,
        "images_per_s": round(n / seconds, 1),
        "ms_per_image": round(1000 * seconds / n, 3),
    }


def main() -> None:
    args = _parse_args()
    result = measure(args.size, args.n, args.seed)
    print(f"{'size':>6} {'images/s':>10} {'ms/image':>10}")
    print(f"{result['size']:>6} {result['images_per_s']:>10.1f} {result['ms_per_image']:>10.3f}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
