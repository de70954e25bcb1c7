"""A history of generated images for the discriminator (CycleGAN section 4, after
Shrivastava et al. 2017): D is updated on a mix of the newest fakes and earlier ones, so
that it does not forget what G used to produce and the two oscillate less.

The pool is a module whose state is two buffers, so a training checkpoint saves it as
safetensors with the networks and a resumed run draws from the same history.
"""

from __future__ import annotations

import torch
from torch import nn


class ImagePool(nn.Module):
    """Up to ``capacity`` past fakes of shape ``image_shape`` (paper: 50).

    ``query(fakes, gen)``: while the pool is filling, each fake is stored and returned;
    once full, each fake is, with probability 1/2, swapped for a random stored one (which
    is returned and replaced by the fake), else returned as is. Capacity 0: a no-op.
    """

    def __init__(self, capacity: int, image_shape: tuple[int, int, int]) -> None:
        super().__init__()
        self.capacity = capacity
        self.register_buffer("images", torch.zeros(capacity, *image_shape))
        self.register_buffer("count", torch.zeros((), dtype=torch.long))

    @torch.no_grad()
    def query(self, fakes: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        # fakes: [N, C, H, W] (detached) -> [N, C, H, W]; randomness from ``gen`` alone
        if self.capacity == 0:
            return fakes
        swap = (torch.rand(len(fakes), generator=gen) < 0.5).tolist()
        slot = torch.randint(self.capacity, (len(fakes),), generator=gen).tolist()
        out = fakes.clone()
        for n, fake in enumerate(fakes):
            filled = int(self.count)
            if filled < self.capacity:
                self.images[filled] = fake
                self.count += 1
            elif swap[n]:
                out[n] = self.images[slot[n]]
                self.images[slot[n]] = fake
        return out
