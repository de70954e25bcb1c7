"""A disk cache of decoded, resized uint8 images, memory-mapped on reuse.

Keyed by everything that decides the pixels (source files and transform settings), so a
later epoch or run reads it instead of decoding again. Entries are written under a
temporary name and renamed into place: a crash never leaves half a cache file.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from stargan.atomic import atomic_path, write_text


def default_cache_dir() -> Path:
    """``$STARGAN_CACHE``, else ``$XDG_CACHE_HOME/stargan``, else ``~/.cache/stargan``."""
    if os.environ.get("STARGAN_CACHE"):
        return Path(os.environ["STARGAN_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "stargan"


def cache_key(*parts: object) -> str:
    return hashlib.sha1("\x1f".join(map(str, parts)).encode()).hexdigest()[:16]


def resize_filter_parts(resize_filter: str) -> tuple[str, ...]:
    """The cache-key parts of a resize filter: none for bicubic, the only filter before
    ``data.resize_filter`` existed, so entries made then stay valid; one for any other."""
    return () if resize_filter == "bicubic" else (f"resize_filter={resize_filter}",)


def open_cached(path: Path) -> np.ndarray | None:
    """The array stored at ``path``, memory-mapped read-only; None when absent or damaged
    (a damaged file is removed so that it is rebuilt)."""
    if not path.exists():
        return None
    try:
        return np.load(path, mmap_mode="r")
    except (OSError, ValueError):
        path.unlink(missing_ok=True)
        return None


@contextmanager
def building(path: Path, shape: tuple[int, ...], dtype: type = np.uint8) -> Iterator[np.ndarray]:
    """A writable memory-mapped .npy at a temp name beside ``path``, filled by the caller
    and renamed onto ``path`` when the block ends cleanly (removed if it raises).

    The array lives on disk as it is filled: its size is not bounded by RAM.
    Raises OSError when the folder cannot be written.
    """
    with atomic_path(path, suffix=".npy") as tmp:
        out = np.lib.format.open_memmap(tmp, mode="w+", dtype=dtype, shape=shape)
        yield out
        out.flush()


def write_json(path: Path, data: dict) -> None:
    """Write ``data`` as JSON atomically (temp file, then rename)."""
    write_text(path, json.dumps(data))


def read_json(path: Path) -> dict | None:
    """The JSON object at ``path``; None when absent or unreadable."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def cached_images(path: Path, build: Callable[[], np.ndarray]) -> np.ndarray:
    """Return the array stored at ``path`` (memory-mapped), building and saving it first
    when absent. ``build`` returns the whole array in memory: fine for the built-in
    renders; decoded photo sets stream through :func:`building` instead (data/decode.py)."""
    cached = open_cached(path)
    if cached is not None:
        return cached
    images = build()
    try:
        with building(path, images.shape, images.dtype.type) as out:
            out[:] = images
    except OSError:
        pass  # an unwritable cache only costs time next run
    return images
