"""Requests/s and latency of the web page's translate endpoint under concurrent clients.

    python benchmarks/serve_load.py                          # 128 px paper-size G, 4 clients
    python benchmarks/serve_load.py --model my-model --clients 8 --requests 80
    python benchmarks/serve_load.py --image-size 32 --requests 8   # a quick look
    python benchmarks/serve_load.py --slow-clients 32              # under a slow-body attack
    python benchmarks/serve_load.py --bomb-clients 8               # under small decode bombs

Without ``--model`` a randomly initialised paper-size model (conv_dim 64, 6 residual
blocks, 5 CelebA attributes; the same cost as a trained one) is written to a temporary
folder. The server runs in this process on a free loopback port (uvicorn, ``--workers``
translation threads); each request uploads a 256 px PNG face, which the server resizes,
translates to ``--target`` and returns as a PNG row. Needs ``pip install -e ".[serve]"``.

Attacks beside the measured clients (issue 18 items 1 and 2): ``--slow-clients N``
connections that each declare a 1 MB body, send 1 KB and stall (reconnecting when the
server drops them); ``--bomb-clients N`` clients that keep posting a small PNG (about
180 KB) declaring 9000 x 7000 pixels. The report adds what the attackers got and the
server process's resident memory after the run.
"""

from __future__ import annotations

import argparse
import io
import math
import os
import socket
import tempfile
import threading
import time
from pathlib import Path

import torch
from PIL import Image

from _report import print_report
from stargan.config import ModelConfig
from stargan.data.celeba import label_spec
from stargan.data.faces import params_for, render
from stargan.models.v1 import build_v1
from stargan.serve import create_app, load_test
from stargan.serve.loadtest import multipart
from stargan.serve.server import ServerThread
from stargan.translate import Translator

ATTRS = ("Black_Hair", "Blond_Hair", "Brown_Hair", "Male", "Young")


def random_model(out: Path, image_size: int) -> Path:
    d_repeat = min(6, int(math.log2(image_size)) - 1)  # D's last map at least 2x2
    cfg = ModelConfig(image_size=image_size, c_dim=len(ATTRS), d_repeat_num=d_repeat)
    torch.manual_seed(0)
    nets = build_v1(cfg)
    return Translator(nets["G"], cfg, label_spec(ATTRS), nets["D"]).save_pretrained(out)


class Attack:
    """Background attackers against ``url`` until :meth:`stop`; counts what they got."""

    def __init__(self, url: str, slow: int, bombs: int) -> None:
        host, port = url.split("//")[1].split(":")
        self.addr = (host, int(port.rstrip("/")))
        self.running, self.lock = True, threading.Lock()
        self.outcomes: dict[str, int] = {}
        self.bomb = bomb_png() if bombs else b""
        self.threads = [threading.Thread(target=self.slow_body, daemon=True) for _ in range(slow)]
        self.threads += [threading.Thread(target=self.post_bomb, daemon=True) for _ in range(bombs)]
        for t in self.threads:
            t.start()
        time.sleep(1.0 if self.threads else 0.0)  # the attack is in place before clients start

    def count(self, outcome: str) -> None:
        with self.lock:
            self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1

    def slow_body(self) -> None:
        head = (
            b"POST /api/translate HTTP/1.1\r\nHost: x\r\nContent-Length: 1048576\r\n"
            b"Content-Type: multipart/form-data; boundary=b\r\n\r\n"
        )
        while self.running:
            try:
                with socket.create_connection(self.addr, timeout=60) as sock:
                    sock.sendall(head + b"--b\r\n" + b"x" * 1024)
                    reply = sock.recv(64)  # the server's answer or close ends the stall
                    status = reply.split(b"\r\n")[0].decode(errors="replace") or "closed"
                    self.count(f"slow body: {status}")
            except OSError as err:
                self.count(f"slow body: {type(err).__name__}")
            time.sleep(0.1)

    def post_bomb(self) -> None:
        import http.client

        body, ctype = multipart({"target": "Male=1"}, self.bomb, "bomb.png")
        headers = {"Content-Type": ctype}
        while self.running:
            conn = http.client.HTTPConnection(*self.addr, timeout=60)
            try:
                conn.request("POST", "/api/translate", body=body, headers=headers)
                self.count(f"bomb: HTTP {conn.getresponse().status}")
            except (OSError, http.client.HTTPException) as err:
                self.count(f"bomb: {type(err).__name__}")
            finally:
                conn.close()

    def stop(self) -> dict[str, int]:
        self.running = False
        return dict(sorted(self.outcomes.items()))


def bomb_png() -> bytes:
    """A PNG of about 180 KB that decodes to 9000 x 7000 RGB pixels (63 MP)."""
    buf = io.BytesIO()
    Image.new("RGB", (9000, 7000)).save(buf, "PNG", compress_level=9)
    return buf.getvalue()


def rss_mib() -> float:
    with open("/proc/self/status") as f:
        kb = next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
    return kb / 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, default=None)
    ap.add_argument("--image-size", type=int, default=128, help="without --model")
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--requests", type=int, default=40)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--target", default="Blond_Hair=1,Male=0")
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--slow-clients", type=int, default=0, help="stalled-body attackers")
    ap.add_argument("--bomb-clients", type=int, default=0, help="decode-bomb attackers")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    buf = io.BytesIO()
    Image.fromarray(render(params_for(0, "test", 3), 256)).save(buf, "PNG")
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        model = args.model or random_model(Path(tmp) / "model", args.image_size)
        with ServerThread(create_app(model, workers=args.workers)) as server:
            attack = Attack(server.url, args.slow_clients, args.bomb_clients)
            try:
                r = load_test(
                    server.url,
                    buf.getvalue(),
                    args.target,
                    clients=args.clients,
                    requests=args.requests,
                    warmup=0 if attack.threads else 2,  # an attack may refuse warm-ups
                )
            finally:
                attacks = attack.stop()
            rss = rss_mib()
    lat = r["latency_ms"]
    rows = [
        ("model", str(args.model or f"random paper-size G at {args.image_size} px")),
        ("clients / workers / torch threads", f"{args.clients} / {args.workers} / {args.threads}"),
        ("requests ok / errors", f"{r['ok']} / {r['errors']}"),
        ("requests/s", f"{r['requests_per_s']:.2f}"),
        ("latency p50 / p95 ms", f"{lat['p50']:.0f} / {lat['p95']:.0f}"),
        ("1-min load average before", f"{load_before:.2f}"),
        ("attackers (slow bodies / bombs)", f"{args.slow_clients} / {args.bomb_clients}"),
        ("what the attackers got", ", ".join(f"{k} x{v}" for k, v in attacks.items()) or "-"),
        ("first error", str(r["first_error"])[:120]),
        ("server process RSS after, MiB", f"{rss:.0f}"),
    ]
    result = {
        "requests_per_s": r["requests_per_s"],
        "p50_ms": lat["p50"],
        "p95_ms": lat["p95"],
        "errors": r["errors"],
        "load_avg_1min": load_before,
        "rss_mib": rss,
        "attack_outcomes": attacks,
    }
    print_report(rows, result)


if __name__ == "__main__":
    main()
