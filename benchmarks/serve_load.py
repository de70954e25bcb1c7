"""Requests/s and latency of the web page's translate endpoint under concurrent clients.

    python benchmarks/serve_load.py                          # 128 px paper-size G, 4 clients
    python benchmarks/serve_load.py --model my-model --clients 8 --requests 80
    python benchmarks/serve_load.py --image-size 32 --requests 8   # a quick look

Without ``--model`` a randomly initialised paper-size model (conv_dim 64, 6 residual
blocks, 5 CelebA attributes; the same cost as a trained one) is written to a temporary
folder. The server runs in this process on a free loopback port (uvicorn, ``--workers``
translation threads); each request uploads a 256 px PNG face, which the server resizes,
translates to ``--target`` and returns as a PNG row. Needs ``pip install -e ".[serve]"``.
"""

from __future__ import annotations

import argparse
import io
import math
import os
import tempfile
from pathlib import Path

import torch
from PIL import Image

from _report import print_report
from stargan.config import ModelConfig
from stargan.data.celeba import label_spec
from stargan.data.faces import params_for, render
from stargan.models.v1 import build_v1
from stargan.serve import create_app, load_test
from stargan.serve.server import ServerThread
from stargan.translate import Translator

ATTRS = ("Black_Hair", "Blond_Hair", "Brown_Hair", "Male", "Young")


def random_model(out: Path, image_size: int) -> Path:
    d_repeat = min(6, int(math.log2(image_size)) - 1)  # D's last map at least 2x2
    cfg = ModelConfig(image_size=image_size, c_dim=len(ATTRS), d_repeat_num=d_repeat)
    torch.manual_seed(0)
    nets = build_v1(cfg)
    return Translator(nets["G"], cfg, label_spec(ATTRS), nets["D"]).save_pretrained(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, default=None)
    ap.add_argument("--image-size", type=int, default=128, help="without --model")
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--requests", type=int, default=40)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--target", default="Blond_Hair=1,Male=0")
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    buf = io.BytesIO()
    Image.fromarray(render(params_for(0, "test", 3), 256)).save(buf, "PNG")
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        model = args.model or random_model(Path(tmp) / "model", args.image_size)
        with ServerThread(create_app(model, workers=args.workers)) as server:
            r = load_test(
                server.url,
                buf.getvalue(),
                args.target,
                clients=args.clients,
                requests=args.requests,
            )
    lat = r["latency_ms"]
    rows = [
        ("model", str(args.model or f"random paper-size G at {args.image_size} px")),
        ("clients / workers / torch threads", f"{args.clients} / {args.workers} / {args.threads}"),
        ("requests ok / errors", f"{r['ok']} / {r['errors']}"),
        ("requests/s", f"{r['requests_per_s']:.2f}"),
        ("latency p50 / p95 ms", f"{lat['p50']:.0f} / {lat['p95']:.0f}"),
        ("1-min load average before", f"{load_before:.2f}"),
    ]
    result = {
        "requests_per_s": r["requests_per_s"],
        "p50_ms": lat["p50"],
        "p95_ms": lat["p95"],
        "errors": r["errors"],
        "load_avg_1min": load_before,
    }
    print_report(rows, result)


if __name__ == "__main__":
    main()
