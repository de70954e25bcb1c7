"""Numbered run folders: ``runs/00001-<name>/``."""

from __future__ import annotations

import re
from pathlib import Path

from stargan.errors import StarGANError

_RUN_RE = re.compile(r"^(\d{5})-(.+)$")


def list_runs(outdir: Path) -> list[Path]:
    if not outdir.is_dir():
        return []
    return sorted(p for p in outdir.iterdir() if p.is_dir() and _RUN_RE.match(p.name))


def new_run_dir(outdir: Path, name: str) -> Path:
    """Create the next numbered run folder, e.g. ``runs/00003-demo``."""
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-") or "run"
    try:
        outdir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise StarGANError(f"cannot create output folder {outdir}: {err.strerror}") from err
    runs = list_runs(outdir)
    number = int(_RUN_RE.match(runs[-1].name).group(1)) + 1 if runs else 1
    while True:
        path = outdir / f"{number:05d}-{safe}"
        try:
            path.mkdir()
            return path
        except FileExistsError:  # another process took the number
            number += 1
        except OSError as err:
            raise StarGANError(f"cannot create run folder {path}: {err.strerror}") from err
