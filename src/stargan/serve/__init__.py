"""``stargan serve``: a web page over a model folder (upload or pick a face, choose target
attributes, see and download the result grid). See docs/serve.md.

FastAPI, uvicorn and python-multipart come with ``pip install 'stargan[serve]'``; this module
imports them only when called, so ``stargan`` works without them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from stargan.errors import StarGANError

__all__ = ["create_app", "load_test", "run"]

INSTALL_HINT = "stargan serve needs FastAPI and uvicorn: pip install 'stargan[serve]'"


def _require() -> None:
    import importlib.util

    missing = [
        m for m in ("fastapi", "uvicorn", "multipart") if importlib.util.find_spec(m) is None
    ]
    if missing:
        raise StarGANError(f"{INSTALL_HINT} (missing: {', '.join(missing)})")


def run(model_dir: str | Path, host: str = "127.0.0.1", port: int = 7860, **options: Any) -> None:
    """Serve the page until Ctrl-C; options as ``server.serve`` (workers, max_upload_mb,
    device, int8, log_level, echo)."""
    _require()
    from stargan.serve.server import serve

    serve(model_dir, host, port, **options)


def create_app(model_dir: str | Path, **options: Any) -> Any:
    """The FastAPI app for ``model_dir``; options as ``app.create_app``."""
    _require()
    from stargan.serve.app import create_app as create

    return create(model_dir, **options)


def load_test(url: str, image_bytes: bytes, target: str | None, **options: Any) -> dict:
    """``loadtest.load_test``: requests/s and latency of a running server's translate."""
    _require()
    from stargan.serve.loadtest import load_test as run_load

    return run_load(url, image_bytes, target, **options)
