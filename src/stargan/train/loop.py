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


@dataclass
class Batch:
    x_real: torch.Tensor  # [N, 3, H, W] in [-1, 1]
    c_org: torch.Tensor  # [N, c] original labels
    c_trg: torch.Tensor  # [N, c] target labels


class Trainer:
    def __init__(
        self,
        cfg: Config,
        run_dir: Path,
        train_set: ImageLabelDataset,
        sample_set: ImageLabelDataset | None = None,
    ) -> None:
        self.cfg = cfg
        self.run_dir = run_dir
        self.data = train_set
        self.spec = train_set.spec
        self.device = pick_device(cfg.train.device)
        nets = build_seeded(cfg, self.device)
        self.G, self.D = nets["G"], nets["D"]
        o = cfg.optim
        self.g_opt = torch.optim.Adam(self.G.parameters(), o.g_lr, (o.beta1, o.beta2))
        self.d_opt = torch.optim.Adam(self.D.parameters(), o.d_lr, (o.beta1, o.beta2))
        self.state = TrainState(step=0, g_updates=0)
        fixed = sample_set if sample_set is not None else train_set
        x, c = fixed.batch(torch.arange(min(N_SAMPLE, len(fixed))))
        self.fixed = (to_model_range(x).to(self.device), c.to(self.device))

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
        idx = epoch_batch_indices(
            len(self.data),
            self.cfg.train.batch_size,
            step,
            self.cfg.data.seed + self.cfg.train.seed,
        )
        x_uint8, c_org = self.data.batch(idx)
        if self.cfg.data.flip:
            x_uint8 = random_flip(x_uint8, gen)
        x_real = to_model_range(x_uint8.to(self.device, non_blocking=True))
        c_org = c_org.to(self.device)
        c_trg = self.spec.random_targets(c_org, gen)
        return Batch(x_real, c_org, c_trg), gen

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
        loss, parts = losses.d_loss(
            d_src_real,
            d_cls_real,
            b.c_org,
            d_src_fake,
            gp,
            self.spec.kind,
            cfg.loss.lambda_cls,
            cfg.loss.lambda_gp,
        )
        self.d_opt.zero_grad(set_to_none=True)
        loss.backward()
        self.d_opt.step()
        return parts

    def g_step(self, b: Batch, x_fake: torch.Tensor) -> dict[str, torch.Tensor]:
        """L_G (eq. 7) for x_fake = G(x_real, c_trg), still attached to G's graph."""
        cfg = self.cfg
        self.D.requires_grad_(False)  # G's loss needs gradients through D, not of D's weights
        try:
            d_src_fake, d_cls_fake = self.D(x_fake)
        finally:
            self.D.requires_grad_(True)
        x_rec = self.G(x_fake, b.c_org)
        loss, parts = losses.g_loss(
            d_src_fake,
            d_cls_fake,
            b.c_trg,
            b.x_real,
            x_rec,
            self.spec.kind,
            cfg.loss.lambda_cls,
            cfg.loss.lambda_rec,
        )
        self.g_opt.zero_grad(set_to_none=True)
        loss.backward()
        self.g_opt.step()
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
        update_g = (step + 1) % self.cfg.optim.n_critic == 0
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
        """Rows: fixed inputs; columns: input, then one per target domain (paper figures)."""
        x, c = self.fixed
        cols = [x] + [self.G(x, c_trg) for _, c_trg in self.spec.single_changes(c)]
        stacked = torch.stack(cols, dim=1).flatten(0, 1)  # [N * (1 + c), 3, H, W]
        return to_uint8(stacked)

    def save_samples(self) -> Path:
        path = self.run_dir / "samples" / f"step-{self.state.step:07d}.png"
        save_png(make_grid(self.sample_grid(), nrow=1 + self.spec.dim), path)
        return path

    def checkpoint(self) -> Path:
        t = self.cfg.train
        return save_checkpoint(
            self.run_dir / "checkpoints", self.state, self.cfg, self.nets, self.optims, t.keep_ckpts
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
