"""The StarGAN v1 training loop (paper section 3.1 and 4; official solver's order of ops).

Counting: ``step`` counts iterations; every iteration updates D once, every
``n_critic``-th iteration also updates G once. ``g_updates`` counts the latter.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from stargan.config import Config, parse_target_weights
from stargan.data.dataset import (
    ImageLabelDataset,
    epoch_batch_indices,
    random_flip,
    to_model_range,
    to_uint8,
)
from stargan.errors import StarGANError
from stargan.losses import terms
from stargan.losses import v1 as losses_v1
from stargan.models.layers import use_matmul_convs
from stargan.models.v1 import WithMask, label_input, src_for_labels
from stargan.train.base import (
    N_SAMPLE,
    TrainerBase,
    as_list,
    build_seeded,
    dataset_at,
    ema_copy,
    frozen,
    step_generator,
    update_ema,
)
from stargan.train.distributed import World, wrap
from stargan.train.precision import Precision, backward_and_step, penalty_scale

# D's convolutions with output maps at most this wide run as matrix products in the fast
# path on CPU: the measured crossover with oneDNN (batch 16, 64 and 128 px) lies between
# 4 and 8 px, for the forward, the backward and the gradient penalty's double backward.
MATMUL_MAX_OUT = 4


@dataclass
class V1Batch:
    x_real: torch.Tensor  # [N, 3, H, W] in [-1, 1]
    c_org: torch.Tensor  # [N, c] original labels (joint: with the mask vector)
    c_trg: torch.Tensor  # [N, c] target labels, same dataset as c_org
    part: int = 0  # the dataset the batch comes from


class V1Trainer(TrainerBase):
    """Trains G and D on one dataset, or on several with the mask vector (paper 3.2):
    batches come from one dataset at a time, following ``train.dataset_schedule``.

    ``train.fast_kernels`` (default on) runs the same math through faster kernels: D's
    small-map convolutions as matrix products and Adam's fused step, which round
    differently (~1e-6 relative). Off, convolutions and Adam are stock PyTorch and a CPU
    run is bit-identical to the official solver's arithmetic (the always-on rewrites,
    D's LeakyReLU form and G's out-of-place ReLUs, are exact). On CPU both keep exact
    resume and run-to-run equality; on CUDA the fast path autotunes cuDNN, which may not.
    """

    def __init__(
        self,
        cfg: Config,
        run_dir: Path,
        train_sets: ImageLabelDataset | list[ImageLabelDataset],
        sample_sets: ImageLabelDataset | list[ImageLabelDataset] | None = None,
        world: World = World(),
    ) -> None:
        super().__init__(cfg, run_dir, train_sets, world)
        nets = build_seeded(cfg, self.device)
        self.G, self.D = nets["G"], nets["D"]
        self.fast_kernels = cfg.train.fast_kernels
        cpu_fast = self.fast_kernels and self.device.type == "cpu"  # oneDNN's weak spot
        use_matmul_convs(self.D, MATMUL_MAX_OUT if cpu_fast else 0)
        relu_out_of_place(self.G)
        t = cfg.train
        self.memory_format = torch.channels_last if t.channels_last else torch.contiguous_format
        if t.channels_last:
            self.G.to(memory_format=self.memory_format)
            self.D.to(memory_format=self.memory_format)
        # as called in training: DDP under torchrun, G compiled on request (G and D
        # themselves stay plain modules: checkpoints, samples)
        # (G returning (image, mask or None): g_output "mask" needs the mask in the loss)
        self.g_train = wrap(WithMask(self.G), world, self.device)
        self.d_train = wrap(self.D, world, self.device)
        if t.compile:
            self.g_train = torch.compile(self.g_train)
        self.rows = world.shard(cfg.train.batch_size)  # this rank's rows of the global batch
        self.precision = Precision(cfg.train.precision, self.device)
        self.scalers = {"G": self.precision.scaler(), "D": self.precision.scaler()}
        o, adam = cfg.optim, self._adam_options()
        self.g_opt = torch.optim.Adam(self.G.parameters(), o.g_lr, (o.beta1, o.beta2), **adam)
        self.d_opt = torch.optim.Adam(self.D.parameters(), o.d_lr, (o.beta1, o.beta2), **adam)
        self.nets = {"G": self.G, "D": self.D}
        self.G_ema = ema_copy(self.G) if o.g_ema_beta > 0 else None
        if self.G_ema is not None:
            self.nets["G_ema"] = self.G_ema  # checkpointed; samples and export use it
        self.optims = {"G": self.g_opt, "D": self.d_opt}
        self.base_lrs = {"G": o.g_lr, "D": o.d_lr}
        self.fixed = self._fixed_inputs(
            as_list(sample_sets) if sample_sets is not None else self.datas
        )
        self.target_weights = self._target_weights()

    @property
    def G_sample(self) -> nn.Module:
        """The G that samples (and that export writes): its running average where kept."""
        return self.G_ema if self.G_ema is not None else self.G

    def _adam_options(self) -> dict[str, bool]:
        """Fused: one pass over each parameter instead of ~8 (D's Adam step at 128 px
        took 0.30 s per core with the default loop, 0.06 fused). Off: torch's default."""
        if self.fast_kernels and self.device.type in ("cpu", "cuda"):
            return {"fused": True}
        return {}

    def _target_weights(self) -> list[dict[str, float]]:
        """``train.target_weights`` split by dataset, each name resolved as targets are
        (``dataset.domain`` or a bare domain one dataset has; unknown: StarGANError)."""
        per_dataset: list[dict[str, float]] = [{} for _ in self.layout.specs]
        for name, weight in parse_target_weights(self.cfg.train.target_weights).items():
            i, domain = self.layout.find(name)
            if domain in per_dataset[i]:
                raise StarGANError(f"train.target_weights names {name!r} twice")
            per_dataset[i][domain] = weight
        return per_dataset

    def _fixed_inputs(self, sets: list[ImageLabelDataset]) -> tuple[torch.Tensor, torch.Tensor]:
        """The sample grid's rows: up to N_SAMPLE images shared among the datasets."""
        per_set = max(1, N_SAMPLE // len(sets))
        xs, cs = [], []
        for i, data in enumerate(sets):
            x, c = data.batch(torch.arange(min(per_set, len(data))))
            xs.append(to_model_range(x))
            cs.append(self.layout.encode(i, c))
        return torch.cat(xs).to(self.device), torch.cat(cs).to(self.device)

    # ----------------------------------------------------------------- one step
    def make_batch(self, step: int) -> tuple[V1Batch, torch.Generator]:
        gen = step_generator(self.cfg.train.seed, step)
        part, own_step, _ = dataset_at(self.schedule, step)
        data, data_cfg = self.datas[part], self.cfg.datasets[part]
        idx = epoch_batch_indices(
            len(data), self.cfg.train.batch_size, own_step, data_cfg.seed + self.cfg.train.seed
        )
        x_uint8, c_org = data.batch(idx)
        if data_cfg.flip:
            x_uint8 = random_flip(x_uint8, gen)
        c_trg = self.layout.specs[part].training_targets(
            c_org, gen, self.cfg.train.targets, self.target_weights[part]
        )
        # randomness drawn for the global batch above; this rank keeps its rows
        x_uint8, c_org, c_trg = x_uint8[self.rows], c_org[self.rows], c_trg[self.rows]
        if self.device.type == "cuda":  # page-locked: the copy below runs asynchronously
            x_uint8 = x_uint8.pin_memory()
        x_real = to_model_range(x_uint8.to(self.device, non_blocking=True))
        x_real = x_real.contiguous(memory_format=self.memory_format)
        c_org, c_trg = c_org.to(self.device), c_trg.to(self.device)
        return V1Batch(
            x_real, self.layout.encode(part, c_org), self.layout.encode(part, c_trg), part
        ), gen

    def d_step(
        self, b: V1Batch, x_fake: torch.Tensor, gen: torch.Generator
    ) -> dict[str, torch.Tensor]:
        """L_D on real images, detached fakes and their interpolates (eqs. 6, 8)."""
        cfg = self.cfg
        alpha = torch.rand(cfg.train.batch_size, 1, 1, 1, generator=gen)[self.rows]
        x_real = b.x_real
        lazy = cfg.loss.cls_grad_every  # the penalty on every lazy-th step, weighted lazy times
        penalise_cls = cfg.loss.lambda_cls_grad > 0 and self.state.step % lazy == 0
        every = cfg.loss.penalty_every  # the adversarial penalty likewise
        penalise = self.penalises_adversarial(self.state.step)
        if (cfg.loss.adv == "ns-r1" and penalise) or penalise_cls:
            x_real = x_real.detach().requires_grad_(True)
        if cfg.loss.adv == "ns-r1":
            d_src_real, d_cls_real, d_src_fake, penalty = self._d_outputs_r1(
                b, x_real, x_fake, penalise
            )
            lambda_penalty = cfg.loss.lambda_r1 * every
        else:
            d_src_real, d_cls_real, d_src_fake, penalty = self._d_outputs_gp(
                x_real, x_fake, alpha, penalise
            )
            lambda_penalty = cfg.loss.lambda_gp * every
        own = self.layout.part(b.part)  # the classification loss sees the known labels only
        kind = self.layout.specs[b.part].kind
        cls_grad = None
        if penalise_cls:
            cls_grad = terms.classifier_gradient_penalty(
                d_cls_real[:, own], b.c_org[:, own], kind, x_real, penalty_scale(self.scalers["D"])
            )
        loss, parts = losses_v1.d_loss(
            d_src_real=d_src_real,
            d_cls_real=d_cls_real[:, own],
            c_org=b.c_org[:, own],
            d_src_fake=d_src_fake,
            gp=penalty,
            kind=kind,
            lambda_cls=cfg.loss.lambda_cls,
            lambda_gp=lambda_penalty,
            adv=cfg.loss.adv,
            cls_grad=cls_grad,
            lambda_cls_grad=cfg.loss.lambda_cls_grad * lazy,
        )
        backward_and_step(loss, self.d_opt, self.scalers["D"])
        return self._per_dataset(parts, b.part, "D/loss_cls")

    def penalises_adversarial(self, step: int) -> bool:
        """Whether D step ``step`` computes the adversarial penalty (WGAN-GP's or R1):
        every ``loss.penalty_every``-th step, weighted that many times."""
        return step % self.cfg.loss.penalty_every == 0

    def _d_outputs_gp(
        self, x_real: torch.Tensor, x_fake: torch.Tensor, alpha: torch.Tensor, penalise: bool
    ):
        """D on real, fake and (when ``penalise``) interpolated images, and the WGAN-GP
        penalty (eq. 8; None on the steps ``loss.penalty_every`` skips). (Per-label D_src
        heads are refused with this loss: the config needs loss.adv=ns-r1 for them.)"""
        x_hat = None
        if penalise:
            alpha = alpha.to(self.device)
            x_hat = (alpha * x_real.detach() + (1 - alpha) * x_fake).requires_grad_(True)
        with self.precision.autocast():  # one block: D's weights cast once; losses in fp32
            d_src_real, d_cls_real = _fp32(*self.d_train(x_real))
            d_src_fake = _fp32(self.d_train(x_fake)[0])[0]
            d_src_hat = None if x_hat is None else self.d_train(x_hat)[0]
        if x_hat is None:
            return d_src_real, d_cls_real, d_src_fake, None
        gp = terms.gradient_penalty(d_src_hat, x_hat, penalty_scale(self.scalers["D"]))
        return d_src_real, d_cls_real, d_src_fake, gp

    def _d_outputs_r1(self, b: V1Batch, x_real: torch.Tensor, x_fake: torch.Tensor, penalise: bool):
        """D on real and fake images, and (when ``penalise``) the R1 penalty on the real
        ones (StarGAN v2; ``x_real`` then requires grad)."""
        with self.precision.autocast():
            d_src_real, d_cls_real = self.d_train(x_real)
            d_src_real = self.src_for_labels(d_src_real, b.c_org, b.part)
            d_src_fake = _fp32(self.d_train(x_fake)[0])[0]
        r1 = None
        if penalise:
            r1 = terms.r1_penalty(d_src_real, x_real, penalty_scale(self.scalers["D"]))
        d_src_fake = self.src_for_labels(d_src_fake, b.c_trg, b.part)
        return d_src_real.float(), d_cls_real.float(), d_src_fake, r1

    def src_for_labels(self, out_src: torch.Tensor, c: torch.Tensor, part: int) -> torch.Tensor:
        """D_src's verdict on images labelled ``c`` (``model.d_domain_heads``: the heads
        their labels pick; else D_src as it is)."""
        return src_for_labels(out_src, c, self.layout.part(part))

    def g_step(
        self, b: V1Batch, x_fake: torch.Tensor, mask: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        """L_G (eq. 7) for x_fake = G(x_real, c_trg), still attached to G's graph (and its
        attention mask, for ``model.g_output=mask``)."""
        cfg = self.cfg
        # G's loss needs gradients through D, not of D's weights (nor DDP's sync of them)
        with frozen(self.D), self.precision.autocast():
            d_src_fake, d_cls_fake = _fp32(*self.D(x_fake))
        d_src_fake = self.src_for_labels(d_src_fake, b.c_trg, b.part)
        with self.precision.autocast():
            x_rec = self.g_train(x_fake, self.label_input(b.c_org, b.c_trg))[0]
        own = self.layout.part(b.part)
        loss, parts = losses_v1.g_loss(
            d_src_fake=d_src_fake,
            d_cls_fake=d_cls_fake[:, own],
            c_trg=b.c_trg[:, own],
            x_real=b.x_real,
            x_rec=x_rec,
            kind=self.layout.specs[b.part].kind,
            lambda_cls=cfg.loss.lambda_cls,
            lambda_rec=cfg.loss.lambda_rec,
            adv=cfg.loss.adv,
            mask=mask,
            lambda_mask=cfg.loss.lambda_mask,
            lambda_mask_tv=cfg.loss.lambda_mask_tv,
        )
        backward_and_step(loss, self.g_opt, self.scalers["G"])
        if self.G_ema is not None:
            update_ema(self.G_ema, self.G, self.cfg.optim.g_ema_beta)
        return self._per_dataset(parts, b.part, "G/loss_cls")

    def label_input(self, c_trg: torch.Tensor, c_org: torch.Tensor) -> torch.Tensor:
        """G's label input for inputs labelled ``c_org`` and targets ``c_trg``
        (``model.g_condition``: the targets, or their difference from ``c_org``)."""
        m = self.cfg.model
        return label_input(c_trg, c_org, m.g_condition, m.mask_dim)

    def _per_dataset(self, parts: dict[str, torch.Tensor], part: int, key: str):
        """Joint runs also log each dataset's classification loss on its own."""
        if self.layout.joint:
            parts[f"{key}/{self.layout.datasets[part]}"] = parts[key]
        return parts

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
        with torch.set_grad_enabled(update_g), self.precision.autocast():
            x_fake, mask = self.g_train(batch.x_real, self.label_input(batch.c_trg, batch.c_org))
        parts = self.d_step(batch, x_fake.detach(), gen)
        if update_g:
            parts |= self.g_step(batch, x_fake, mask)
            self.state.g_updates += 1
        self.state.step += 1
        return parts

    # ----------------------------------------------------------------- outputs
    def sample_grids(self) -> dict[str, tuple[torch.Tensor, int]]:
        return {"": (self.sample_grid(), 1 + self.layout.cls_dim)}

    @torch.no_grad()
    def sample_grid(self) -> torch.Tensor:
        """Rows: fixed inputs; columns: input, then one per target domain of every dataset
        (paper figures). Labels a row's dataset lacks come from D_cls's estimate."""
        x, c = self.fixed
        G = self.G_sample
        changes = self.layout.changes_with_sources(self._labels(x, c))
        cols = [x] + [G(x, self.label_input(c_trg, c_src)) for _, c_src, c_trg in changes]
        stacked = torch.stack(cols, dim=1).flatten(0, 1)  # [N * (1 + domains), 3, H, W]
        return to_uint8(stacked)

    def _labels(self, x: torch.Tensor, c: torch.Tensor) -> list[torch.Tensor]:
        logits = _once(lambda: self.D(x)[1])
        return [self.layout.known_or_estimated(c, logits, i) for i in range(len(self.layout.specs))]


Trainer = V1Trainer  # its name before StarGAN v2's V2Trainer came beside it


def relu_out_of_place(net: nn.Module) -> None:
    """Training: G's ReLUs out of place. An in-place ReLU on instance norm's output (a view)
    makes autograd rebuild the base tensor in backward (``CopySlices``: two more copies
    of each activation). Same values; the models keep in-place ReLUs for inference."""
    for m in net.modules():
        if isinstance(m, nn.ReLU):
            m.inplace = False


def _fp32(*tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Autocast's half-precision outputs as fp32 for the losses (fp32 ones unchanged)."""
    return tuple(t.float() for t in tensors)


def _once(fn):
    """``fn`` evaluated on first call only (a D forward shared by several datasets)."""
    cache: list = []

    def call():
        if not cache:
            cache.append(fn())
        return cache[0]

    return call
