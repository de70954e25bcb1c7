"""Running the app: ``serve`` for ``stargan serve`` (blocks until Ctrl-C), ``ServerThread`` for
tests and benchmarks (a background uvicorn on a free loopback port).

Both bind the socket themselves before uvicorn starts, so a busy port or a bad address is one
clear StarGANError instead of a uvicorn log line and an exit."""

from __future__ import annotations

import ipaddress
import json
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from stargan.errors import StarGANError
from stargan.serve.app import create_app

LOOPBACK_NAMES = ["127.0.0.1", "localhost", "::1"]
PER_CLIENT = 8  # requests at once from one address when the page is open to other machines


class JsonErrorH11Protocol(H11Protocol):
    """uvicorn's h11 protocol, answering requests that are not valid HTTP (``Content-Length:
    abc``, a broken request line) with the app's JSON error shape instead of plain text."""

    def send_400_response(self, msg: str) -> None:
        body = json.dumps({"error": f"malformed HTTP request: {msg}"}).encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),
        ]
        for event in (
            h11.Response(status_code=400, headers=headers, reason=b"Bad Request"),
            h11.Data(data=body),
            h11.EndOfMessage(),
        ):
            self.transport.write(self.conn.send(event))
        self.transport.close()


def uvicorn_config(app: Any, **options: Any) -> uvicorn.Config:
    """uvicorn's config for our app: h11 with JSON errors, no Server header."""
    return uvicorn.Config(app, http=JsonErrorH11Protocol, server_header=False, **options)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on (host, port); port 0 picks a free one."""
    host = "127.0.0.1" if host == "localhost" else host
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        sock = socket.socket(family, socket.SOCK_STREAM)
    except OSError as err:
        raise StarGANError(f"cannot serve on {host}: {err.strerror or err}") from err
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
    except OSError as err:
        sock.close()
        hint = "; choose another with --port" if "in use" in str(err.strerror) else ""
        raise StarGANError(f"cannot listen on {host}:{port}: {err.strerror or err}{hint}") from err
    sock.set_inheritable(True)
    return sock


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def serve(
    model_dir: str | Path,
    host: str = "127.0.0.1",
    port: int = 7860,
    *,
    workers: int = 2,
    max_upload_mb: float = 10,
    device: str = "cpu",
    int8: bool = False,
    precision: str = "auto",
    log_level: str = "info",
    echo: Callable[[str], Any] = print,
) -> None:
    """Serve the page for ``model_dir`` until interrupted. Loopback by default; any other
    address exposes the page (no authentication) to everyone who can reach it. ``int8``,
    ``precision``: see ``app.create_app``."""
    loopback = is_loopback(host)
    sock = bind(host, port)  # a busy port fails at once, before the model loads
    try:
        app = create_app(
            model_dir,
            max_upload_bytes=int(max_upload_mb * 2**20),
            workers=workers,
            device=device,
            int8=int8,
            precision=precision,
            allowed_hosts=LOOPBACK_NAMES if loopback else None,
            max_per_client=None if loopback else PER_CLIENT,  # loopback: one user, one address
        )
    except BaseException:
        sock.close()
        raise
    if not loopback:
        echo(
            f"warning: serving on {host}: anyone who can reach this machine on port "
            f"{sock.getsockname()[1]} can use the page (there is no authentication)"
        )
    mode = ", int8 G" if int8 else f", G in {precision}"
    echo(f"stargan serve: {Path(model_dir)}{mode} at {url_of(sock)} (Ctrl-C stops)")
    config = uvicorn_config(app, log_level=log_level, timeout_keep_alive=5)
    try:
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        sock.close()


class ServerThread:
    """uvicorn serving ``app`` in a background thread on a free loopback port::

    with ServerThread(create_app(model)) as server:
        load_test(server.url, ...)
    """

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 0) -> None:
        self.app, self.host, self.port = app, host, port
        self.url = ""

    def __enter__(self) -> ServerThread:
        self.sock = bind(self.host, self.port)
        self.url = url_of(self.sock)
        config = uvicorn_config(self.app, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True
        )
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                self.sock.close()
                raise StarGANError("the test server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.sock.close()
