"""StarGAN v2's batch sampling as pure functions of a generator: class-balanced source
images, reference pairs from one domain, and the random resized crop augmentation.

The official code samples with a ``WeightedRandomSampler`` (weights 1 / domain size,
with replacement) for sources and references, and pairs each reference with another
image of its domain; the crop is ``RandomResizedCrop(scale=(0.8, 1), ratio=(0.9, 1.1))``
applied with probability 0.5 before resizing. Here the crop is taken from the cached,
already resized image and resized back (bilinear, antialiased), so it works on the
in-memory datasets of every loader; it sees slightly fewer source pixels than a crop of
the original file would.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from stargan.errors import StarGANError

CROP_SCALE = (0.8, 1.0)
CROP_RATIO = (0.9, 1.1)


class DomainIndex:
    """The images of each domain of a categorical dataset, for balanced sampling."""

    def __init__(self, domains: torch.Tensor, names: tuple[str, ...]) -> None:
        # domains: [N] domain index of each image
        self.domains = domains.long()
        counts = torch.bincount(self.domains, minlength=len(names))
        empty = [n for n, c in zip(names, counts.tolist(), strict=True) if c == 0]
        if empty:
            raise StarGANError(f"StarGAN v2 needs images of every domain; none of: {empty}")
        self.members = [torch.nonzero(self.domains == d).flatten() for d in range(len(names))]
        self.weights = (1.0 / counts.double())[self.domains]

    def balanced(self, n: int, gen: torch.Generator) -> torch.Tensor:
        """n image indices, each domain equally likely (with replacement, as the official
        WeightedRandomSampler)."""
        return torch.multinomial(self.weights, n, replacement=True, generator=gen)

    def partners(self, indices: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        """For each index, a uniformly drawn image of the same domain (the second
        reference of the diversity loss and of reference-guided training)."""
        out = torch.empty_like(indices)
        for i, idx in enumerate(indices.tolist()):
            pool = self.members[int(self.domains[idx])]
            out[i] = pool[torch.randint(len(pool), (1,), generator=gen)]
        return out


def _crop_box(size: int, gen: torch.Generator) -> tuple[int, int, int, int]:
    """(top, left, height, width) of a random resized crop of a size x size image, drawn
    like torchvision's RandomResizedCrop (10 tries, then the whole image)."""
    area = size * size
    log_ratio = (math.log(CROP_RATIO[0]), math.log(CROP_RATIO[1]))
    for _ in range(10):
        u = torch.rand(2, generator=gen).tolist()
        target = area * (CROP_SCALE[0] + u[0] * (CROP_SCALE[1] - CROP_SCALE[0]))
        ratio = math.exp(log_ratio[0] + u[1] * (log_ratio[1] - log_ratio[0]))
        w = round(math.sqrt(target * ratio))
        h = round(math.sqrt(target / ratio))
        if 0 < w <= size and 0 < h <= size:
            top = int(torch.randint(size - h + 1, (1,), generator=gen))
            left = int(torch.randint(size - w + 1, (1,), generator=gen))
            return top, left, h, w
    return 0, 0, size, size


def random_resized_crop(x: torch.Tensor, prob: float, gen: torch.Generator) -> torch.Tensor:
    """Each image of x [N, 3, S, S] (float) cropped and resized back with probability prob."""
    if prob <= 0:
        return x
    size = x.size(-1)
    chosen = (torch.rand(x.size(0), generator=gen) < prob).tolist()
    out = x.clone()
    for i, crop in enumerate(chosen):
        if crop:
            top, left, h, w = _crop_box(size, gen)
            patch = x[i : i + 1, :, top : top + h, left : left + w]
            out[i] = F.interpolate(
                patch, size=(size, size), mode="bilinear", align_corners=False, antialias=True
            )[0]
    return out
