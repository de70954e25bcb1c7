"""Mixed precision for training: ``train.precision`` fp32 | bf16 | fp16.

bf16 and fp16 run the networks' forward passes under ``torch.autocast`` (weights,
optimizer state and the losses' reductions stay fp32); fp16 adds a ``GradScaler`` per
optimizer, and the gradient penalty differentiates the scaled critic output and unscales
its gradient, so a penalty that underflows or overflows in fp16 skips that step rather
than training on garbage (PyTorch's AMP recipe for gradient penalties). fp32 is exactly
the plain path: autocast and the scaler are disabled pass-throughs.
"""

from __future__ import annotations

import torch

DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}  # config.PRECISIONS


class Precision:
    def __init__(self, name: str, device: torch.device) -> None:
        if name not in DTYPES:
            raise ValueError(f"precision must be one of {', '.join(DTYPES)} (got {name!r})")
        self.name = name
        self.device_type = device.type
        self.dtype = DTYPES[name]

    def autocast(self) -> torch.autocast:
        """The forward passes' context (a no-op for fp32)."""
        return torch.autocast(
            self.device_type, dtype=self.dtype or torch.float32, enabled=self.dtype is not None
        )

    def scaler(self) -> torch.amp.GradScaler:
        """A loss scaler for one optimizer: active for fp16 only."""
        return torch.amp.GradScaler(self.device_type, enabled=self.name == "fp16")


def backward_and_step(
    loss: torch.Tensor, opt: torch.optim.Optimizer, scaler: torch.amp.GradScaler
) -> None:
    """``loss.backward(); opt.step()``, through the scaler when it is active."""
    opt.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    scaler.step(opt)
    scaler.update()


def loss_scale(scaler: torch.amp.GradScaler) -> float | None:
    """The scaler's current factor, or None when it is disabled (fp32, bf16)."""
    return scaler.get_scale() if scaler.is_enabled() else None
