"""A bounded load test of ``POST /api/translate``: ``clients`` threads, each with its own
keep-alive connection, share ``requests`` requests; latency is per request, from sending the
request to having read the whole response. Standard library only.

It refuses any address but loopback unless told otherwise: a load test is for one's own server.
"""

from __future__ import annotations

import http.client
import threading
import time
import uuid
from typing import Any
from urllib.parse import urlsplit

import numpy as np

from stargan.errors import StarGANError
from stargan.serve.server import is_loopback


def multipart(
    fields: dict[str, str],
    image: bytes | None,
    filename: str = "input.png",
    files: dict[str, bytes] | None = None,
) -> tuple[bytes, str]:
    """(body, content type) of a multipart/form-data request: ``fields`` as text fields, the
    image (when given) as the file field 'image', and ``files`` as further file fields (a
    StarGAN v2 model's 'reference')."""
    boundary = uuid.uuid4().hex
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
        for k, v in fields.items()
    ]
    uploads = {"image": image, **(files or {})}
    for name, data in uploads.items():
        if data is None:
            continue
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; '
            f'filename="{filename if name == "image" else name + ".png"}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n".encode()
            + data
            + b"\r\n"
        )
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def load_test(
    url: str,
    image_bytes: bytes,
    target: str | None,
    clients: int = 4,
    requests: int = 40,
    *,
    warmup: int = 2,
    timeout: float = 120.0,
    fields: dict[str, str] | None = None,
    allow_remote: bool = False,
) -> dict[str, Any]:
    """Send ``requests`` translations (after ``warmup`` unmeasured ones) from ``clients``
    concurrent clients to the server at ``url`` (``http://127.0.0.1:7860``). ``target``:
    as the form field (None: all domains). Returns counts, requests/s and latency in ms
    (p50, p95, mean, max) of the successful requests, and the first error seen."""
    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.hostname:
        raise StarGANError(f"load_test needs an http:// URL, not {url!r}")
    if not (allow_remote or is_loopback(parts.hostname)):
        raise StarGANError(f"load_test targets loopback only, not {parts.hostname}")
    form = {"target": target} if target is not None else {"all_domains": "1"}
    body, ctype = multipart({**form, **(fields or {})}, image_bytes)
    path = (parts.path.rstrip("/") or "") + "/api/translate"

    def connect() -> http.client.HTTPConnection:
        return http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=timeout)

    def post(conn: http.client.HTTPConnection) -> tuple[int, bytes]:
        conn.request("POST", path, body=body, headers={"Content-Type": ctype})
        response = conn.getresponse()
        return response.status, response.read()

    conn = connect()
    for _ in range(warmup):
        status, data = post(conn)
        if status != 200:
            raise StarGANError(f"warm-up request failed: HTTP {status} {data[:200]!r}")
    conn.close()

    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    left = [requests]

    def client() -> None:
        conn = connect()
        try:
            while True:
                with lock:
                    if left[0] <= 0:
                        return
                    left[0] -= 1
                start = time.perf_counter()
                try:
                    status, data = post(conn)
                except (OSError, http.client.HTTPException) as err:
                    conn.close()
                    conn = connect()
                    status, data = 0, str(err).encode()
                seconds = time.perf_counter() - start
                with lock:
                    if status == 200 and data[:8] == b"\x89PNG\r\n\x1a\n":
                        latencies.append(seconds)
                    else:
                        errors.append(f"HTTP {status}: {data[:200]!r}")
        finally:
            conn.close()

    threads = [threading.Thread(target=client) for _ in range(clients)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    ms = np.array(latencies) * 1000 if latencies else np.zeros(1)
    return {
        "clients": clients,
        "requests": requests,
        "ok": len(latencies),
        "errors": len(errors),
        "first_error": errors[0] if errors else None,
        "seconds": round(wall, 3),
        "requests_per_s": round(len(latencies) / wall, 3) if wall > 0 else 0.0,
        "latency_ms": {
            "p50": round(float(np.percentile(ms, 50)), 1),
            "p95": round(float(np.percentile(ms, 95)), 1),
            "mean": round(float(ms.mean()), 1),
            "max": round(float(ms.max()), 1),
        },
    }
