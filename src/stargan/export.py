"""Training checkpoint -> inference folder (config.json + model.safetensors)."""

from __future__ import annotations

from pathlib import Path

import torch

from stargan.config import load_config
from stargan.data import crop_of, dataset_spec
from stargan.errors import StarGANError
from stargan.models import build
from stargan.train.checkpoint import load_checkpoint, resolve_checkpoint
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
        "run_name": cfg.name,
        "step": state.step,
        "g_updates": state.g_updates,
        "source": str(ckpt),
    }
    return Translator(nets["G"], cfg.model, dataset_spec(cfg.data), nets["D"], meta)


def export_model(path: Path, out: Path, with_discriminator: bool = True) -> Path:
    return translator_from_checkpoint(path).save_pretrained(out, with_discriminator)
