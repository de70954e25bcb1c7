"""The StarGAN v1 training loop (paper section 3.1 and 4; official solver's order of ops).

Counting: ``step`` counts iterations; every iteration updates D once, every
``n_critic``-th iteration also updates G once. ``g_updates`` counts the latter.
"""

from __future__ import annotations

import math
import signal
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm import tqdm

from stargan import losses
from stargan.config import Config
from stargan.data.dataset import (
    ImageLabelDataset,
    epoch_batch_indices,
    random_flip,
    to_model_range,
    to_uint8,
)
from stargan.data.joint import LabelLayout
from stargan.images import make_grid, save_png
from stargan.models import build
from stargan.train.checkpoint import TrainState, load_checkpoint, save_checkpoint
from stargan.train.logging import StatsLogger, mean_parts
from stargan.train.schedule import linear_decay_lr

N_SAMPLE = 8


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def build_seeded(cfg: Config, device: torch.device) -> dict[str, torch.nn.Module]:
    """Networks initialised from ``train.seed`` without touching the caller's global RNG."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.train.seed)
        nets = build(cfg.model)
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


@dataclass
class Batch:
    x_real: torch.Tensor  # [N, 3, H, W] in [-1, 1]
    c_org: torch.Tensor  # [N, c] original labels (joint: with the mask vector)
    c_trg: torch.Tensor  # [N, c] target labels, same dataset as c_org
    part: int = 0  # the dataset the batch comes from


class Trainer:
    """Trains G and D on one dataset, or on several with the mask vector (paper 3.2):
    batches come from one dataset at a time, following ``train.dataset_schedule``."""

    def __init__(
        self,
        cfg: Config,
        run_dir: Path,
        train_sets: ImageLabelDataset | list[ImageLabelDataset],
        sample_sets: ImageLabelDataset | list[ImageLabelDataset] | None = None,
    ) -> None:
        self.cfg = cfg
        self.run_dir = run_dir
        self.datas = _as_list(train_sets)
        names = tuple(d.label for d in cfg.datasets)
        if len(self.datas) != len(names):
            raise ValueError(f"{len(self.datas)} training sets for {len(names)} datasets")
        self.layout = LabelLayout(names, tuple(d.spec for d in self.datas))
        self.schedule = cfg.train.dataset_schedule or (1,) * len(self.datas)
        self.device = pick_device(cfg.train.device)
        nets = build_seeded(cfg, self.device)
        self.G, self.D = nets["G"], nets["D"]
        o = cfg.optim
        self.g_opt = torch.optim.Adam(self.G.parameters(), o.g_lr, (o.beta1, o.beta2))
        self.d_opt = torch.optim.Adam(self.D.parameters(), o.d_lr, (o.beta1, o.beta2))
        self.state = TrainState(step=0, g_updates=0)
        self.fixed = self._fixed_inputs(
            _as_list(sample_sets) if sample_sets is not None else self.datas
        )

    def _fixed_inputs(self, sets: list[ImageLabelDataset]) -> tuple[torch.Tensor, torch.Tensor]:
        """The sample grid's rows: up to N_SAMPLE images shared among the datasets."""
        per_set = max(1, N_SAMPLE // len(sets))
        xs, cs = [], []
        for i, data in enumerate(sets):
            x, c = data.batch(torch.arange(min(per_set, len(data))))
            xs.append(to_model_range(x))
            cs.append(self.layout.encode(i, c))
        return torch.cat(xs).to(self.device), torch.cat(cs).to(self.device)

    @property
    def spec(self):
        return self.layout.specs[0]

    @property
    def nets(self) -> dict[str, torch.nn.Module]:
        return {"G": self.G, "D": self.D}

    @property
    def optims(self) -> dict[str, torch.optim.Optimizer]:
        return {"G": self.g_opt, "D": self.d_opt}

    def resume(self, ckpt: Path) -> None:
        self.state = load_checkpoint(ckpt, self.nets, self.optims, self.device)

    # ----------------------------------------------------------------- one step
    def make_batch(self, step: int) -> tuple[Batch, torch.Generator]:
        gen = step_generator(self.cfg.train.seed, step)
        part, own_step, _ = dataset_at(self.schedule, step)
        data, data_cfg = self.datas[part], self.cfg.datasets[part]
        idx = epoch_batch_indices(
            len(data), self.cfg.train.batch_size, own_step, data_cfg.seed + self.cfg.train.seed
        )
        x_uint8, c_org = data.batch(idx)
        if data_cfg.flip:
            x_uint8 = random_flip(x_uint8, gen)
        x_real = to_model_range(x_uint8.to(self.device, non_blocking=True))
        c_org = c_org.to(self.device)
        c_trg = self.layout.specs[part].random_targets(c_org, gen)
        return Batch(
            x_real, self.layout.encode(part, c_org), self.layout.encode(part, c_trg), part
        ), gen

    def d_step(
        self, b: Batch, x_fake: torch.Tensor, gen: torch.Generator
    ) -> dict[str, torch.Tensor]:
        """L_D on real images, detached fakes and their interpolates (eqs. 6, 8)."""
        cfg = self.cfg
        d_src_real, d_cls_real = self.D(b.x_real)
        d_src_fake, _ = self.D(x_fake)
        alpha = torch.rand(b.x_real.size(0), 1, 1, 1, generator=gen).to(self.device)
        x_hat = (alpha * b.x_real + (1 - alpha) * x_fake).requires_grad_(True)
        d_src_hat, _ = self.D(x_hat)
        gp = losses.gradient_penalty(d_src_hat, x_hat)
        own = self.layout.part(b.part)  # the classification loss sees the known labels only
        loss, parts = losses.d_loss(
            d_src_real,
            d_cls_real[:, own],
            b.c_org[:, own],
            d_src_fake,
            gp,
            self.layout.specs[b.part].kind,
            cfg.loss.lambda_cls,
            cfg.loss.lambda_gp,
        )
        self.d_opt.zero_grad(set_to_none=True)
        loss.backward()
        self.d_opt.step()
        return self._per_dataset(parts, b.part, "D/loss_cls")

    def g_step(self, b: Batch, x_fake: torch.Tensor) -> dict[str, torch.Tensor]:
        """L_G (eq. 7) for x_fake = G(x_real, c_trg), still attached to G's graph."""
        cfg = self.cfg
        self.D.requires_grad_(False)  # G's loss needs gradients through D, not of D's weights
        try:
            d_src_fake, d_cls_fake = self.D(x_fake)
        finally:
            self.D.requires_grad_(True)
        x_rec = self.G(x_fake, b.c_org)
        own = self.layout.part(b.part)
        loss, parts = losses.g_loss(
            d_src_fake,
            d_cls_fake[:, own],
            b.c_trg[:, own],
            b.x_real,
            x_rec,
            self.layout.specs[b.part].kind,
            cfg.loss.lambda_cls,
            cfg.loss.lambda_rec,
        )
        self.g_opt.zero_grad(set_to_none=True)
        loss.backward()
        self.g_opt.step()
        return self._per_dataset(parts, b.part, "G/loss_cls")

    def _per_dataset(self, parts: dict[str, torch.Tensor], part: int, key: str):
        """Joint runs also log each dataset's classification loss on its own."""
        if self.layout.joint:
            parts[f"{key}/{self.layout.datasets[part]}"] = parts[key]
        return parts

    def set_lr(self, step: int) -> None:
        t, o = self.cfg.train, self.cfg.optim
        for opt, base in ((self.g_opt, o.g_lr), (self.d_opt, o.d_lr)):
            for group in opt.param_groups:
                group["lr"] = linear_decay_lr(base, step, t.num_iters, t.num_iters_decay)

    def train_step(self) -> dict[str, torch.Tensor]:
        """One iteration: a D update, and a G update every n_critic-th iteration.

        G is not changed by the D update, so on a G iteration the fake of the D step
        is the same function of the same G and inputs as the G step's: it is computed
        once, with G's graph kept for the G step (the official code computes it twice).
        """
        step = self.state.step
        cycle = dataset_at(self.schedule, step)[2]
        update_g = (cycle + 1) % self.cfg.optim.n_critic == 0
        self.set_lr(step)
        batch, gen = self.make_batch(step)
        with torch.set_grad_enabled(update_g):
            x_fake = self.G(batch.x_real, batch.c_trg)
        parts = self.d_step(batch, x_fake.detach(), gen)
        if update_g:
            parts |= self.g_step(batch, x_fake)
            self.state.g_updates += 1
        self.state.step += 1
        return parts

    # ----------------------------------------------------------------- outputs
    @torch.no_grad()
    def sample_grid(self) -> torch.Tensor:
        """Rows: fixed inputs; columns: input, then one per target domain of every dataset
        (paper figures). Labels a row's dataset lacks come from D_cls's estimate."""
        x, c = self.fixed
        cols = [x] + [
            self.G(x, c_trg) for _, c_trg in self.layout.single_changes(self._labels(x, c))
        ]
        stacked = torch.stack(cols, dim=1).flatten(0, 1)  # [N * (1 + domains), 3, H, W]
        return to_uint8(stacked)

    def _labels(self, x: torch.Tensor, c: torch.Tensor) -> list[torch.Tensor]:
        logits = _once(lambda: self.D(x)[1])
        return [self.layout.known_or_estimated(c, logits, i) for i in range(len(self.layout.specs))]

    def save_samples(self) -> Path:
        path = self.run_dir / "samples" / f"step-{self.state.step:07d}.png"
        save_png(make_grid(self.sample_grid(), nrow=1 + self.layout.cls_dim), path)
        return path

    def checkpoint(self) -> Path:
        t = self.cfg.train
        return save_checkpoint(
            self.run_dir / "checkpoints",
            self.state,
            self.cfg,
            self.nets,
            self.optims,
            t.keep_ckpts,
            self.layout.to_dict(),
        )

    # ----------------------------------------------------------------- the loop
    def fit(self, progress: bool = True, until: int | None = None) -> TrainState:
        """Train to ``until`` (default: num_iters); checkpoint on SIGINT/SIGTERM and at end."""
        t = self.cfg.train
        end = min(until or t.num_iters, t.num_iters)
        logger = StatsLogger(self.run_dir, t.tensorboard)
        history: list[dict[str, torch.Tensor]] = []
        bar = tqdm(
            total=end,
            initial=self.state.step,
            disable=not progress,
            unit="it",
            dynamic_ncols=True,
            desc=self.run_dir.name,
        )
        last_tick = time.time()
        try:
            with _stop_on_signal() as stop:
                while self.state.step < end and not stop.requested:
                    history.append(self.train_step())
                    bar.update(1)
                    step = self.state.step
                    if step % t.log_every == 0 or step == end:
                        values = mean_parts(history)
                        now = time.time()
                        values["sec_per_iter"] = (now - last_tick) / len(history)
                        values["lr/G"] = self.g_opt.param_groups[0]["lr"]
                        values["lr/D"] = self.d_opt.param_groups[0]["lr"]
                        last_tick, history = now, []
                        logger.log(step, self.state.g_updates, values)
                        bar.set_postfix(_short(values), refresh=False)
                    if step % t.sample_every == 0 or step == end:
                        self.save_samples()
                    if step % t.ckpt_every == 0 or step == end:
                        self.checkpoint()
                if stop.requested and self.state.step % t.ckpt_every:
                    self.checkpoint()  # nothing lost on Ctrl-C
        finally:
            bar.close()
            logger.close()
        return self.state


def _once(fn):
    """``fn`` evaluated on first call only (a D forward shared by several datasets)."""
    cache: list = []

    def call():
        if not cache:
            cache.append(fn())
        return cache[0]

    return call


def _as_list(sets: ImageLabelDataset | list[ImageLabelDataset]) -> list[ImageLabelDataset]:
    return [sets] if isinstance(sets, ImageLabelDataset) else list(sets)


def _short(values: dict[str, float]) -> dict[str, str]:
    keys = {"D/loss": "D", "G/loss": "G", "G/loss_rec": "rec", "D/loss_cls": "cls"}
    return {
        v: f"{values[k]:.3g}" for k, v in keys.items() if k in values and math.isfinite(values[k])
    }


class _StopFlag:
    requested = False


@contextmanager
def _stop_on_signal():
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
