"""Training checkpoint -> inference folder: v1 ``config.json`` + ``model.safetensors``
(translate.py), v2 ``config.json`` + G, F, E weights (stylemodel.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from stargan.config import Config, load_config
from stargan.data.joint import LabelLayout
from stargan.errors import StarGANError
from stargan.model_folder import data_provenance
from stargan.models import build
from stargan.stylemodel import StyleModel, is_style_model
from stargan.train.checkpoint import TrainState, load_checkpoint, resolve_checkpoint
from stargan.train.run import label_layout
from stargan.translate import Translator


def style_model_from_checkpoint(
    path: Path,
    device: str = "cpu",
    fan_path: str | Path | None = None,
    precision: str = "fp32",
) -> StyleModel:
    """A v2 run's latest checkpoint (or a given checkpoint folder) as a StyleModel: the
    running-average networks G_ema, F_ema, E_ema (what the official code samples with) and
    D. w_hpf > 0: with the FAN of ``fan_path``, else of the run's ``model.fan_path``.
    ``precision``: G's arithmetic (:mod:`stargan.inference_precision`)."""
    return _style_model(*_checkpoint(path), device, fan_path, precision)


def export_model(path: Path, out: Path, with_discriminator: bool = True) -> Path:
    """Write the inference folder of a run (its latest checkpoint) or checkpoint folder:
    v1 runs a ``stargan-v1`` folder (translate.py), v2 runs a ``stargan-v2`` folder of
    the running-average networks (stylemodel.py)."""
    ckpt, cfg = _checkpoint(path)
    load = _style_model if cfg.model.arch == "v2" else _translator
    return load(ckpt, cfg).save_pretrained(out, with_discriminator)


def _translator(ckpt: Path, cfg: Config, device: str = "cpu") -> Translator:
    if cfg.model.arch != "v1":
        raise StarGANError(f"{ckpt} is a StarGAN {cfg.model.arch} run, not v1")
    nets = build(cfg.model)
    # with optim.g_ema_beta, G's running average is the model (as StarGAN v2 samples)
    g_name = "G_ema" if cfg.optim.g_ema_beta > 0 else "G"
    state = load_checkpoint(ckpt, {g_name: nets["G"], "D": nets["D"]}, None, torch.device(device))
    return Translator(nets["G"], cfg.model, _layout(ckpt, cfg), nets["D"], _meta(cfg, state, ckpt))


def _style_model(
    ckpt: Path,
    cfg: Config,
    device: str = "cpu",
    fan_path: str | Path | None = None,
    precision: str = "fp32",
) -> StyleModel:
    if cfg.model.arch != "v2":
        raise StarGANError(
            f"{ckpt} is a StarGAN {cfg.model.arch} run; this needs a v2 run "
            f"(v1: stargan export, then stargan translate)"
        )
    nets = build(cfg.model)
    # the checkpoint's running averages (G_ema.safetensors ...) into the networks G, F, E
    ema = {"G_ema": nets["G"], "F_ema": nets["F"], "E_ema": nets["E"], "D": nets["D"]}
    state = load_checkpoint(ckpt, ema, None, torch.device(device))
    spec = _layout(ckpt, cfg).specs[0]
    meta = _meta(cfg, state, ckpt)
    model = StyleModel(
        nets["G"], nets["F"], nets["E"], cfg.model, spec, nets["D"], meta, precision=precision
    )
    return model.use_fan(fan_path)


def _checkpoint(path: Path) -> tuple[Path, Config]:
    """The checkpoint folder ``path`` names (a run: its latest) and its config."""
    if not path.exists():
        raise StarGANError(f"{path} does not exist")
    if is_style_model(path):
        raise StarGANError(
            f"{path} is already a StarGAN v2 model folder, not a run or checkpoint "
            f"(ONNX and TorchScript export are v1 only for now)"
        )
    ckpt = resolve_checkpoint(path)
    return ckpt, load_config(ckpt / "config.json")


def _meta(cfg: Config, state: TrainState, ckpt: Path) -> dict[str, Any]:
    """A model folder's provenance: data source and preprocessing, run and step."""
    return {
        **data_provenance(cfg.datasets),
        "run_name": cfg.name,
        "step": state.step,
        "g_updates": state.g_updates,
        "source": str(ckpt),
    }


def _layout(ckpt: Path, cfg: Config) -> LabelLayout:
    """The label layout the checkpoint recorded; older checkpoints: from the config."""
    try:
        labels = json.loads((ckpt / "state.json").read_text()).get("labels")
    except (OSError, ValueError, AttributeError):
        labels = None
    return LabelLayout.from_dict(labels) if labels is not None else label_layout(cfg)
