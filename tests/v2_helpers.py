"""Tiny StarGAN v2 models and run checkpoints for the inference tests (stylemodel, sample,
import of official checkpoints), built without training."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from stargan.config import Config, DataConfig, ModelConfig
from stargan.data.joint import LabelLayout
from stargan.data.labels import LabelSpec
from stargan.models.v2 import build_v2_config, he_init_
from stargan.stylemodel import StyleModel
from stargan.train.checkpoint import TrainState, save_checkpoint

SIZE = 16
DOMAINS = ("female", "male")
SPEC = LabelSpec(DOMAINS, "categorical")


def tiny_cfg(size: int = SIZE, w_hpf: float = 0.0, domains: int = len(DOMAINS)) -> ModelConfig:
    return ModelConfig(
        arch="v2",
        image_size=size,
        c_dim=domains,
        latent_dim=4,
        style_dim=8,
        mapping_dim=16,
        max_conv_dim=16,
        base_dim=8,
        w_hpf=w_hpf,
    )


def tiny_nets(cfg: ModelConfig | None = None, seed: int = 0) -> dict[str, nn.Module]:
    """G, F, E, D with He init (PyTorch's default init gives near-constant styles)."""
    torch.manual_seed(seed)
    return {k: he_init_(net) for k, net in build_v2_config(cfg or tiny_cfg()).items()}


def tiny_model(seed: int = 0, meta: dict | None = None) -> StyleModel:
    nets = tiny_nets(seed=seed)
    meta = {"dataset": "faces-sex", "data_seed": 0, "crop": 0} if meta is None else meta
    return StyleModel(nets["G"], nets["F"], nets["E"], tiny_cfg(), SPEC, nets["D"], meta)


def images(n: int, seed: int = 1, size: int = SIZE) -> torch.Tensor:
    """Float images [n, 3, size, size] in [-1, 1]."""
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def write_run(root: Path, step: int = 20) -> dict[str, nn.Module]:
    """A v2 run folder with one checkpoint as the trainer writes it (G, F, E, D and the
    running averages G_ema, F_ema, E_ema, which differ from the trained ones here)."""
    cfg = Config(
        name="tiny-v2",
        model=tiny_cfg(),
        data=DataConfig(dataset="faces-sex", num_train=64, num_test=16),
    )
    nets = tiny_nets(seed=0)
    ema = tiny_nets(seed=1)
    nets.update({f"{k}_ema": ema[k] for k in ("G", "F", "E")})
    layout = LabelLayout.single(SPEC, "faces-sex")
    root.mkdir(parents=True, exist_ok=True)
    (root / "config.json").write_text(cfg.to_json())
    state = TrainState(step=step, g_updates=step)
    save_checkpoint(root / "checkpoints", state, cfg, nets, {}, 3, layout.to_dict())
    return nets
