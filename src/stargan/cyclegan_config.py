"""Typed, frozen configuration of the pairwise CycleGAN baseline, and its presets.

The StarGAN paper (Choi et al. 2018, Table 3) compares one StarGAN against pairwise
translators: for k domains, one CycleGAN (Zhu et al. 2017) per unordered pair of domains,
k(k-1)/2 CycleGANs holding k(k-1) generators. :class:`CycleGANConfig` describes such a
set: the networks of one CycleGAN, its losses and optimiser, the (categorical) data, and
the training budget, either per pair or in total over all pairs (split evenly), so that
the set can be given the budget of one StarGAN run.
"""

from __future__ import annotations

import dataclasses
import json
import typing
from dataclasses import dataclass, field, is_dataclass, replace
from pathlib import Path
from typing import Any

from stargan.config import (
    DataConfig,
    check_resize_filter,
    from_dict,
    parse_value,  # the --set value parser, shared
    valid_keys,
)
from stargan.errors import StarGANError
from stargan.presets import CK_PLUS, OFFICIAL_RESIZE, RAFD


@dataclass(frozen=True)
class CycleModelConfig:
    """One CycleGAN's networks (CycleGAN paper, appendix 7.2). G: c7s1-``g_dim``,
    d(2 g_dim), d(4 g_dim), ``g_blocks`` residual blocks (paper: 6 at 128 px, 9 at 256 px),
    u(2 g_dim), u(g_dim), c7s1-3. D: C``d_dim``-... with ``d_layers`` stride-2 4x4 convs,
    then one stride-1 C and a 1-channel conv; ``d_layers=3`` is the paper's
    C64-C128-C256-C512 70x70 PatchGAN."""

    image_size: int = 128
    g_dim: int = 64
    g_blocks: int = 6
    d_dim: int = 64
    d_layers: int = 3


@dataclass(frozen=True)
class CycleLossConfig:
    """``lambda_cyc``: weight of the cycle loss (paper 10); ``identity_ratio``: weight of
    the identity loss as a fraction of ``lambda_cyc`` (paper 0.5: 0.5 lambda)."""

    lambda_cyc: float = 10.0
    identity_ratio: float = 0.5


@dataclass(frozen=True)
class CycleOptimConfig:
    """Adam for G and F together and for D_X and D_Y together (paper: 2e-4, betas 0.5 and
    0.999); ``pool_size``: past fakes each D also sees (paper 50; 0: none)."""

    lr: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    pool_size: int = 50


@dataclass(frozen=True)
class CycleTrainConfig:
    """One iteration updates a pair's G and F once and its D_X and D_Y once. Exactly one
    budget is set: ``budget_iters``, the total over all pairs (each pair gets
    ``budget_iters // pairs``: the budget of one StarGAN run of that many iterations),
    or ``pair_iters`` per pair. Each pair keeps its rate for its first half and decays it
    linearly to 0 over its second half (paper: 100 + 100 epochs)."""

    batch_size: int = 1
    budget_iters: int = 0
    pair_iters: int = 0
    seed: int = 0
    device: str = "auto"
    threads: int = 0
    log_every: int = 50
    sample_every: int = 1000
    ckpt_every: int = 1000
    keep_ckpts: int = 2


@dataclass(frozen=True)
class CycleGANConfig:
    """``compare_to``: the StarGAN preset this set is compared with at an equal budget
    (its networks, given this data's domains, are what ``stargan cyclegan params`` counts
    beside the set)."""

    name: str = "cyclegan"
    model: CycleModelConfig = field(default_factory=CycleModelConfig)
    loss: CycleLossConfig = field(default_factory=CycleLossConfig)
    optim: CycleOptimConfig = field(default_factory=CycleOptimConfig)
    data: DataConfig = field(default_factory=lambda: DataConfig(dataset="faces-expr"))
    train: CycleTrainConfig = field(default_factory=CycleTrainConfig)
    compare_to: str = ""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)


def load_cycle_config(path: Path) -> CycleGANConfig:
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise StarGANError(f"cannot read config {path}: {err}") from err
    return validate(from_dict(CycleGANConfig, data, str(path)))


# ---------------------------------------------------------------- budget
def domain_pairs(k: int) -> list[tuple[int, int]]:
    """The k(k-1)/2 unordered pairs (i, j), i < j, of k domains, in a fixed order."""
    return [(i, j) for i in range(k) for j in range(i + 1, k)]


def iters_per_pair(cfg: CycleGANConfig, k: int) -> int:
    """Iterations each of the k(k-1)/2 pairs trains for."""
    t, n_pairs = cfg.train, len(domain_pairs(k))
    if t.pair_iters:
        return t.pair_iters
    if t.budget_iters < n_pairs:
        raise StarGANError(
            f"train.budget_iters {t.budget_iters} is less than one iteration for each of "
            f"the {n_pairs} pairs of {k} domains"
        )
    return t.budget_iters // n_pairs


# ---------------------------------------------------------------- checks
def validate(cfg: CycleGANConfig) -> CycleGANConfig:
    """Reject values no run could use, with the field named."""
    m, t, o, loss = cfg.model, cfg.train, cfg.optim, cfg.loss
    positive = {
        "model.g_dim": m.g_dim,
        "model.d_dim": m.d_dim,
        "model.d_layers": m.d_layers,
        "train.batch_size": t.batch_size,
        "train.log_every": t.log_every,
        "train.sample_every": t.sample_every,
        "train.ckpt_every": t.ckpt_every,
        "train.keep_ckpts": t.keep_ckpts,
        "optim.lr": o.lr,
    }
    for key, value in positive.items():
        if value <= 0:
            raise StarGANError(f"{key} must be > 0 (got {value})")
    nonnegative = {
        "model.g_blocks": m.g_blocks,
        "optim.pool_size": o.pool_size,
        "loss.lambda_cyc": loss.lambda_cyc,
        "loss.identity_ratio": loss.identity_ratio,
        "train.threads": t.threads,
    }
    for key, value in nonnegative.items():
        if value < 0:
            raise StarGANError(f"{key} must be >= 0 (got {value})")
    _check_sizes(m)
    if (t.budget_iters > 0) == (t.pair_iters > 0) or min(t.budget_iters, t.pair_iters) < 0:
        raise StarGANError(
            "set exactly one budget: train.budget_iters (total over all pairs) or "
            f"train.pair_iters (per pair); got {t.budget_iters} and {t.pair_iters}"
        )
    if t.device not in ("auto", "cpu") and not t.device.startswith("cuda"):
        raise StarGANError(f"train.device must be auto, cpu or cuda[:N] (got {t.device!r})")
    check_resize_filter(cfg.data.resize_filter)
    return cfg


def _check_sizes(m: CycleModelConfig) -> None:
    # G: two stride-2 convs down and two transposed convs up give back the input size
    # only for multiples of 4. D: d_layers halvings, then two 4x4 stride-1 convs that
    # each take one pixel off, must leave at least one patch.
    if m.image_size % 4 or m.image_size < 16:
        raise StarGANError(f"model.image_size must be a multiple of 4, >= 16 (got {m.image_size})")
    if m.image_size // 2**m.d_layers < 3:
        raise StarGANError(
            f"model.d_layers {m.d_layers} halves {m.image_size} px below 3 px: the patch "
            f"discriminator's two stride-1 convs need 3 (use fewer layers)"
        )


# ---------------------------------------------------------------- overrides
def apply_overrides(
    cfg: CycleGANConfig, assignments: list[str] | tuple[str, ...]
) -> CycleGANConfig:
    """``section.key=value`` strings; unknown or ill-typed keys are StarGANErrors."""
    for text in assignments:
        key, sep, raw = text.partition("=")
        if not sep:
            raise StarGANError(f"--set expects key=value, got {text!r}")
        cfg = _set(cfg, key.strip().split("."), raw.strip(), key.strip())
    return cfg


def _set(obj: Any, parts: list[str], raw: str, full_key: str) -> Any:
    hints = typing.get_type_hints(type(obj))
    name = parts[0]
    if name not in hints or (len(parts) > 1) != is_dataclass(hints[name]):
        keys = [k for k in valid_keys(CycleGANConfig) if not k.startswith("data.NAME")]
        raise StarGANError(f"unknown config key {full_key!r}; valid keys: {', '.join(keys)}")
    if len(parts) > 1:
        return replace(obj, **{name: _set(getattr(obj, name), parts[1:], raw, full_key)})
    return replace(obj, **{name: parse_value(hints[name], raw, full_key)})


# ---------------------------------------------------------------- presets
def _tiny() -> CycleGANConfig:
    """Seconds on a CPU: 16 px built-in expressions (8 domains: 28 pairs), tiny nets."""
    return CycleGANConfig(
        name="cyclegan-tiny",
        model=CycleModelConfig(image_size=16, g_dim=4, g_blocks=1, d_dim=4, d_layers=2),
        optim=CycleOptimConfig(pool_size=4),
        data=DataConfig(dataset="faces-expr", num_train=96, num_test=16),
        train=CycleTrainConfig(
            batch_size=2, pair_iters=2, log_every=1, sample_every=2, ckpt_every=2
        ),
        compare_to="tiny",
    )


def _cpu(
    name: str, size: int, blocks: int, data: DataConfig, budget: int, compare_to: str
) -> CycleGANConfig:
    """A reduced CycleGAN for a CPU, sized as the StarGAN preset it is compared with:
    widths 32 (paper 64) and that preset's number of residual blocks, so that each
    generator is StarGAN's G without its label input (StarGAN's G is CycleGAN's ResNet
    G); the paper's 70x70-style D (C32-C64-C128-C256), losses, Adam and pool; batch 16 as
    that preset, so that an equal number of iterations is an equal number of images."""
    return CycleGANConfig(
        name=name,
        model=CycleModelConfig(image_size=size, g_dim=32, g_blocks=blocks, d_dim=32, d_layers=3),
        data=data,
        train=CycleTrainConfig(
            batch_size=16, budget_iters=budget, sample_every=200, ckpt_every=200
        ),
        compare_to=compare_to,
    )


def _faces_expr() -> CycleGANConfig:
    """Built-in expressions at 32 px (8 domains: 28 pairs, 56 generators), the budget of
    the 32 px demo network trained on them (7,000 iterations)."""
    data = DataConfig(dataset="faces-expr", num_train=12000, num_test=500)
    return _cpu("cyclegan-faces-expr", 32, 3, data, 7000, "demo")


def _ckplus() -> CycleGANConfig:
    """CK+48 (the RaFD stand-in) at 64 px: 7 expressions, 21 pairs, 42 generators, the
    budget of ``ckplus-v1`` (6,000 iterations)."""
    data = DataConfig(dataset="folders", name="ckplus", attrs=CK_PLUS, num_test=98)
    return _cpu("cyclegan-ckplus", 64, 4, data, 6000, "ckplus-v1")


def _rafd() -> CycleGANConfig:
    """The papers' settings on RaFD folders at 128 px (8 expressions, 56 generators):
    6 residual blocks, widths 64, batch 1, the iterations of one ``faces-expr-v1`` run."""
    data = DataConfig(
        dataset="folders",
        name="rafd",
        attrs=RAFD,
        crop=256,
        num_test=400,
        resize_filter=OFFICIAL_RESIZE,
    )
    return CycleGANConfig(
        name="cyclegan-rafd",
        data=data,
        train=CycleTrainConfig(budget_iters=200000, sample_every=2000, ckpt_every=2000),
        compare_to="faces-expr-v1",
    )


CYCLEGAN_PRESETS = {
    "cyclegan-tiny": _tiny,
    "cyclegan-faces-expr": _faces_expr,
    "cyclegan-ckplus": _ckplus,
    "cyclegan-rafd": _rafd,
}


def get_cycle_preset(name: str) -> CycleGANConfig:
    if name not in CYCLEGAN_PRESETS:
        raise StarGANError(f"unknown preset {name!r}; valid: {', '.join(CYCLEGAN_PRESETS)}")
    return CYCLEGAN_PRESETS[name]()


__all__ = [
    "CYCLEGAN_PRESETS",
    "CycleGANConfig",
    "CycleLossConfig",
    "CycleModelConfig",
    "CycleOptimConfig",
    "CycleTrainConfig",
    "apply_overrides",
    "domain_pairs",
    "get_cycle_preset",
    "iters_per_pair",
    "load_cycle_config",
    "validate",
]
