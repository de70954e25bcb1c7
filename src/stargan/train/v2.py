"""The StarGAN v2 training loop (paper section 2 and appendix B; the official solver's
order of operations).

One iteration: a D step against latent-guided fakes, a D step against reference-guided
fakes, a G step with latent-guided styles (updates G, F and E), a G step with
reference-guided styles (updates G), then the running averages of G, F and E.

Exactness notes (same gradients as the official code, less work): fakes of the D steps
and the diversity loss's second output are computed without a graph (both are detached
there); in the reference-guided G step the styles E(x_ref), E(x_ref2) and E(x) are
computed without a graph and E's weights are frozen, because only G is updated by that
step (the official code computes E's gradients and then discards them).

Mixed precision (``train.precision`` bf16 | fp16 | auto) runs the forward passes under
autocast with the losses in fp32, as the v1 trainer; fp16 has one loss scaler for D's
loss and one for G's (whose latent-guided step updates G, F and E), and R1 differentiates
the scaled logits (train/precision.py). Under torchrun the networks that a step updates
are called through DDP, every rank draws the same global batch and keeps its shard
(train/distributed.py), and the running averages are updated from identical weights on
every rank, so they stay identical without any communication.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from stargan import synthesis
from stargan.config import Config
from stargan.data.dataset import ImageLabelDataset, random_flip, to_model_range
from stargan.data.sampling import DomainIndex, random_resized_crop
from stargan.errors import StarGANError
from stargan.losses import terms
from stargan.losses import v2 as losses_v2
from stargan.models.v2 import he_init_
from stargan.train.base import (
    N_SAMPLE,
    TrainerBase,
    as_list,
    build_seeded,
    ema_copy,
    frozen,
    step_generator,
    update_ema,
)
from stargan.train.distributed import World, wrap
from stargan.train.precision import Precision, backward_and_step, penalty_scale

TRAINED = ("G", "F", "E")  # the networks with a running average (EMA) for sampling
N_LATENTS = 3  # latent-grid outputs per domain


def init_v2(nets: dict[str, nn.Module]) -> None:
    """EMA copies first, then He init of the trained networks (so the EMA networks start
    from PyTorch's default init, as in the official code)."""
    for name in TRAINED:
        nets[f"{name}_ema"] = ema_copy(nets[name])
    for name in (*TRAINED, "D"):
        he_init_(nets[name])


@dataclass
class V2Batch:
    x_real: torch.Tensor  # [N, 3, H, W] sources in [-1, 1]
    y_org: torch.Tensor  # [N] their domains
    x_ref: torch.Tensor  # [N, 3, H, W] references of domain y_trg
    x_ref2: torch.Tensor  # [N, 3, H, W] a second reference of the same domain
    y_trg: torch.Tensor  # [N] target domains
    z_trg: torch.Tensor  # [N, latent_dim]
    z_trg2: torch.Tensor  # [N, latent_dim]


class V2Trainer(TrainerBase):
    def __init__(
        self,
        cfg: Config,
        run_dir: Path,
        train_sets: ImageLabelDataset | list[ImageLabelDataset],
        sample_sets: ImageLabelDataset | list[ImageLabelDataset] | None = None,
        world: World = World(),
    ) -> None:
        super().__init__(cfg, run_dir, train_sets, world)
        if self.spec.kind != "categorical" or self.layout.joint:
            raise StarGANError(
                "StarGAN v2 learns one dataset of categorical domains (one folder per "
                f"domain); {cfg.data.label} has {self.spec.kind} labels"
            )
        self.nets = build_seeded(cfg, self.device, init_v2)
        self.G, self.F, self.E, self.D = (self.nets[k] for k in ("G", "F", "E", "D"))
        # as called where a step updates them: DDP under torchrun, else the nets themselves
        self.train_nets = {
            name: wrap(self.nets[name], world, self.device, name == "G" and cfg.model.w_hpf > 0)
            for name in (*TRAINED, "D")
        }
        self.rows = world.shard(cfg.train.batch_size)  # this rank's rows of the global batch
        self.precision = Precision(cfg.train.precision, self.device)
        self.scalers = {"G": self.precision.scaler(), "D": self.precision.scaler()}
        o = cfg.optim
        self.base_lrs = {"G": o.g_lr, "F": o.f_lr, "E": o.g_lr, "D": o.d_lr}
        self.optims = {
            name: torch.optim.Adam(
                self.nets[name].parameters(),
                lr,
                (o.beta1, o.beta2),
                weight_decay=o.weight_decay,
            )
            for name, lr in self.base_lrs.items()
        }
        self.index = DomainIndex(torch.from_numpy(self.datas[0].labels.argmax(1)), self.spec.names)
        self.fan = _load_fan(cfg.model.fan_path, self.device) if cfg.model.w_hpf > 0 else None
        samples = as_list(sample_sets)[0] if sample_sets is not None else self.datas[0]
        self.fixed = self._fixed_inputs(samples)

    @property
    def num_domains(self) -> int:
        return self.spec.dim

    # ----------------------------------------------------------------- one step
    def make_batch(self, step: int) -> V2Batch:
        """Balanced sources and references, augmented, and the latents: a pure function
        of (seed, step); the global batch, of which this rank keeps its rows."""
        cfg, gen = self.cfg, step_generator(self.cfg.train.seed, step)
        n = cfg.train.batch_size
        src = self.index.balanced(n, gen)
        ref = self.index.balanced(n, gen)
        ref2 = self.index.partners(ref, gen)
        x_uint8, c = self.datas[0].batch(torch.cat([src, ref, ref2]))
        x = random_resized_crop(to_model_range(x_uint8), cfg.data.random_crop, gen)
        if cfg.data.flip:
            x = random_flip(x, gen)
        y = c.argmax(1)
        z = torch.randn(2, n, cfg.model.latent_dim, generator=gen)
        # this rank's rows of each part, and only those moved to the device
        x_src, x_ref, x_ref2 = (part[self.rows].to(self.device) for part in x.split(n))
        y_src, y_trg, _ = (part[self.rows].to(self.device) for part in y.split(n))
        z_trg, z_trg2 = (part[self.rows].to(self.device) for part in z)
        return V2Batch(x_src, y_src, x_ref, x_ref2, y_trg, z_trg, z_trg2)

    def _masks(self, x: torch.Tensor):
        return None if self.fan is None else self.fan.get_heatmap(x)

    def d_step(self, b: V2Batch, s_trg: torch.Tensor, masks) -> dict[str, torch.Tensor]:
        """Non-saturating loss on real images of their domain and on G(x, s_trg) of the
        target domain, plus R1 on the real images."""
        D, scaler = self.train_nets["D"], self.scalers["D"]
        x_real = b.x_real.detach().requires_grad_(True)
        with self.precision.autocast():
            d_real = D(x_real, b.y_org)
            with torch.no_grad():
                x_fake = self.G(b.x_real, s_trg, masks=masks)
            d_fake = D(x_fake, b.y_trg)
        r1 = terms.r1_penalty(d_real, x_real, penalty_scale(scaler))
        loss, parts = losses_v2.d_loss(
            d_real=d_real.float(), d_fake=d_fake.float(), r1=r1, lambda_r1=self.cfg.loss.lambda_r1
        )
        backward_and_step(loss, self.optims["D"], scaler)
        return parts

    def g_step(self, b: V2Batch, latent: bool, lambda_ds: float, masks) -> dict[str, torch.Tensor]:
        """Latent-guided (updates G, F, E) or reference-guided (updates G) generator step."""
        loss_cfg, nets = self.cfg.loss, self.train_nets
        # D is frozen (gradients through it, not into it): called as itself, not through
        # DDP, which would wait for gradients of its weights; so is E where it is frozen
        G, E = nets["G"], nets["E"] if latent else self.E
        if latent:
            sources, frozen_nets, updated = (b.z_trg, b.z_trg2), (self.D,), TRAINED
            style = nets["F"]
        else:
            sources, frozen_nets, updated = (b.x_ref, b.x_ref2), (self.D, self.E), ("G",)
            style = self.E
        with frozen(*frozen_nets), self.precision.autocast():
            with torch.set_grad_enabled(latent):
                s_trg = style(sources[0], b.y_trg)
                s_org = E(b.x_real, b.y_org)
            with torch.no_grad():
                x_fake2 = self.G(b.x_real, style(sources[1], b.y_trg), masks=masks)
            x_fake = G(b.x_real, s_trg, masks=masks)
            d_fake = self.D(x_fake, b.y_trg)
            s_pred = E(x_fake, b.y_trg)
            x_rec = G(x_fake, s_org, masks=self._masks(x_fake))
        loss, parts = losses_v2.g_loss(
            d_fake=d_fake.float(),
            s_pred=s_pred.float(),
            s_trg=s_trg.float(),
            x_fake=x_fake.float(),
            x_fake2=x_fake2.float(),
            x_rec=x_rec.float(),
            x_real=b.x_real,
            lambda_sty=loss_cfg.lambda_sty,
            lambda_ds=lambda_ds,
            lambda_cyc=loss_cfg.lambda_rec,
        )
        backward_and_step(loss, [self.optims[name] for name in updated], self.scalers["G"])
        return parts

    def update_ema(self) -> None:
        """ema <- beta * ema + (1 - beta) * weights, for G, F and E (parameters only)."""
        for name in TRAINED:
            update_ema(self.nets[f"{name}_ema"], self.nets[name], self.cfg.optim.ema_beta)

    def train_step(self) -> dict[str, torch.Tensor]:
        step = self.state.step
        self.set_lr(step)
        b = self.make_batch(step)
        masks = self._masks(b.x_real)
        loss_cfg = self.cfg.loss
        lambda_ds = losses_v2.diversity_weight(loss_cfg.lambda_ds, step, loss_cfg.ds_iter)
        with torch.no_grad():
            s_latent = self.F(b.z_trg, b.y_trg)
        parts = _prefixed("D/latent", self.d_step(b, s_latent, masks))
        with torch.no_grad():
            s_ref = self.E(b.x_ref, b.y_trg)
        parts |= _prefixed("D/ref", self.d_step(b, s_ref, masks))
        parts |= _prefixed("G/latent", self.g_step(b, True, lambda_ds, masks))
        parts |= _prefixed("G/ref", self.g_step(b, False, lambda_ds, masks))
        self.update_ema()
        parts["G/lambda_ds"] = torch.tensor(lambda_ds)
        self.state.step += 1
        self.state.g_updates += 1
        return parts

    # ----------------------------------------------------------------- outputs
    def _fixed_inputs(self, data: ImageLabelDataset) -> dict[str, torch.Tensor]:
        """Sources (the first images) and references (round-robin over the domains) of the
        sample grids, and the latent grid's z."""
        domains = torch.from_numpy(data.labels.argmax(1))
        members = [torch.nonzero(domains == d).flatten() for d in range(self.num_domains)]
        refs = [
            int(members[k % self.num_domains][k // self.num_domains])
            for k in range(N_SAMPLE)
            if k // self.num_domains < len(members[k % self.num_domains])
        ]
        n = min(N_SAMPLE, len(data))
        x_src, c_src = data.batch(torch.arange(n))
        x_ref, c_ref = data.batch(torch.tensor(refs))
        out = {
            "x_src": to_model_range(x_src),
            "y_src": c_src.argmax(1),
            "x_ref": to_model_range(x_ref),
            "y_ref": c_ref.argmax(1),
            "z": synthesis.latents(range(N_LATENTS), self.cfg.model.latent_dim),
        }
        return {k: v.to(self.device) for k, v in out.items()}

    @torch.no_grad()
    def sample_grids(self) -> dict[str, tuple[torch.Tensor, int]]:
        """With the running-average networks: latent grid, reference grid, cycle grid."""
        f = self.fixed
        G, F, E = (self.nets[f"{k}_ema"] for k in TRAINED)
        masks = self._masks(f["x_src"])
        n_ref = f["x_ref"].size(0)
        fake_masks = None
        if self.fan is not None:  # the cycle's second pass masks the first pass's output
            s_ref = E(f["x_ref"], f["y_ref"])
            fake_masks = self._masks(G(f["x_src"][:n_ref], s_ref, masks=_rows(masks, n_ref)))
        return {
            "latent": synthesis.latent_grid(
                G, F, f["x_src"], self.num_domains, f["z"], masks=masks
            ),
            "reference": synthesis.reference_grid(G, E, f["x_src"], f["x_ref"], f["y_ref"], masks),
            "cycle": synthesis.cycle_grid(
                G,
                E,
                f["x_src"][:n_ref],
                f["y_src"][:n_ref],
                f["x_ref"],
                f["y_ref"],
                _rows(masks, n_ref),
                fake_masks,
            ),
        }


def _rows(masks, n: int):
    return None if masks is None else [m[:n] for m in masks]


def _prefixed(prefix: str, parts: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {f"{prefix}/{k}": v for k, v in parts.items()}


def _load_fan(path: str, device: torch.device) -> nn.Module:
    from stargan.models.fan import load_fan

    return load_fan(path).to(device)
