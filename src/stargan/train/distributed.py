"""Data-parallel training under ``torchrun`` (DistributedDataParallel; gloo on CPU, NCCL on
CUDA), and the single-process case as a world of one.

Batch semantics: ``train.batch_size`` is the **global** batch. Every rank draws the same
global batch from the step-indexed RNG (indices, flips, targets, interpolation weights)
and keeps its own contiguous shard of ``batch_size / world_size`` rows; DDP averages the
gradients, so one iteration is the same update as a single process on the whole batch
(within float rounding) and the learning rates need no scaling. Nothing random is drawn
per rank, so checkpoints do not depend on the world size: a run may resume on another.
Rank 0 alone writes logs, samples and checkpoints.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

from stargan.errors import StarGANError


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1

    def shard(self, global_batch: int) -> slice:
        """This rank's rows of a global batch (contiguous, equal shares)."""
        per_rank = self.local_batch(global_batch)
        return slice(self.rank * per_rank, (self.rank + 1) * per_rank)

    def local_batch(self, global_batch: int) -> int:
        if global_batch % self.size:
            raise StarGANError(
                f"train.batch_size {global_batch} (the global batch) must be divisible by "
                f"the {self.size} processes of torchrun"
            )
        return global_batch // self.size


def world_from_env(env: dict[str, str] | None = None) -> World:
    """The world torchrun describes in the environment (WORLD_SIZE, RANK, LOCAL_RANK);
    a world of one without them."""
    env = os.environ if env is None else env
    size = int(env.get("WORLD_SIZE", "1"))
    if size <= 1:
        return World()
    return World(int(env["RANK"]), size, int(env.get("LOCAL_RANK", "0")))


def init_process_group(world: World, dev: torch.device) -> torch.device:
    """Join torchrun's process group (once; later calls only return the device) with the
    backend for ``dev``; returns this rank's device: its GPU by LOCAL_RANK on CUDA."""
    if dev.type == "cuda":
        dev = torch.device("cuda", world.local_rank)
        torch.cuda.set_device(dev)
    if not dist.is_initialized():
        backend = "nccl" if dev.type == "cuda" else "gloo"
        dist.init_process_group(backend, rank=world.rank, world_size=world.size)
    return dev


def wrap(
    net: nn.Module, world: World, device: torch.device, find_unused: bool = False
) -> nn.Module:
    """``net`` as called in training: DDP across the world, or itself in a world of one.
    (Our networks hold no buffers: nothing is broadcast per forward.) ``find_unused``: the
    net has parameters its forward never uses (StarGAN v2's G with w_hpf > 0 builds the
    official decoder's 1x1 shortcuts and skips them), which DDP must be told of."""
    if not world.distributed:
        return net
    ids = [device.index] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(
        net, device_ids=ids, find_unused_parameters=find_unused
    )


def any_rank(flag: bool, world: World) -> bool:
    """True on every rank if ``flag`` is true on any (a stop request seen by one rank)."""
    if not world.distributed:
        return flag
    t = torch.tensor([int(flag)], device=_collective_device())
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())


def broadcast_object(obj, world: World):
    """Rank 0's ``obj`` on every rank."""
    if not world.distributed:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def max_weight_gap(net: nn.Module, world: World) -> float:
    """Largest difference of any weight between this rank and rank 0 (0 in sync)."""
    if not world.distributed:
        return 0.0
    gap = torch.zeros((), device=_collective_device())
    for p in net.state_dict().values():
        ref = p.detach().clone()
        dist.broadcast(ref, src=0)
        gap = torch.maximum(gap, (p.detach() - ref).abs().max().to(gap.device))
    dist.all_reduce(gap, op=dist.ReduceOp.MAX)
    return float(gap)


def _collective_device() -> torch.device:
    """NCCL reduces GPU tensors only; gloo CPU ones."""
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")
