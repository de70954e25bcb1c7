"""Training checkpoint -> inference folder (config.json + model.safetensors)."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import torch

from stargan.config import Config, load_config
from stargan.data import crop_of
from stargan.data.joint import LabelLayout
from stargan.errors import StarGANError
from stargan.models import build
from stargan.train.checkpoint import load_checkpoint, resolve_checkpoint
from stargan.train.run import label_layout
from stargan.translate import Translator


def translator_from_checkpoint(path: Path, device: str = "cpu") -> Translator:
    """Load G and D of a run folder's latest checkpoint (or a given checkpoint folder)."""
    if not path.exists():
        raise StarGANError(f"{path} does not exist")
    ckpt = resolve_checkpoint(path)
    cfg = load_config(ckpt / "config.json")
    nets = build(cfg.model)
    state = load_checkpoint(ckpt, nets, None, torch.device(device))
    meta = {
        "dataset": cfg.data.dataset,
        "data_seed": cfg.data.seed,
        "crop": crop_of(cfg.data),
        "sources": [
            {
                "name": d.label,
                "dataset": d.dataset,
                "data_seed": d.seed,
                "crop": crop_of(d),
                "data": asdict(d),
            }
            for d in cfg.datasets
        ],
        "run_name": cfg.name,
        "step": state.step,
        "g_updates": state.g_updates,
        "source": str(ckpt),
    }
    return Translator(nets["G"], cfg.model, _layout(ckpt, cfg), nets["D"], meta)


def _layout(ckpt: Path, cfg: Config) -> LabelLayout:
    """The label layout the checkpoint recorded; older checkpoints: from the config."""
    try:
        labels = json.loads((ckpt / "state.json").read_text()).get("labels")
    except (OSError, ValueError, AttributeError):
        labels = None
    return LabelLayout.from_dict(labels) if labels is not None else label_layout(cfg)


def export_model(path: Path, out: Path, with_discriminator: bool = True) -> Path:
    return translator_from_checkpoint(path).save_pretrained(out, with_discriminator)
