"""A disk cache of decoded, resized uint8 images, memory-mapped on reuse.

Keyed by everything that decides the pixels (source files and transform settings), so a
later epoch or run reads it instead of decoding again.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np


def default_cache_dir() -> Path:
    """``$STARGAN_CACHE``, else ``$XDG_CACHE_HOME/stargan``, else ``~/.cache/stargan``."""
    if os.environ.get("STARGAN_CACHE"):
        return Path(os.environ["STARGAN_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "stargan"


def cache_key(*parts: object) -> str:
    return hashlib.sha1("\x1f".join(map(str, parts)).encode()).hexdigest()[:16]


def cached_images(path: Path, build: Callable[[], np.ndarray]) -> np.ndarray:
    """Return the array stored at ``path`` (memory-mapped), building and saving it first
    when absent. Written to a temp file and renamed: a crash never leaves half a cache."""
    if path.exists():
        try:
            return np.load(path, mmap_mode="r")
        except (OSError, ValueError):
            path.unlink(missing_ok=True)  # damaged: rebuild
    images = build()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.stem}.tmp{os.getpid()}.npy")
        np.save(tmp, images)
        os.replace(tmp, path)
    except OSError:
        pass  # an unwritable cache only costs time next run
    return images
