"""In-memory image/label datasets and the batch transforms of training."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from stargan.data.labels import LabelSpec
from stargan.errors import StarGANError


@dataclass(frozen=True)
class ImageLabelDataset:
    """Images as uint8 [N, H, W, 3] (numpy, possibly memory-mapped) with labels [N, c]."""

    images: np.ndarray
    labels: np.ndarray
    spec: LabelSpec
    name: str = ""
    skipped: int = 0  # source images left out as unreadable (data.on_bad_image=skip)

    def __post_init__(self) -> None:
        if self.images.ndim != 4 or self.images.shape[3] != 3 or self.images.dtype != np.uint8:
            raise StarGANError(f"images must be uint8 [N, H, W, 3], got {self.images.shape}")
        if self.labels.shape != (len(self.images), self.spec.dim):
            raise StarGANError(
                f"labels must be [{len(self.images)}, {self.spec.dim}], got {self.labels.shape}"
            )

    def __len__(self) -> int:
        return len(self.images)

    @property
    def image_size(self) -> int:
        return int(self.images.shape[1])

    def batch(self, indices: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """uint8 images [B, 3, H, W] and float labels [B, c] for the given indices."""
        idx = indices.numpy()
        x = torch.from_numpy(np.ascontiguousarray(self.images[idx])).permute(0, 3, 1, 2)
        c = torch.from_numpy(np.asarray(self.labels[idx], dtype=np.float32))
        return x, c

    def summary(self) -> dict[str, int]:
        """Images per domain (count of 1s per label column), plus the total, plus
        ``skipped`` (unreadable source images left out) when there were any."""
        counts = {n: int(v) for n, v in zip(self.spec.names, self.labels.sum(0), strict=True)}
        skipped = {"skipped": self.skipped} if self.skipped else {}
        return {"images": len(self), **counts, **skipped}


def to_model_range(x_uint8: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """uint8 [0, 255] -> float in [-1, 1] (the generator's tanh range)."""
    return x_uint8.to(dtype).div_(127.5).sub_(1.0)


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    """float in [-1, 1] -> uint8 [0, 255], rounding to nearest."""
    return ((x.detach().float().clamp(-1, 1) + 1.0) * 127.5).round_().to(torch.uint8)


def random_flip(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Flip each image horizontally with probability 1/2 (paper: random horizontal flip)."""
    flip = torch.rand(x.size(0), generator=generator) < 0.5
    if flip.any():
        x = x.clone()
        x[flip.to(x.device)] = x[flip.to(x.device)].flip(-1)
    return x


def epoch_batch_indices(n: int, batch_size: int, step: int, seed: int) -> torch.Tensor:
    """Indices of the batch at ``step``: a pure function of (n, batch_size, step, seed).

    Each epoch is a fresh seeded permutation, the last incomplete batch dropped; being a
    function of the step, a resumed run draws exactly the batches it would have drawn.
    """
    if n < batch_size:
        raise StarGANError(f"dataset has {n} images, fewer than one batch of {batch_size}")
    per_epoch = n // batch_size
    epoch, k = divmod(step, per_epoch)
    gen = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    perm = torch.randperm(n, generator=gen)
    return perm[k * batch_size : (k + 1) * batch_size]
