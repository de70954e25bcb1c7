"""Inference: an exported model folder as a ``Translator``.

Folder layout (``format_version`` 1)::

    config.json               kind, format_version, model config, label spec, preprocessing
    model.safetensors         generator G weights
    discriminator.safetensors optional: D, used only to estimate the input's own labels
                              (D_cls is trained on real images) when the caller gives none
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from stargan.config import ModelConfig, from_dict
from stargan.data.dataset import to_model_range, to_uint8
from stargan.data.labels import LabelSpec
from stargan.errors import StarGANError
from stargan.images import center_crop_resize, pil_to_uint8_tensor, to_rgb
from stargan.models.v1 import Discriminator, Generator

FORMAT_VERSION = 1
KIND = "stargan-v1"

Target = str | Mapping[str, float] | torch.Tensor


class Translator:
    """G(x, c) with the preprocessing of training. Batch in, batch out."""

    def __init__(
        self,
        G: Generator,
        model_cfg: ModelConfig,
        spec: LabelSpec,
        D: Discriminator | None = None,
        meta: dict[str, Any] | None = None,
    ) -> None:
        self.G = G.eval()
        self.D = D.eval() if D is not None else None
        self.model_cfg = model_cfg
        self.spec = spec
        self.meta = dict(meta or {})
        self.crop = int(self.meta.get("crop", 0))

    @property
    def device(self) -> torch.device:
        return next(self.G.parameters()).device

    @property
    def image_size(self) -> int:
        return self.model_cfg.image_size

    # ------------------------------------------------------------ save / load
    def save_pretrained(self, path: str | Path, with_discriminator: bool = True) -> Path:
        path = Path(path)
        try:
            path.mkdir(parents=True, exist_ok=True)
            config = {
                "format_version": FORMAT_VERSION,
                "kind": KIND,
                "model": asdict(self.model_cfg),
                "labels": self.spec.to_dict(),
                **self.meta,
            }
            _save_weights(self.G, path / "model.safetensors")
            if with_discriminator and self.D is not None:
                _save_weights(self.D, path / "discriminator.safetensors")
            else:  # never leave an earlier export's D beside this G
                (path / "discriminator.safetensors").unlink(missing_ok=True)
            (path / "config.json").write_text(json.dumps(config, indent=2))
        except OSError as err:
            raise StarGANError(f"cannot write model folder {path}: {err.strerror}") from err
        return path

    @classmethod
    def from_pretrained(cls, path: str | Path, device: str | torch.device = "cpu") -> Translator:
        path = Path(path)
        config = read_model_config(path)
        model_cfg, spec = _checked_model(path, config)
        G = Generator(model_cfg.c_dim, model_cfg.g_conv_dim, model_cfg.g_repeat_num)
        _load_weights(G, path / "model.safetensors")
        D = None
        if (path / "discriminator.safetensors").exists():
            D = Discriminator(
                model_cfg.image_size, model_cfg.c_dim, model_cfg.d_conv_dim, model_cfg.d_repeat_num
            )
            _load_weights(D, path / "discriminator.safetensors")
        meta = {
            k: v
            for k, v in config.items()
            if k not in ("format_version", "kind", "model", "labels")
        }
        return cls(G.to(device), model_cfg, spec, D.to(device) if D else None, meta)

    # ------------------------------------------------------------ inference
    def preprocess(self, images: Any) -> torch.Tensor:
        """PIL image(s), uint8 numpy [H, W, 3] / [N, H, W, 3], or tensors -> [N, 3, S, S]
        in [-1, 1]. Float tensors are taken as already in [-1, 1]."""
        if isinstance(images, Image.Image):
            images = [images]
        if isinstance(images, Sequence) and images and isinstance(images[0], Image.Image):
            x = torch.stack(
                [
                    pil_to_uint8_tensor(center_crop_resize(to_rgb(im), self.image_size, self.crop))
                    for im in images
                ]
            )
        elif isinstance(images, np.ndarray):
            arr = images[None] if images.ndim == 3 else images
            if arr.ndim != 4 or arr.shape[-1] != 3 or arr.dtype != np.uint8:
                raise StarGANError(
                    f"numpy images must be uint8 [N, H, W, 3], got {arr.dtype} {list(images.shape)}"
                )
            x = torch.from_numpy(np.ascontiguousarray(arr)).permute(0, 3, 1, 2)
        elif isinstance(images, torch.Tensor):
            x = images[None] if images.dim() == 3 else images
        else:
            raise StarGANError(f"unsupported image input {type(images).__name__}")
        if x.dim() != 4 or x.size(1) != 3:
            raise StarGANError(f"images must have shape [N, 3, H, W], got {list(x.shape)}")
        if tuple(x.shape[2:]) != (self.image_size, self.image_size):
            raise StarGANError(
                f"images must be {self.image_size}x{self.image_size}, got "
                f"{x.shape[2]}x{x.shape[3]} (PIL inputs are resized for you)"
            )
        if x.dtype == torch.uint8:
            return to_model_range(x).to(self.device)
        return x.to(self.device, torch.float32)

    @torch.no_grad()
    def estimate_labels(self, x: torch.Tensor) -> torch.Tensor:
        """The input's own labels c_org from D_cls (0/1 multi-label, one-hot categorical)."""
        if self.D is None:
            raise StarGANError(
                "this model folder has no discriminator.safetensors, so the "
                "input's own labels cannot be estimated; export it without "
                "--no-discriminator (Python: pass c_org=)"
            )
        _, logits = self.D(x)
        if self.spec.kind == "categorical":
            return torch.nn.functional.one_hot(logits.argmax(1), self.spec.dim).float()
        c = (logits > 0).float()
        for group in self.spec.exclusive_groups:
            cols = [self.spec.index(n) for n in group]
            best = logits[:, cols].argmax(1)
            keep = torch.nn.functional.one_hot(best, len(cols)).float()
            c[:, cols] = keep * c[:, cols].amax(1, keepdim=True)
        return c

    def target_labels(self, target: Target, c_org: torch.Tensor) -> torch.Tensor:
        if isinstance(target, torch.Tensor):
            c_trg = target.to(self.device, torch.float32)
            if c_trg.dim() == 1:
                c_trg = c_trg.expand(c_org.size(0), -1)
            if c_trg.shape != c_org.shape:
                raise StarGANError(
                    f"target labels must be [N, {self.spec.dim}], got {list(c_trg.shape)}"
                )
            return c_trg
        assignments = (
            self.spec.parse_assignments(target)
            if isinstance(target, str)
            else {k: float(v) for k, v in target.items()}
        )
        for name in assignments:
            self.spec.index(name)
        return self.spec.apply(c_org, assignments)

    @torch.no_grad()
    def translate(self, images: Any, target: Target, c_org: torch.Tensor | None = None) -> Any:
        """Translate ``images`` to ``target`` ("Blond_Hair=1,Male=0", a dict, or labels
        [N, c]). Unmentioned attributes keep the input's labels: ``c_org`` when given,
        else D_cls's estimate. Returns the input's kind: PIL (list), uint8 numpy, uint8
        tensor, or a float tensor in [-1, 1]."""
        x = self.preprocess(images)
        if c_org is None:
            c_org = (
                torch.zeros(x.size(0), self.spec.dim, device=self.device)
                if isinstance(target, torch.Tensor)
                else self.estimate_labels(x)
            )
        y = self.G(x, self.target_labels(target, c_org.to(self.device)))
        return _like_input(images, y)

    @torch.no_grad()
    def all_domains(
        self, x: torch.Tensor, c_org: torch.Tensor | None = None
    ) -> list[tuple[str, torch.Tensor]]:
        """Each input translated to every single-domain change: [(domain, [N, 3, S, S])]."""
        c_org = self.estimate_labels(x) if c_org is None else c_org.to(self.device)
        return [(name, self.G(x, c_trg)) for name, c_trg in self.spec.single_changes(c_org)]


def read_model_config(path: Path) -> dict[str, Any]:
    """config.json of a model folder, checked for kind and format version."""
    if not path.is_dir():
        raise StarGANError(f"model folder {path} does not exist")
    try:
        config = json.loads((path / "config.json").read_text())
    except FileNotFoundError as err:
        hint = (
            " (a run folder? export it first: stargan export RUN)"
            if (path / "checkpoints").is_dir()
            else ""
        )
        raise StarGANError(f"{path} has no config.json: not a stargan model folder{hint}") from err
    except (OSError, json.JSONDecodeError) as err:
        raise StarGANError(f"{path}/config.json is unreadable: {err}") from err
    if not isinstance(config, dict) or config.get("kind") != KIND:
        kind = config.get("kind") if isinstance(config, dict) else None
        raise StarGANError(f"{path} holds a {kind!r} model, not a {KIND!r} model folder")
    if not isinstance(config.get("format_version", 0), int):
        raise StarGANError(f"{path}/config.json: format_version must be an integer")
    if config.get("format_version", 0) > FORMAT_VERSION:
        raise StarGANError(
            f"{path} has format_version {config['format_version']}, newer than "
            f"this stargan supports ({FORMAT_VERSION}); upgrade stargan"
        )
    for key in ("model", "labels"):
        if key not in config:
            raise StarGANError(f"{path}/config.json lacks {key!r}: corrupt model folder")
    return config


MAX_WIDTH, MAX_IMAGE, MAX_REPEAT = 4096, 2048, 64  # far past any StarGAN; refuses absurd files


def _checked_model(path: Path, config: dict[str, Any]) -> tuple[ModelConfig, LabelSpec]:
    """Typed model config and label spec of a model folder, with sizes bounded before any
    network is built (a crafted config.json must not allocate gigabytes)."""
    where = f"{path}/config.json"
    model_cfg = from_dict(ModelConfig, config["model"], f"{where} model")
    try:
        spec = LabelSpec.from_dict(config["labels"])
    except StarGANError as err:
        raise StarGANError(f"{where}: {err}") from err
    m = model_cfg
    if (
        m.c_dim != spec.dim
        or not 0 < m.image_size <= MAX_IMAGE
        or not 0 < max(m.g_conv_dim, m.d_conv_dim) <= MAX_WIDTH
        or not 0 <= max(m.g_repeat_num, m.d_repeat_num) <= MAX_REPEAT
    ):
        raise StarGANError(f"{where}: model sizes out of range or c_dim != {spec.dim} labels")
    for key in ("crop", "data_seed"):
        if not isinstance(config.get(key, 0), int):
            raise StarGANError(f"{where}: {key} must be an integer")
    return model_cfg, spec


def _save_weights(net: torch.nn.Module, path: Path) -> None:
    save_file({k: v.detach().contiguous().cpu() for k, v in net.state_dict().items()}, str(path))


def _load_weights(net: torch.nn.Module, path: Path) -> None:
    try:
        net.load_state_dict(load_file(str(path)))
    except FileNotFoundError as err:
        raise StarGANError(f"{path} is missing: corrupt model folder") from err
    except (SafetensorError, RuntimeError, OSError) as err:
        raise StarGANError(f"{path} does not hold this model's weights: {str(err)[:200]}") from err


def _like_input(images: Any, y: torch.Tensor) -> Any:
    if isinstance(images, torch.Tensor):
        return to_uint8(y) if images.dtype == torch.uint8 else y
    arr = to_uint8(y).permute(0, 2, 3, 1).cpu().numpy()
    if isinstance(images, np.ndarray):
        return arr[0] if images.ndim == 3 else arr
    pils = [Image.fromarray(a) for a in arr]
    return pils[0] if isinstance(images, Image.Image) else pils
