"""Files written whole or not at all: each is written to a temporary sibling and renamed onto
its name when complete (a rename within one folder is atomic), so a crash or a full disk never
leaves a half-written file where a reader expects a whole one. The one helper for every
temp-and-rename site (checkpoint folders, train/checkpoint.py, are renamed the same way)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_path(path: Path, suffix: str = "") -> Iterator[Path]:
    """A temporary path beside ``path`` to write; renamed onto ``path`` when the block ends
    without an error, removed otherwise. ``suffix`` ends the temporary name (writers that
    insist on an extension, such as numpy's ``.npy``). The parent folder is made."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}{suffix}")
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_bytes(path: Path, data: bytes) -> None:
    """``data`` to ``path``, atomically; the file follows the umask as any new file."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text(path: Path, text: str) -> None:
    """``text`` (UTF-8) to ``path``, atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
