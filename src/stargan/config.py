"""Typed, frozen run configuration: the one source of truth for a training run.

A run is described by :class:`Config`; presets are named Configs; ``--set a.b=value``
overrides are validated against the dataclass fields. The config is never mutated
during training (schedules are pure functions of the step).
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import re
import typing
from dataclasses import dataclass, field, fields, is_dataclass, replace
from pathlib import Path
from typing import Any

from stargan.errors import StarGANError

TARGET_SAMPLINGS = ("permute", "single", "mixed")  # train.targets (LabelSpec.training_targets)
TARGET_WEIGHT_RANGE = (1e-3, 1e3)  # train.target_weights: relative chances, float32-safe
PRECISIONS = ("fp32", "bf16", "fp16", "auto")  # auto: bf16 where native (train/precision.py)
# inference (inference_precision.py): auto = bf16 where native and within 35 dB of fp32
INFERENCE_PRECISIONS = ("auto", "fp32", "bf16")
ARCHS = ("v1", "v2")
G_OUTPUTS = ("image", "residual", "mask")  # v1 G's output (models/v1.py)
G_UPSAMPLES = ("deconv", "resize")  # v1 G's up-sampling (models/v1.py)
G_CONDITIONS = ("target", "difference")  # v1 G's label input (models/v1.label_input)
ADV_LOSSES = ("wgan-gp", "ns-r1")  # v1 adversarial loss (losses/v1.py)
# Pillow filters for resizing source images to the model's size (images.py). bilinear is
# the official loaders' (torchvision's Resize of a PIL image: Pillow's antialiased
# BILINEAR); bicubic, a little sharper, stays the default where no official code is matched.
RESIZE_FILTERS = ("bicubic", "bilinear")


# Translator.strength's bound: AttGAN and STGAN edit at up to 2x the trained change; a
# bound on what is accepted, not a measured limit (docs/quality.md measured 1.5 worse).
MAX_STRENGTH = 4.0


@dataclass(frozen=True)
class ModelConfig:
    """The networks. ``arch``: ``v1`` (StarGAN, paper Tables 4-5) or ``v2`` (StarGAN v2,
    appendix A). ``c_dim``: the datasets' labels, i.e. D_cls's outputs (v1) or the number of
    domains (v2; categorical labels only); 0: filled from the data. ``mask_dim``: joint
    runs' mask vector, one entry per dataset (filled from the data; v1 only); G's label
    input is ``c_dim + mask_dim`` wide.

    v1 only: ``g_conv_dim``, ``g_repeat_num``, ``d_conv_dim``, ``d_repeat_num``.
    ``g_skip`` / ``g_output`` / ``g_upsample`` (v1): encoder-decoder skips; G's output as
    the paper's ``image``, a ``residual`` added to the input, or a ``mask`` blending the
    input with a colour map; up-sampling by the paper's transposed convs (``deconv``) or
    ``resize`` (nearest x2 + 3x3 conv, no checkerboard). models/v1.py; the quality
    recipe, docs/quality.md. ``g_condition`` (v1): G's label input is the target labels
    (``target``, the paper) or their ``difference`` from the input's own, c_trg - c_org
    (STGAN, Liu et al. 2019): zero means "keep", and the cycle's second pass is told
    exactly what to undo; inference then needs the input's labels (given, or D_cls's
    estimate). ``g_cond_norm`` (v1): the label also sets the scale and bias after each of
    G's instance norms (conditional instance norm, Dumoulin et al. 2017; FiLM), since an
    instance norm right after the first conv removes most of what a label tiled over the
    image adds there. ``d_domain_heads`` (v1): D_src judges real against fake with one
    map per label value (label on, label off) and averages the maps an image's labels
    pick, so each domain has a critic of its own (StarGAN v2's multi-task D; its authors
    credit it with the global changes, such as age and sex, an auxiliary classifier
    alone does not push); it needs ``loss.adv=ns-r1``. The paper: false, image, deconv,
    target, false, false.
    v2 only: ``latent_dim`` (z), ``style_dim`` (s), ``mapping_dim`` (F's hidden width),
    ``max_conv_dim``, ``base_dim`` (width after the first conv; 0: the official
    2**14 / image_size), ``w_hpf`` (high-pass skips, CelebA-HQ: 1; needs ``fan_path``,
    the face landmark network's weights).
    """

    arch: str = "v1"
    image_size: int = 128
    c_dim: int = 0
    mask_dim: int = 0
    g_conv_dim: int = 64
    g_repeat_num: int = 6
    d_conv_dim: int = 64
    d_repeat_num: int = 6
    g_skip: bool = False
    g_output: str = "image"
    g_upsample: str = "deconv"
    g_condition: str = "target"
    g_cond_norm: bool = False
    d_domain_heads: bool = False
    latent_dim: int = 16
    style_dim: int = 64
    mapping_dim: int = 512
    max_conv_dim: int = 512
    base_dim: int = 0
    w_hpf: float = 0.0
    fan_path: str = ""


@dataclass(frozen=True)
class LossConfig:
    """Loss weights. ``lambda_rec``: the cycle reconstruction loss (v1 paper 10, v2 1).
    v1 only: ``lambda_cls``; ``adv``, the adversarial loss: ``wgan-gp`` (paper, weight
    ``lambda_gp``) or ``ns-r1`` (StarGAN v2's non-saturating loss with the R1 penalty on
    real images, weight ``lambda_r1``; pair it with ``optim.n_critic=1``); ``lambda_mask``
    (``model.g_output=mask``): weight of the mask's mean, which pushes G to change pixels
    rather than copy the input (GANimation's attention loss); ``lambda_mask_tv``: weight of
    the mask's total variation, which makes isolated specks of change (colour blotches
    that fool D_cls) cost more than coherent regions (GANimation's smoothness term);
    ``lambda_cls_grad``: weight of the squared norm of D_cls's loss gradient with respect
    to real images, which makes D_cls robust to small changes, so that G must change the
    attribute rather than add specks that fool it (input-gradient regularisation);
    ``cls_grad_every``: compute that penalty on every k-th D step only, weighted k times
    (lazy regularisation, StyleGAN2, Karras et al. 2020): its double backward through D
    costs up to 70% of an iteration at 32 px, a k-th of that lazily. ``penalty_every``:
    the same for the adversarial penalty (WGAN-GP's ``lambda_gp`` term or R1): computed on
    every k-th D step only, weighted k times; the other D steps skip the interpolates'
    forward pass and the double backward (1 = every step, the papers').
    ``lambda_r1`` (R1 on real images) is also v2's. v2 only: ``lambda_sty`` (style
    reconstruction), ``lambda_ds`` (diversity sensitive, decayed linearly to 0 over
    ``ds_iter`` iterations)."""

    lambda_cls: float = 1.0
    lambda_rec: float = 10.0
    lambda_gp: float = 10.0
    adv: str = "wgan-gp"
    lambda_mask: float = 0.0
    lambda_mask_tv: float = 0.0
    lambda_cls_grad: float = 0.0
    cls_grad_every: int = 1
    penalty_every: int = 1
    lambda_r1: float = 1.0
    lambda_sty: float = 1.0
    lambda_ds: float = 1.0
    ds_iter: int = 100000


@dataclass(frozen=True)
class OptimConfig:
    """Adam for every network. v1 only: ``n_critic`` (D updates per G update). v2 only:
    ``f_lr`` (the mapping network's rate), ``ema_beta`` (the running average of G, F, E
    used for sampling). ``weight_decay``: Adam's L2 term (v2 paper 1e-4). v1 only:
    ``g_ema_beta``, a running average of G's weights kept beside G (updated after every G
    update) for samples and export, as StarGAN v2 does; 0: none (paper)."""

    g_lr: float = 1e-4
    d_lr: float = 1e-4
    beta1: float = 0.5
    beta2: float = 0.999
    n_critic: int = 5
    f_lr: float = 1e-6
    weight_decay: float = 0.0
    ema_beta: float = 0.999
    g_ema_beta: float = 0.0


@dataclass(frozen=True)
class DataConfig:
    """Where images and labels come from. ``dataset`` picks the loader (``data.LOADERS``).

    ``name`` labels the dataset in joint runs (``--data NAME=PATH``; empty: ``dataset``).
    ``attrs`` picks attributes / domain folders by name (empty: the loader's default).
    ``crop`` is the centre crop in source pixels before resizing (0: the loader's
    default, e.g. 178 for CelebA, the largest centred square for folders).
    ``exclusive`` declares mutually exclusive groups of a label table, each written
    ``A|B|C``. ``on_bad_image``: ``error`` (stop, naming the file) or ``skip`` (counted).
    ``random_crop``: the probability of the v2 paper's random resized crop (scale 0.8-1,
    aspect ratio 0.9-1.1) of a training image; 0: none.
    ``resize_filter``: the filter that resizes each (cropped) source image to the model's
    size, ``bicubic`` or ``bilinear`` (the official StarGAN and StarGAN v2 loaders' filter;
    the paper presets use it); recorded with a model, whose photos are resized the same way.
    """

    dataset: str = "faces-attr"
    path: str = ""
    name: str = ""
    attrs: tuple[str, ...] = ()
    num_train: int = 20000
    num_test: int = 2000
    seed: int = 0
    flip: bool = True
    test_split: str = "paper"
    crop: int = 0
    exclusive: tuple[str, ...] = ()
    image_dir: str = ""
    on_bad_image: str = "error"
    random_crop: float = 0.0
    resize_filter: str = "bicubic"

    @property
    def label(self) -> str:
        return self.name or self.dataset


@dataclass(frozen=True)
class TrainConfig:
    """Counts are iterations (one D update each) unless the name says G updates.

    ``dataset_schedule`` (joint runs): consecutive iterations per dataset in one cycle,
    e.g. ``2,1``; empty: one each, alternating as the paper. G updates on every
    iteration of each ``n_critic``-th cycle, so every dataset trains G.

    ``fast_kernels``: the same math through faster kernels (D's small-map convolutions as
    matrix products on CPU, fused Adam), equal to the plain path within float rounding;
    false: stock convolution and Adam kernels, on CPU bit-identical to the official
    solver's arithmetic; on CUDA deterministic cuDNN kernels and no TF32.

    ``precision``: ``fp32``, or ``bf16`` / ``fp16`` autocast of the forward passes (fp16
    with loss scaling); bf16 also pays on CPUs with AVX512-BF16 (docs/speed.md); ``auto``
    (the default for StarGAN v1): bf16 where the device computes it natively (CPUs with
    AVX512-BF16 or AMX, GPUs with bf16), else fp32, decided on the machine that trains
    (printed at the start). The demo trained in bf16 reaches the scores of fp32 at equal
    iterations (docs/quality.md); ``tiny`` and the v2 presets keep fp32.
    ``channels_last``: NHWC activations and weights (GPU tensor cores). ``compile``:
    ``torch.compile`` of the generator (D stays eager: the gradient penalty's double
    backward is not supported by compiled graphs). ``tf32``: TF32 matmuls and convolutions
    on CUDA when ``precision`` is fp32.

    ``targets`` (StarGAN v1): the target labels G is trained to reach: ``permute``, the
    batch's labels permuted, so most targets change several domains at once (the paper);
    ``single``, one domain changed per image, the translations the paper's figures and our
    scores ask for; ``mixed``, each image one or the other. ``target_weights``
    (``single`` / ``mixed``): ``NAME=W`` entries, each domain's relative chance of being the
    one changed (default 1), e.g. ``Young=2,Blond_Hair=2`` for the changes G finds hardest.
    """

    batch_size: int = 16
    num_iters: int = 200000
    num_iters_decay: int = 100000
    seed: int = 0
    device: str = "auto"
    threads: int = 0
    log_every: int = 10
    sample_every: int = 1000
    ckpt_every: int = 10000
    keep_ckpts: int = 3
    tensorboard: bool = True
    dataset_schedule: tuple[int, ...] = ()
    fast_kernels: bool = True
    precision: str = "auto"
    channels_last: bool = False
    compile: bool = False
    tf32: bool = True
    targets: str = "permute"
    target_weights: tuple[str, ...] = ()


@dataclass(frozen=True)
class Config:
    name: str = "run"
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    joint: tuple[DataConfig, ...] = ()  # more datasets trained with ``data`` (mask vector)

    @property
    def datasets(self) -> tuple[DataConfig, ...]:
        return (self.data, *self.joint)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Config:
        return from_dict(cls, d)


def validate(cfg: Config) -> Config:
    """Reject values no run could use, with the field named."""
    m, t, o = cfg.model, cfg.train, cfg.optim
    if m.arch not in ARCHS:
        raise StarGANError(f"model.arch must be one of {', '.join(ARCHS)} (got {m.arch!r})")
    if t.precision not in PRECISIONS:
        raise StarGANError(
            f"train.precision must be one of {', '.join(PRECISIONS)} (got {t.precision!r})"
        )
    if t.targets not in TARGET_SAMPLINGS:
        raise StarGANError(
            f"train.targets must be one of {', '.join(TARGET_SAMPLINGS)} (got {t.targets!r})"
        )
    parse_target_weights(t.target_weights)
    if m.arch == "v2" and (t.compile or t.channels_last):
        raise StarGANError("train.compile and train.channels_last are StarGAN v1 options so far")
    if m.arch == "v2":
        _check_v2(cfg)
    else:
        _check_v1(cfg)
    if m.image_size % 4:
        raise StarGANError("model.image_size must be a multiple of 4 (two stride-2 down-convs)")
    positive = {
        "model.g_conv_dim": m.g_conv_dim,
        "model.d_conv_dim": m.d_conv_dim,
        "model.d_repeat_num": m.d_repeat_num,
        "train.batch_size": t.batch_size,
        "train.num_iters": t.num_iters,
        "optim.n_critic": o.n_critic,
        "train.keep_ckpts": t.keep_ckpts,
        "train.log_every": t.log_every,
        "train.sample_every": t.sample_every,
        "train.ckpt_every": t.ckpt_every,
    }
    for key, value in positive.items():
        if value <= 0:
            raise StarGANError(f"{key} must be > 0 (got {value})")
    if m.g_repeat_num < 0 or m.c_dim < 0 or m.mask_dim < 0:
        raise StarGANError("model.g_repeat_num, c_dim and mask_dim must be >= 0")
    if not 0 <= t.num_iters_decay <= t.num_iters:
        raise StarGANError(
            f"train.num_iters_decay must be in [0, num_iters={t.num_iters}] "
            f"(got {t.num_iters_decay})"
        )
    for d in cfg.datasets:
        if not 0.0 <= d.random_crop <= 1.0:
            raise StarGANError(f"data.random_crop is a probability in [0, 1], got {d.random_crop}")
        key = "data.resize_filter" if d is cfg.data else f"data.{d.label}.resize_filter"
        check_resize_filter(d.resize_filter, key)
    _check_device(t.device)
    _check_datasets(cfg)
    return cfg


def check_resize_filter(name: object, key: str = "data.resize_filter") -> str:
    """``name`` if it is one of RESIZE_FILTERS, else a StarGANError naming ``key``."""
    if name not in RESIZE_FILTERS:
        raise StarGANError(f"{key} must be one of {', '.join(RESIZE_FILTERS)} (got {name!r})")
    return str(name)


def parse_target_weights(entries: tuple[str, ...]) -> dict[str, float]:
    """``train.target_weights`` as {domain: weight}; each entry ``NAME=W``, W from
    ``TARGET_WEIGHT_RANGE``, each name once."""
    low, high = TARGET_WEIGHT_RANGE
    weights: dict[str, float] = {}
    for entry in entries:
        name, sep, raw = (part.strip() for part in entry.partition("="))
        try:
            weight = float(raw) if sep and name else float("nan")
        except ValueError:
            weight = float("nan")
        if not low <= weight <= high:
            raise StarGANError(
                f"train.target_weights entry {entry!r}: expected NAME=W with W from {low:g} "
                f"to {high:g}, e.g. Young=2,Blond_Hair=2"
            )
        if name in weights:
            raise StarGANError(f"train.target_weights names {name!r} twice")
        weights[name] = weight
    return weights


def _check_v1(cfg: Config) -> None:
    """v1's image size, and the quality recipe's options (G's skips, output and
    up-sampling, adversarial loss, EMA)."""
    m, loss, o = cfg.model, cfg.loss, cfg.optim
    if m.image_size % (2**m.d_repeat_num) or m.image_size < 2**m.d_repeat_num:
        raise StarGANError(
            f"model.image_size {m.image_size} must be a positive multiple of 2**d_repeat_num "
            f"= {2**m.d_repeat_num} (the discriminator halves it d_repeat_num times)"
        )
    if m.g_output not in G_OUTPUTS:
        raise StarGANError(
            f"model.g_output must be one of {', '.join(G_OUTPUTS)} (got {m.g_output!r})"
        )
    if m.g_upsample not in G_UPSAMPLES:
        raise StarGANError(
            f"model.g_upsample must be one of {', '.join(G_UPSAMPLES)} (got {m.g_upsample!r})"
        )
    if m.g_condition not in G_CONDITIONS:
        raise StarGANError(
            f"model.g_condition must be one of {', '.join(G_CONDITIONS)} (got {m.g_condition!r})"
        )
    if loss.adv not in ADV_LOSSES:
        raise StarGANError(f"loss.adv must be one of {', '.join(ADV_LOSSES)} (got {loss.adv!r})")
    if min(loss.lambda_mask, loss.lambda_mask_tv, loss.lambda_cls_grad, loss.lambda_r1) < 0:
        raise StarGANError(
            "loss.lambda_mask, loss.lambda_mask_tv, loss.lambda_cls_grad and loss.lambda_r1"
            " must be >= 0"
        )
    for key in ("cls_grad_every", "penalty_every"):
        if getattr(loss, key) < 1:
            raise StarGANError(f"loss.{key} must be >= 1 (got {getattr(loss, key)})")
    for key in ("lambda_mask", "lambda_mask_tv"):
        if getattr(loss, key) > 0 and m.g_output != "mask":
            raise StarGANError(
                f"loss.{key} weighs G's mask: it needs model.g_output=mask (got {m.g_output})"
            )
    if not 0.0 <= o.g_ema_beta < 1.0:
        raise StarGANError(f"optim.g_ema_beta must be in [0, 1), got {o.g_ema_beta}")
    if m.d_domain_heads and loss.adv != "ns-r1":
        raise StarGANError(
            "model.d_domain_heads needs loss.adv=ns-r1 (StarGAN v2's bounded loss): with the "
            "WGAN-GP the per-label maps' scores are unbounded and diverged on CelebA, within "
            "2,000 iterations with single or mixed targets and from about 6,000 with "
            "permuted ones (docs/quality.md)"
        )
    if cfg.train.target_weights and cfg.train.targets == "permute":
        raise StarGANError(
            "train.target_weights weighs the single-change targets: it needs train.targets="
            "single or mixed (got permute)"
        )


def _check_v2(cfg: Config) -> None:
    m, loss, o = cfg.model, cfg.loss, cfg.optim
    size = m.image_size
    if size < 16 or size & (size - 1):
        raise StarGANError(f"model.image_size must be a power of two >= 16 for v2, got {size}")
    if cfg.joint or m.mask_dim:
        raise StarGANError("v2 trains on one dataset (joint datasets are a v1 feature)")
    v1_recipe = m.g_skip or m.g_output != "image" or m.g_upsample != "deconv"
    v1_recipe = v1_recipe or m.g_condition != "target" or cfg.train.targets != "permute"
    v1_recipe = v1_recipe or m.g_cond_norm or m.d_domain_heads or cfg.train.target_weights
    v1_recipe = v1_recipe or loss.adv != "wgan-gp" or o.g_ema_beta or loss.lambda_cls_grad
    if v1_recipe or loss.penalty_every != 1:
        raise StarGANError(
            "model.g_skip, g_output, g_upsample, g_condition, g_cond_norm, d_domain_heads, "
            "loss.adv, loss.lambda_cls_grad, loss.penalty_every, optim.g_ema_beta, "
            "train.targets and train.target_weights are StarGAN v1 options (v2 has its own "
            "skips, losses, EMA and target domains)"
        )
    positive = {
        "model.latent_dim": m.latent_dim,
        "model.style_dim": m.style_dim,
        "model.mapping_dim": m.mapping_dim,
        "model.max_conv_dim": m.max_conv_dim,
        "loss.ds_iter": loss.ds_iter,
    }
    for key, value in positive.items():
        if value <= 0:
            raise StarGANError(f"{key} must be > 0 (got {value})")
    if m.base_dim < 0:
        raise StarGANError(f"model.base_dim must be >= 0 (0: 2**14 / image_size), got {m.base_dim}")
    if m.w_hpf < 0:
        raise StarGANError(f"model.w_hpf must be >= 0, got {m.w_hpf}")
    if m.w_hpf > 0 and not m.fan_path:
        raise StarGANError(
            f"model.w_hpf {m.w_hpf} > 0 masks G's high-pass skips with face landmarks and "
            "needs the FAN weights (wing.ckpt of the official StarGAN v2, which cannot be "
            "downloaded here): --set model.fan_path=PATH, or --set model.w_hpf=0"
        )
    if not 0.0 <= o.ema_beta < 1.0:
        raise StarGANError(f"optim.ema_beta must be in [0, 1), got {o.ema_beta}")


def _check_datasets(cfg: Config) -> None:
    labels = [d.label for d in cfg.datasets]
    if len(set(labels)) != len(labels):
        raise StarGANError(
            f"datasets of a joint run need distinct names, got {labels}; set data.name"
        )
    bad = [name for name in labels if not re.fullmatch(r"[A-Za-z0-9_-]+", name)]
    if bad:
        raise StarGANError(
            f"dataset names may use letters, digits, _ and - only (they appear in "
            f"--data NAME=PATH and NAME.domain): {bad}; set data.name"
        )
    schedule = cfg.train.dataset_schedule
    if len(labels) == 1 and schedule not in ((), (1,)):
        raise StarGANError("train.dataset_schedule is for joint runs (several datasets)")
    if schedule and (len(schedule) != len(labels) or min(schedule) < 1):
        raise StarGANError(
            f"train.dataset_schedule needs one count >= 1 per dataset ({', '.join(labels)}), "
            f"got {','.join(map(str, schedule))}"
        )


def _check_device(name: str) -> None:
    import torch

    if name in ("auto", "cpu"):
        return
    try:
        device = torch.device(name)
    except RuntimeError as err:
        raise StarGANError(f"train.device must be auto, cpu or cuda[:N] (got {name!r})") from err
    if device.type != "cuda":
        raise StarGANError(f"train.device must be auto, cpu or cuda[:N] (got {name!r})")
    if not torch.cuda.is_available():
        raise StarGANError(f"train.device {name}: CUDA is not available on this machine")
    if device.index is not None and device.index >= torch.cuda.device_count():
        raise StarGANError(f"train.device {name}: only {torch.cuda.device_count()} GPU(s)")


# ---------------------------------------------------------------- overrides
def apply_overrides(cfg: Config, assignments: list[str]) -> Config:
    """Apply ``section.key=value`` strings; unknown or ill-typed keys raise StarGANError,
    and so does a change of ``model.arch``: each family has its own paper defaults (losses,
    optimiser, schedule), which a v1 preset switched to v2 would silently lack."""
    arch = cfg.model.arch
    for text in assignments:
        key, sep, raw = text.partition("=")
        if not sep:
            raise StarGANError(f"--set expects key=value, got {text!r}")
        parts = key.strip().split(".")
        if len(parts) == 3 and parts[0] == "data":
            cfg = _set_dataset_key(cfg, parts[1], parts[2:], raw.strip(), key.strip())
        else:
            cfg = _set_path(cfg, parts, raw.strip(), key.strip())
    if cfg.model.arch != arch:
        from stargan.presets import PRESETS  # presets import this module

        names = [n for n, make in PRESETS.items() if make().model.arch == cfg.model.arch]
        raise StarGANError(
            f"model.arch={cfg.model.arch} on the {arch} preset {cfg.name!r} would keep its "
            f"{arch} losses and schedule; start from a {cfg.model.arch} preset: " + ", ".join(names)
        )
    return cfg


def _set_dataset_key(cfg: Config, label: str, parts: list[str], raw: str, key: str) -> Config:
    """``data.NAME.key=value``: a key of the dataset called NAME (joint runs)."""
    labels = [d.label for d in cfg.datasets]
    if label not in labels:
        raise StarGANError(f"{key!r}: no dataset named {label!r}; datasets: {', '.join(labels)}")
    i = labels.index(label)
    changed = _set_path(cfg.datasets[i], parts, raw, key)
    if i == 0:
        return replace(cfg, data=changed)
    return replace(cfg, joint=cfg.joint[: i - 1] + (changed,) + cfg.joint[i:])


def valid_keys(cls: type = Config, prefix: str = "") -> list[str]:
    out = []
    for f in fields(cls):
        hint = typing.get_type_hints(cls)[f.name]
        if _dataclass_tuple(hint):
            out.append(f"{prefix}data.NAME.<key> (joint datasets)")
        elif is_dataclass(hint):
            out += valid_keys(hint, f"{prefix}{f.name}.")
        else:
            out.append(f"{prefix}{f.name}")
    return out


def _set_path(obj: Any, parts: list[str], raw: str, full_key: str) -> Any:
    hints = typing.get_type_hints(type(obj))
    name = parts[0]
    if name not in hints:
        raise _unknown_key(full_key)
    hint = hints[name]
    if is_dataclass(hint):
        if len(parts) == 1:
            raise StarGANError(f"{full_key!r} is a section; set one of its keys, e.g. {name}.x=1")
        return replace(obj, **{name: _set_path(getattr(obj, name), parts[1:], raw, full_key)})
    if len(parts) != 1:
        raise _unknown_key(full_key)
    return replace(obj, **{name: parse_value(hint, raw, full_key)})


def _unknown_key(key: str) -> StarGANError:
    close = difflib.get_close_matches(key, valid_keys(), n=3, cutoff=0.6)
    hint = f" (did you mean {', '.join(close)}?)" if close else ""
    return StarGANError(f"unknown config key {key!r}{hint}; valid keys: {', '.join(valid_keys())}")


def parse_value(hint: Any, raw: str, key: str) -> Any:
    try:
        if hint is bool:
            low = raw.lower()
            if low not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError
            return low in ("true", "1", "yes")
        if hint is int:
            return int(raw)
        if hint is float:
            return float(raw)
        if hint is str:
            return raw
        if typing.get_origin(hint) is tuple and not _dataclass_tuple(hint):
            item = int if typing.get_args(hint)[0] is int else str
            return tuple(item(p.strip()) for p in raw.split(",") if p.strip())
    except ValueError:
        pass
    else:
        raise StarGANError(f"config key {key!r} has unsupported type {hint}")
    raise StarGANError(f"config key {key!r} expects {_type_name(hint)}, got {raw!r}")


def _type_name(hint: Any) -> str:
    return getattr(hint, "__name__", str(hint))


def from_dict(cls: type, d: Any, where: str = "config") -> Any:
    """Build dataclass ``cls`` from JSON data, checking every key and value type."""
    if not isinstance(d, dict):
        raise StarGANError(f"{where}: expected an object, got {type(d).__name__}")
    hints = typing.get_type_hints(cls)
    unknown = set(d) - set(hints)
    if unknown:
        raise StarGANError(f"{where}: unknown keys {sorted(unknown)} for {cls.__name__}")
    kwargs = {}
    for name, value in d.items():
        hint, key = hints[name], f"{where}.{name}"
        kwargs[name] = (
            from_dict(hint, value, key) if is_dataclass(hint) else _checked(hint, value, key)
        )
    return cls(**kwargs)


def _dataclass_tuple(hint: Any) -> bool:
    return typing.get_origin(hint) is tuple and is_dataclass(typing.get_args(hint)[0])


def _checked(hint: Any, value: Any, key: str) -> Any:
    """``value`` if it has the field's JSON type (a bool is not an int; an int is a float)."""
    if _dataclass_tuple(hint):
        if isinstance(value, list):
            item = typing.get_args(hint)[0]
            return tuple(from_dict(item, v, f"{key}[{i}]") for i, v in enumerate(value))
    elif typing.get_origin(hint) is tuple:
        item = typing.get_args(hint)[0]
        if isinstance(value, list) and all(
            isinstance(v, item) and not isinstance(v, bool) for v in value
        ):
            return tuple(value)
    elif hint is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    elif hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif isinstance(value, hint):
        return value
    raise StarGANError(f"{key} must be {_type_name(hint)}, got {value!r}")


def load_config(path: str | Path) -> Config:
    try:
        return validate(from_dict(Config, json.loads(Path(path).read_text()), str(path)))
    except (OSError, json.JSONDecodeError) as err:
        raise StarGANError(f"cannot read config {path}: {err}") from err


def read_config_file(path: str | Path) -> dict[str, Any]:
    """A JSON or TOML (by suffix) file holding config.json's schema, whole or in part."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise StarGANError(f"cannot read config {path}: {err}") from err
    if path.suffix.lower() == ".toml":
        try:
            import tomllib
        except ImportError as err:  # Python 3.10
            raise StarGANError(f"{path}: TOML configs need Python 3.11+; use JSON") from err
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as err:
            raise StarGANError(f"{path}: not valid TOML: {err}") from err
    else:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise StarGANError(f"{path}: not valid JSON: {err}") from err
    if not isinstance(data, dict):
        raise StarGANError(f"{path}: expected an object of config sections")
    return data


def overlay_config(base: Config, layer: dict[str, Any], where: str = "config") -> Config:
    """``base`` with ``layer``'s values: sections merge key by key, a ``joint`` list replaces
    base's joint datasets whole (each entry's missing keys take DataConfig's defaults)."""
    merged = _deep_merge(json.loads(base.to_json()), layer)
    try:
        return validate(from_dict(Config, merged))
    except StarGANError as err:
        raise StarGANError(f"{where}: {err}") from err


def _deep_merge(base: dict[str, Any], layer: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in layer.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out
