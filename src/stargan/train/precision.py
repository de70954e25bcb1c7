"""Mixed precision for training: ``train.precision`` fp32 | bf16 | fp16 | auto.

bf16 and fp16 run the networks' forward passes under ``torch.autocast`` (weights,
optimizer state and the losses' reductions stay fp32); fp16 adds a ``GradScaler`` per
optimizer, and the gradient penalty differentiates the scaled critic output and unscales
its gradient, so a penalty that underflows or overflows in fp16 skips that step rather
than training on garbage (PyTorch's AMP recipe for gradient penalties). fp32 is exactly
the plain path: autocast and the scaler are disabled pass-throughs.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import torch

from stargan.config import Config
from stargan.inference_precision import native_bf16

# The gradient penalty's own loss scale never exceeds this: its seed gradient must fit
# fp16 (max 65504) whatever the loss scale has grown to. It is divided out at once, so it need
# not equal the loss's scale; 2**10 keeps gradients of ~1e-5 out of fp16's subnormals.
PENALTY_SCALE_CAP = 2.0**10
INIT_LOSS_SCALE = 2.0**13

# config.PRECISIONS, less "auto" (resolve_precision)
DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def resolve_precision(name: str, device: torch.device) -> str:
    """``auto``: bf16 where the device computes it natively, else fp32; others unchanged."""
    if name != "auto":
        return name
    return "bf16" if native_bf16(device) else "fp32"


class Precision:
    """``name``: fp32, bf16, fp16, or auto (:func:`resolve_precision`)."""

    def __init__(self, name: str, device: torch.device) -> None:
        name = resolve_precision(name, device)
        if name not in DTYPES:
            raise ValueError(f"precision must be one of {', '.join(DTYPES)}, auto (got {name!r})")
        self.name = name
        self.device_type = device.type
        self.dtype = DTYPES[name]

    def autocast(self) -> torch.autocast:
        """The forward passes' context (a no-op for fp32)."""
        return torch.autocast(
            self.device_type, dtype=self.dtype or torch.float32, enabled=self.dtype is not None
        )

    def scaler(self) -> torch.amp.GradScaler:
        """A loss scaler for one optimizer: active for fp16 only. It starts at 2**13, not
        torch's 2**16: StarGAN's critic gradients overflowed fp16 at 2**14-2**16 in the
        first steps of a tiny run (each overflow skips an update and halves the scale)."""
        return torch.amp.GradScaler(
            self.device_type, init_scale=INIT_LOSS_SCALE, enabled=self.name == "fp16"
        )


def backward_and_step(
    loss: torch.Tensor,
    opt: torch.optim.Optimizer | Sequence[torch.optim.Optimizer],
    scaler: torch.amp.GradScaler,
) -> None:
    """``loss.backward()``, then a step of ``opt`` (one optimizer or several: StarGAN v2's
    latent-guided G loss updates G, F and E), through the scaler when it is active."""
    opts = [opt] if isinstance(opt, torch.optim.Optimizer) else list(opt)
    for o in opts:
        o.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    for o in opts:
        scaler.step(o)
    scaler.update()


def penalty_scale(scaler: torch.amp.GradScaler) -> float | None:
    """The gradient penalty's scale: the scaler's factor up to :data:`PENALTY_SCALE_CAP`,
    or None when the scaler is disabled (fp32, bf16)."""
    return min(scaler.get_scale(), PENALTY_SCALE_CAP) if scaler.is_enabled() else None


@contextmanager
def cuda_math(cfg: Config) -> Iterator[None]:
    """A v1 run's process-wide CUDA settings, restored afterwards: TF32 (``train.tf32``,
    fp32 precision) and cuDNN autotuning with the fast path; with ``fast_kernels`` off,
    deterministic cuDNN kernels and no TF32. Nothing changes on CPU or for v2."""
    if not torch.cuda.is_available() or cfg.model.arch != "v1":
        yield
        return
    t, cudnn, matmul = cfg.train, torch.backends.cudnn, torch.backends.cuda.matmul
    saved = (matmul.allow_tf32, cudnn.allow_tf32, cudnn.benchmark, cudnn.deterministic)
    fp32 = resolve_precision(t.precision, torch.device("cuda")) == "fp32"
    tf32 = t.tf32 and fp32 and t.fast_kernels
    matmul.allow_tf32 = cudnn.allow_tf32 = tf32
    cudnn.benchmark, cudnn.deterministic = t.fast_kernels, not t.fast_kernels
    try:
        yield
    finally:
        matmul.allow_tf32, cudnn.allow_tf32, cudnn.benchmark, cudnn.deterministic = saved
