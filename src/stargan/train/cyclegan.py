"""One CycleGAN of the pairwise baseline: G: X -> Y, F: Y -> X, D_X, D_Y trained on the
images of two domains of a categorical dataset (Zhu et al. 2017; paper names).

Counting: ``state.step`` counts this pair's iterations; each updates G and F once (one
Adam over both), then D_X and D_Y once (one Adam over both), as the paper's code does.
All randomness of an iteration (batches, flips, the image pools' draws) is a function of
(seed, pair, step), so a resumed pair continues exactly as if never stopped.
"""

from __future__ import annotations

import itertools
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import torch

from stargan.cyclegan_config import CycleGANConfig
from stargan.data.dataset import (
    ImageLabelDataset,
    epoch_batch_indices,
    random_flip,
    to_model_range,
    to_uint8,
)
from stargan.images import make_grid, save_png
from stargan.losses import cyclegan as losses_cyclegan
from stargan.models.cyclegan import build_pair
from stargan.train.base import frozen, step_generator
from stargan.train.checkpoint import TrainState, load_checkpoint, save_checkpoint
from stargan.train.image_pool import ImagePool
from stargan.train.logging import mean_parts
from stargan.train.schedule import linear_decay_lr

N_SAMPLE = 4  # sample grid rows per domain


@dataclass(frozen=True)
class Pair:
    """Domains ``x`` < ``y`` (indices into ``names``) and this pair's place in the run."""

    index: int
    x: int
    y: int
    names: tuple[str, str]
    iters: int

    @property
    def label(self) -> str:
        return f"{self.names[0]}-{self.names[1]}"

    @property
    def folder(self) -> str:
        safe = [re.sub(r"[^A-Za-z0-9_.-]+", "_", n) for n in self.names]
        return f"{self.x:02d}-{self.y:02d}-{safe[0]}-{safe[1]}"


class PairTrainer:
    """``nets``: G, F, D_X, D_Y and the image pools (checkpointed by name); ``optims``:
    "G" (G and F) and "D" (D_X and D_Y)."""

    def __init__(
        self,
        cfg: CycleGANConfig,
        pair: Pair,
        train: ImageLabelDataset,
        test: ImageLabelDataset,
        pair_dir: Path,
        device: torch.device,
    ) -> None:
        self.cfg, self.pair, self.data, self.dir, self.device = cfg, pair, train, pair_dir, device
        self.seed = cfg.train.seed * 10_007 + pair.index  # this pair's init and step draws
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            nets = build_pair(cfg.model)
        self.G, self.F, self.D_X, self.D_Y = (nets[k].to(device) for k in ("G", "F", "D_X", "D_Y"))
        shape = (3, cfg.model.image_size, cfg.model.image_size)
        self.pool_X = ImagePool(cfg.optim.pool_size, shape).to(device)
        self.pool_Y = ImagePool(cfg.optim.pool_size, shape).to(device)
        self.nets = nets | {"pool_X": self.pool_X, "pool_Y": self.pool_Y}
        o = cfg.optim
        g_params = itertools.chain(self.G.parameters(), self.F.parameters())
        d_params = itertools.chain(self.D_X.parameters(), self.D_Y.parameters())
        self.optims = {
            "G": torch.optim.Adam(g_params, o.lr, (o.beta1, o.beta2)),
            "D": torch.optim.Adam(d_params, o.lr, (o.beta1, o.beta2)),
        }
        self.rows = (domain_rows(train, pair.x), domain_rows(train, pair.y))
        self.fixed = (_sample_inputs(test, train, pair.x), _sample_inputs(test, train, pair.y))
        self.state = TrainState(step=0, g_updates=0)

    # ----------------------------------------------------------------- one step
    def set_lr(self, step: int) -> None:
        """The paper's schedule per pair: constant for the first half, then linear to 0."""
        lr = linear_decay_lr(self.cfg.optim.lr, step, self.pair.iters, self.pair.iters // 2)
        for opt in self.optims.values():
            for group in opt.param_groups:
                group["lr"] = lr

    def make_batch(self, step: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """Unpaired batches x of domain X and y of domain Y, [B, 3, S, S] in [-1, 1]."""
        x_real = self._domain_batch(0, step, gen)
        y_real = self._domain_batch(1, step, gen)
        return x_real, y_real

    def _domain_batch(self, side: int, step: int, gen: torch.Generator) -> torch.Tensor:
        rows, domain = self.rows[side], (self.pair.x, self.pair.y)[side]
        t, data_cfg = self.cfg.train, self.cfg.data
        seed = data_cfg.seed + t.seed * 7_919 + 104_729 * (domain + 1)  # an order per domain
        idx = epoch_batch_indices(len(rows), t.batch_size, step, seed)
        x_u8, _ = self.data.batch(torch.from_numpy(rows[idx.numpy()]))
        if data_cfg.flip:
            x_u8 = random_flip(x_u8, gen)
        return to_model_range(x_u8.to(self.device))

    def train_step(self) -> dict[str, torch.Tensor]:
        """One iteration: G and F on L(G, F), then D_X and D_Y on real images and the
        pools' mix of past and new fakes."""
        step = self.state.step
        self.set_lr(step)
        gen = step_generator(self.seed, step)
        x_real, y_real = self.make_batch(step, gen)
        parts, x_fake, y_fake = self._g_step(x_real, y_real)
        parts |= self._d_step(x_real, y_real, x_fake.detach(), y_fake.detach(), gen)
        self.state.step += 1
        self.state.g_updates += 1
        return parts

    def _g_step(
        self, x_real: torch.Tensor, y_real: torch.Tensor
    ) -> tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor]:
        """L(G, F) and one Adam step of G and F; returns the parts and F(y), G(x)."""
        y_fake, x_fake = self.G(x_real), self.F(y_real)  # G(x), F(y)
        cycles = (x_real, self.F(y_fake), y_real, self.G(x_fake))
        identities = None
        if self.cfg.loss.identity_ratio > 0:
            identities = (x_real, self.F(x_real), y_real, self.G(y_real))
        with frozen(self.D_X, self.D_Y):  # gradients reach G and F, not the Ds' weights
            loss, parts = losses_cyclegan.g_loss(
                d_y_fake=self.D_Y(y_fake),
                d_x_fake=self.D_X(x_fake),
                cycles=cycles,
                identities=identities,
                lambda_cyc=self.cfg.loss.lambda_cyc,
                identity_ratio=self.cfg.loss.identity_ratio,
            )
        _step(self.optims["G"], loss)
        return {f"G/{k}": v for k, v in parts.items()}, x_fake, y_fake

    def _d_step(
        self,
        x_real: torch.Tensor,
        y_real: torch.Tensor,
        x_fake: torch.Tensor,
        y_fake: torch.Tensor,
        gen: torch.Generator,
    ) -> dict[str, torch.Tensor]:
        """Each D's halved LSGAN loss (fakes drawn through its pool), one Adam step."""
        x_seen, y_seen = self.pool_X.query(x_fake, gen), self.pool_Y.query(y_fake, gen)
        loss_x, parts_x = losses_cyclegan.d_loss(d_real=self.D_X(x_real), d_fake=self.D_X(x_seen))
        loss_y, parts_y = losses_cyclegan.d_loss(d_real=self.D_Y(y_real), d_fake=self.D_Y(y_seen))
        _step(self.optims["D"], loss_x + loss_y)
        return {f"D_X/{k}": v for k, v in parts_x.items()} | {
            f"D_Y/{k}": v for k, v in parts_y.items()
        }

    # ----------------------------------------------------------------- loop
    def fit(self, run: RunHooks) -> bool:
        """Train to the pair's last iteration; False when asked to stop first (then the
        pair is checkpointed where it stands)."""
        t = self.cfg.train
        history = [{k: torch.tensor(v) for k, v in h.items()} for h in self.state.log_window]
        window_start, fresh = time.time(), 0
        while self.state.step < self.pair.iters:
            if run.should_stop():
                self.checkpoint(history)
                return False
            history.append(self.train_step())
            fresh += 1
            run.advance(1)
            step, end = self.state.step, self.state.step == self.pair.iters
            if step % t.log_every == 0 or end:
                values = mean_parts(history) | {"lr": self.optims["G"].param_groups[0]["lr"]}
                values["sec_per_iter"] = (time.time() - window_start) / fresh
                run.log(self.pair, step, values)
                history, window_start, fresh = [], time.time(), 0
            if step % t.sample_every == 0 or end:
                self.save_samples()
            if step % t.ckpt_every == 0 or end:
                self.checkpoint(history)
        return True

    def checkpoint(self, log_window: list[dict[str, torch.Tensor]]) -> Path:
        self.state.log_window = [{k: float(v) for k, v in h.items()} for h in log_window]
        labels = [{"names": list(self.pair.names), "domains": [self.pair.x, self.pair.y]}]
        return save_checkpoint(
            self.dir / "checkpoints",
            self.state,
            self.cfg,
            self.nets,
            self.optims,
            self.cfg.train.keep_ckpts,
            labels,
        )

    def resume(self, ckpt: Path) -> None:
        self.state = load_checkpoint(ckpt, self.nets, self.optims, self.device)

    @torch.no_grad()
    def save_samples(self) -> Path:
        """Rows: x, G(x), F(G(x)) for test images of X, then y, F(y), G(F(y)) for Y's."""
        x, y = (im.to(self.device) for im in self.fixed)
        rows = [torch.stack([x, self.G(x), self.F(self.G(x))], 1)]
        rows.append(torch.stack([y, self.F(y), self.G(self.F(y))], 1))
        tiles = to_uint8(torch.cat(rows).flatten(0, 1))
        path = self.dir / "samples" / f"step-{self.state.step:07d}.png"
        save_png(make_grid(tiles, nrow=3), path)
        return path


class RunHooks(Protocol):
    """What the pairs of a run share (train/cyclegan_run.py): the stop request, progress
    and the stats log."""

    def should_stop(self) -> bool: ...

    def advance(self, iterations: int) -> None: ...

    def log(self, pair: Pair, step: int, values: dict[str, float]) -> None: ...


def domain_rows(data: ImageLabelDataset, domain: int) -> np.ndarray:
    """Indices of the images of one domain of a categorical dataset."""
    return np.flatnonzero(np.asarray(data.labels)[:, domain] > 0.5)


def _sample_inputs(test: ImageLabelDataset, train: ImageLabelDataset, domain: int) -> torch.Tensor:
    """Up to N_SAMPLE test images of ``domain`` (training ones where the test split has
    none) as [n, 3, S, S] in [-1, 1]: the sample grid's rows."""
    data = test if len(domain_rows(test, domain)) else train
    rows = domain_rows(data, domain)[:N_SAMPLE]
    return to_model_range(data.batch(torch.from_numpy(rows))[0])


def _step(opt: torch.optim.Optimizer, loss: torch.Tensor) -> None:
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
