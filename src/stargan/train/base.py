"""What every trainer shares: data and label layout, device, seeded networks, the
step-indexed randomness, checkpoints, and the loop that logs, samples, checkpoints and
stops cleanly on a signal. A model family adds its networks, optimizers, one training
iteration (``train_step``) and its sample grids (``sample_grids``)."""

from __future__ import annotations

import copy
import math
import signal
import time
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

import torch
from tqdm import tqdm

from stargan.config import Config
from stargan.data.dataset import ImageLabelDataset
from stargan.data.joint import LabelLayout
from stargan.images import make_grid, save_png
from stargan.models import build
from stargan.train.checkpoint import TrainState, load_checkpoint, save_checkpoint
from stargan.train.distributed import World, any_rank, init_process_group
from stargan.train.logging import StatsLogger, mean_parts
from stargan.train.schedule import linear_decay_lr

N_SAMPLE = 8


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def build_seeded(
    cfg: Config, device: torch.device, init: Callable[[dict], None] | None = None
) -> dict[str, torch.nn.Module]:
    """Networks initialised from ``train.seed`` without touching the caller's global RNG;
    ``init`` may change the built dict in place (copies, weight init) inside that seed."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.train.seed)
        nets = build(cfg.model)
        if init is not None:
            init(nets)
    return {k: v.to(device) for k, v in nets.items()}


def step_generator(seed: int, step: int) -> torch.Generator:
    """All randomness of one iteration (flip, targets, interpolation) from (seed, step),
    so a resumed run is bit-identical to an uninterrupted one."""
    return torch.Generator().manual_seed(seed * 7_919 + step * 104_729 + 1)


def dataset_at(schedule: tuple[int, ...], step: int) -> tuple[int, int, int]:
    """(dataset index, that dataset's own iteration count, cycle) at ``step``, for a
    schedule of consecutive iterations per dataset; a pure function of the step."""
    cycle, pos = divmod(step, sum(schedule))
    for i, count in enumerate(schedule):
        if pos < count:
            return i, cycle * count + pos, cycle
        pos -= count
    raise AssertionError("unreachable")


class TrainerBase:
    """Subclasses set ``self.nets`` (checkpointed by name), ``self.optims`` and
    ``self.base_lrs`` (name -> learning rate before decay) and implement ``train_step``
    and ``sample_grids``."""

    nets: dict[str, torch.nn.Module]
    optims: dict[str, torch.optim.Optimizer]
    base_lrs: dict[str, float]
    scalers: dict[str, torch.amp.GradScaler]  # fp16 loss scalers, checkpointed

    def __init__(
        self,
        cfg: Config,
        run_dir: Path,
        train_sets: ImageLabelDataset | list[ImageLabelDataset],
        world: World = World(),
    ) -> None:
        self.cfg = cfg
        self.world = world
        self.scalers = {}
        self.run_dir = run_dir
        self.datas = as_list(train_sets)
        names = tuple(d.label for d in cfg.datasets)
        if len(self.datas) != len(names):
            raise ValueError(f"{len(self.datas)} training sets for {len(names)} datasets")
        self.layout = LabelLayout(names, tuple(d.spec for d in self.datas))
        self.schedule = cfg.train.dataset_schedule or (1,) * len(self.datas)
        self.device = pick_device(cfg.train.device)
        if world.distributed:
            self.device = init_process_group(world, self.device)
        self.state = TrainState(step=0, g_updates=0)

    @property
    def spec(self):
        return self.layout.specs[0]

    def train_step(self) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def sample_grids(self) -> dict[str, tuple[torch.Tensor, int]]:
        """Grid name ("" for the main one) -> (uint8 images [N, 3, H, W], images per row)."""
        raise NotImplementedError

    def resume(self, ckpt: Path) -> None:
        self.state = load_checkpoint(ckpt, self.nets, self.optims, self.device, self.scalers)

    def set_lr(self, step: int) -> None:
        t = self.cfg.train
        for name, opt in self.optims.items():
            lr = linear_decay_lr(self.base_lrs[name], step, t.num_iters, t.num_iters_decay)
            for group in opt.param_groups:
                group["lr"] = lr

    def save_samples(self) -> list[Path]:
        paths = []
        for name, (images, nrow) in self.sample_grids().items():
            suffix = f"-{name}" if name else ""
            path = self.run_dir / "samples" / f"step-{self.state.step:07d}{suffix}.png"
            save_png(make_grid(images, nrow=nrow), path)
            paths.append(path)
        return paths

    def checkpoint(self, log_window: list[dict[str, torch.Tensor]] | None = None) -> Path:
        """Save a checkpoint; ``log_window``: the losses of the steps not yet logged."""
        t = self.cfg.train
        self.state.log_window = [{k: float(v) for k, v in h.items()} for h in log_window or []]
        return save_checkpoint(
            self.run_dir / "checkpoints",
            self.state,
            self.cfg,
            self.nets,
            self.optims,
            t.keep_ckpts,
            self.layout.to_dict(),
            {k: s for k, s in self.scalers.items() if s.is_enabled()},
        )

    def fit(self, progress: bool = True, until: int | None = None) -> TrainState:
        """Train to ``until`` (default: num_iters); checkpoint on SIGINT/SIGTERM and at end.
        Under torchrun, rank 0 logs, samples and checkpoints; a signal to any rank stops
        all of them after the same step."""
        t = self.cfg.train
        end = min(until or t.num_iters, t.num_iters)
        main = self.world.is_main
        logger = StatsLogger(self.run_dir, t.tensorboard) if main else None
        # a resumed run continues the log window its checkpoint carried (as if never stopped)
        history = [{k: torch.tensor(v) for k, v in h.items()} for h in self.state.log_window]
        fresh = 0  # steps of the window timed by this process (sec_per_iter)
        bar = tqdm(
            total=end,
            initial=self.state.step,
            disable=not (progress and main),
            unit="it",
            dynamic_ncols=True,
            desc=self.run_dir.name,
        )
        last_tick = time.time()
        try:
            with stop_on_signal() as stop:
                while self.state.step < end and not any_rank(stop.requested, self.world):
                    history.append(self.train_step())
                    fresh += 1
                    bar.update(1)
                    step = self.state.step
                    if not main:
                        history = []
                        continue
                    if step % t.log_every == 0 or step == end:
                        values = mean_parts(history)
                        now = time.time()
                        values["sec_per_iter"] = (now - last_tick) / fresh
                        for name, opt in self.optims.items():
                            values[f"lr/{name}"] = opt.param_groups[0]["lr"]
                        last_tick, history, fresh = now, [], 0
                        logger.log(step, self.state.g_updates, values)
                        bar.set_postfix(_short(values), refresh=False)
                    if step % t.sample_every == 0 or step == end:
                        self.save_samples()
                    if step % t.ckpt_every == 0 or step == end:
                        self.checkpoint(history)
                if main and self.state.step < end and self.state.step % t.ckpt_every:
                    self.checkpoint(history)  # nothing lost on Ctrl-C
        finally:
            bar.close()
            if logger is not None:
                logger.close()
        return self.state


def ema_copy(net: torch.nn.Module) -> torch.nn.Module:
    """A frozen copy of ``net`` to hold its running average (:func:`update_ema`)."""
    return copy.deepcopy(net).requires_grad_(False)


@torch.no_grad()
def update_ema(ema: torch.nn.Module, net: torch.nn.Module, beta: float) -> None:
    """ema <- beta * ema + (1 - beta) * net, parameter by parameter (buffers untouched)."""
    torch._foreach_lerp_(list(ema.parameters()), list(net.parameters()), 1.0 - beta)


@contextmanager
def frozen(*nets: torch.nn.Module):
    """Gradients flow through ``nets`` to their inputs, not into their weights."""
    for net in nets:
        net.requires_grad_(False)
    try:
        yield
    finally:
        for net in nets:
            net.requires_grad_(True)


def as_list(sets: ImageLabelDataset | list[ImageLabelDataset]) -> list[ImageLabelDataset]:
    return [sets] if isinstance(sets, ImageLabelDataset) else list(sets)


SHORT_KEYS = {
    "D/loss": "D",
    "G/loss": "G",
    "G/loss_rec": "rec",
    "D/loss_cls": "cls",
    "D/latent/loss": "D",
    "G/latent/loss": "G",
    "G/latent/sty": "sty",
    "G/latent/cyc": "cyc",
}


def _short(values: dict[str, float]) -> dict[str, str]:
    return {
        v: f"{values[k]:.3g}"
        for k, v in SHORT_KEYS.items()
        if k in values and math.isfinite(values[k])
    }


class _StopFlag:
    requested = False


@contextmanager
def stop_on_signal():
    """First SIGINT/SIGTERM: finish the step, checkpoint, return. Second: default action."""
    flag = _StopFlag()
    previous = {}

    def handler(signum, frame):
        if flag.requested:
            signal.signal(signum, previous[signum])
            signal.raise_signal(signum)
        flag.requested = True

    try:
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, handler)
    except ValueError:  # not the main thread: no signal handling
        pass
    try:
        yield flag
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
