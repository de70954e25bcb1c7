"""What every file surface (``stargan translate``, ``stargan sample``, ``stargan cyclegan
translate``) checks before it works: the device exists, the output folder is writable, and
no two inputs would write the same output files."""

from __future__ import annotations

from pathlib import Path

import torch

from stargan.errors import StarGANError


def check_device(name: str) -> str:
    """``name`` back, or an error when it asks for CUDA on a machine without it."""
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise StarGANError(f"--device {name}: CUDA is not available on this machine")
    return name


def ensure_writable(out: Path) -> None:
    """Make ``out`` and prove a file can be written there, before any work is done."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as err:
        raise StarGANError(f"output folder {out} is not writable: {err.strerror}") from err


def check_unique_stems(paths: list[Path]) -> None:
    """Outputs are named by the input's stem: refuse two inputs with one stem."""
    stems: dict[str, Path] = {}
    for p in paths:
        if stems.setdefault(p.stem, p) != p:
            raise StarGANError(
                f"two inputs would write the same outputs: {stems[p.stem]} "
                f"and {p}; translate them into separate -o folders"
            )
