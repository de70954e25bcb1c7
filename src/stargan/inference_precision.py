"""Inference precision: fp32, or the networks' forward passes under bf16 autocast.

``auto`` (the default of every command that loads a model folder) runs bf16 where the
device computes it natively (:func:`native_bf16`) and where it keeps the outputs close to
fp32's: on first use it translates one input both ways and keeps bf16 only if their PSNR
is at least ``MIN_PSNR_DB`` (images in [-1, 1], i.e. 0-255 PSNR). The check runs once per
loaded model; ``InferencePrecision.psnr_db`` holds what it measured. ``fp32`` and ``bf16``
are taken as given. Outputs are always float32.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from stargan.config import INFERENCE_PRECISIONS

MIN_PSNR_DB = 35.0


def native_bf16(device: torch.device) -> bool:
    """Whether ``device`` computes bf16 natively: a CUDA GPU that supports it, or a CPU with
    AVX512-BF16 or AMX (where bf16 autocast measured 2x fp32's speed; elsewhere bf16 is
    emulated and slower than fp32)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type != "cpu":
        return False
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(getattr(torch.cpu, name, lambda: False)() for name in checks)


def psnr_db(a: torch.Tensor, b: torch.Tensor) -> float:
    """PSNR of two image batches in [-1, 1] (peak-to-peak 2), capped at 100 dB."""
    mse = float((a.float() - b.float()).pow(2).mean())
    return min(100.0, 10 * math.log10(4.0 / max(mse, 1e-30)))


class InferencePrecision:
    """Runs a network call in the chosen precision; ``auto`` decides at the first call."""

    def __init__(self, requested: str = "fp32") -> None:
        if requested not in INFERENCE_PRECISIONS:
            choices = ", ".join(INFERENCE_PRECISIONS)
            raise ValueError(f"precision must be one of {choices} (got {requested!r})")
        self.requested = requested
        self.resolved: str | None = None if requested == "auto" else requested
        self.psnr_db: float | None = None

    def describe(self) -> str:
        """One line for logs: what runs, and why."""
        if self.resolved is None:
            return "auto (decided at the first translation)"
        if self.requested != "auto":
            return self.resolved
        if self.psnr_db is None:
            return f"{self.resolved} (auto: no native bf16 here)"
        verdict = ">=" if self.resolved == "bf16" else "<"
        measured = f"bf16 vs fp32 {self.psnr_db:.1f} dB {verdict} {MIN_PSNR_DB:g}"
        return f"{self.resolved} (auto: {measured})"

    def __call__(self, fn: Callable[..., torch.Tensor], *inputs: torch.Tensor) -> torch.Tensor:
        """``fn(*inputs)`` (batch-first tensors, the first an image batch) in this precision."""
        if self.resolved is None:
            self.resolved = self._decide(fn, inputs)
        if self.resolved == "fp32":
            return fn(*inputs)
        return _bf16(fn, inputs)

    def _decide(self, fn: Callable[..., torch.Tensor], inputs: tuple) -> str:
        if not native_bf16(inputs[0].device):
            return "fp32"
        one = tuple(t[:1] for t in inputs)
        self.psnr_db = psnr_db(_bf16(fn, one), fn(*one))
        return "bf16" if self.psnr_db >= MIN_PSNR_DB else "fp32"


def _bf16(fn: Callable[..., torch.Tensor], inputs: tuple) -> torch.Tensor:
    with torch.autocast(inputs[0].device.type, dtype=torch.bfloat16):
        out = fn(*inputs)
    return out.float()
