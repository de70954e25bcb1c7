"""Model folders (``config.json`` + safetensors), what every family shares: the kinds, the
kind a folder declares, the one config reader (kind, format version, required keys), the
size bounds a config is checked against, weight save/load, and input preprocessing.

Each family's inference class owns its folder format (``Translator`` for ``stargan-v1``,
``StyleModel`` for ``stargan-v2``, ``PairwiseModel`` for ``cyclegan-pairs``);
:mod:`stargan.loading` maps a kind to its class. This module imports none of them.
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
from safetensors.torch import load_file
from safetensors.torch import save as safetensors_bytes

from stargan.atomic import write_bytes
from stargan.config import DataConfig, check_resize_filter
from stargan.data import crop_of
from stargan.data.builtin import BUILTIN
from stargan.data.dataset import to_model_range, to_uint8
from stargan.errors import StarGANError
from stargan.images import center_crop_resize, pil_to_uint8_tensor, to_rgb

V1_KIND = "stargan-v1"
V2_KIND = "stargan-v2"
PAIRS_KIND = "cyclegan-pairs"

# What to run a folder of each kind with, and how a run folder of it becomes a model folder.
USE = {V1_KIND: "stargan translate", V2_KIND: "stargan sample", PAIRS_KIND: "stargan cyclegan"}
EXPORT = {
    V1_KIND: "stargan export",
    V2_KIND: "stargan export",
    PAIRS_KIND: "stargan cyclegan export",
}

# Bounds on a config's sizes, far past any StarGAN: a crafted config.json must not make a
# loader allocate gigabytes before it fails.
MAX_WIDTH, MAX_IMAGE, MAX_REPEAT = 4096, 2048, 64


def declared_kind(path: str | Path) -> str | None:
    """The ``kind`` in a folder's config.json; None when there is none or it is unreadable
    (the v1 loader's errors then say what is wrong with the folder)."""
    try:
        config = json.loads((Path(path) / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    kind = config.get("kind") if isinstance(config, dict) else None
    return kind if isinstance(kind, str) else None


def read_config(
    path: Path,
    kind: str,
    newest: int,
    required: Sequence[str],
    run_markers: Sequence[str] = ("checkpoints", "state.json"),
) -> dict[str, Any]:
    """config.json of a model folder of ``kind``, checked: the folder exists, the file is a
    JSON object of that kind (a folder of another kind is named, with the command for it),
    ``format_version`` an integer no newer than ``newest``, every key of ``required`` there.
    A run or checkpoint folder (it holds one of ``run_markers``) is named as one, with the
    export command."""
    if not path.is_dir():
        raise StarGANError(f"model folder {path} does not exist")
    file = path / "config.json"
    is_run = any((path / marker).exists() for marker in run_markers)
    if not file.is_file():
        hint = f" (a run folder? export it first: {EXPORT[kind]} RUN -o MODEL)" if is_run else ""
        raise StarGANError(f"{path} has no config.json: not a stargan model folder{hint}")
    try:
        config = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise StarGANError(f"{file} is unreadable: {err}") from err
    found = config.get("kind") if isinstance(config, dict) else None
    if found != kind:
        if found is None and is_run:
            raise StarGANError(
                f"{path} is a training run, not a model folder: make one with "
                f"{EXPORT[kind]} {path} -o MODEL"
            )
        use = f"; use {USE[found]} for it" if found in USE else ""
        raise StarGANError(f"{path} holds a {found!r} model, not a {kind!r} model folder{use}")
    version = config.get("format_version", 0)
    if type(version) is not int:
        raise StarGANError(f"{file}: format_version must be an integer, got {version!r}")
    if version > newest:
        raise StarGANError(
            f"{path} has format_version {version}, newer than this stargan supports "
            f"({newest}); upgrade stargan"
        )
    missing = [key for key in required if key not in config]
    if missing:
        raise StarGANError(f"{file} lacks {missing[0]!r}: corrupt model folder")
    return config


def check_meta(config: Mapping[str, Any], where: str) -> None:
    """The preprocessing keys every kind of folder shares: integer crop and data seed, a
    known resize filter."""
    for key in ("crop", "data_seed"):
        if type(config.get(key, 0)) is not int:
            raise StarGANError(f"{where}: {key} must be an integer")
    check_resize_filter(config.get("resize_filter", "bicubic"), f"{where}: resize_filter")


def model_resize_filter(meta: Mapping[str, Any]) -> str:
    """The filter that resizes photos for a model: the one its training data were resized
    with (``resize_filter`` in its provenance); bicubic for folders that predate the key,
    whose data were all resized bicubic."""
    return check_resize_filter(meta.get("resize_filter", "bicubic"), "resize_filter")


def preprocess(
    images: Any, image_size: int, crop: int, resize_filter: str, device: torch.device | str
) -> torch.Tensor:
    """PIL image(s), uint8 numpy [H, W, 3] / [N, H, W, 3], or tensors -> [N, 3, S, S] in
    [-1, 1] on ``device``. PIL images are centre-cropped to ``crop`` (0: none) and resized
    to ``image_size`` with ``resize_filter``, as the training data were; arrays and
    tensors must already be that size. Float tensors are taken as already in [-1, 1]."""
    if isinstance(images, Image.Image):
        images = [images]
    if isinstance(images, Sequence) and images and isinstance(images[0], Image.Image):
        x = torch.stack(
            [
                pil_to_uint8_tensor(center_crop_resize(to_rgb(im), image_size, crop, resize_filter))
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
    if tuple(x.shape[2:]) != (image_size, image_size):
        raise StarGANError(
            f"images must be {image_size}x{image_size}, got "
            f"{x.shape[2]}x{x.shape[3]} (PIL inputs are resized for you)"
        )
    if x.dtype == torch.uint8:
        return to_model_range(x).to(device)
    return x.to(device, torch.float32)


def trained_on(meta: Mapping[str, Any]) -> list[str]:
    """The datasets (loader names) a model was trained on, from its folder's provenance;
    empty where the folder does not say."""
    sources = meta.get("sources") or [{"dataset": meta.get("dataset")}]
    return [str(s.get("dataset")) for s in sources if isinstance(s, dict) and s.get("dataset")]


def describe_model(meta: Mapping[str, Any], image_size: int) -> str:
    """One line: what the model was trained on and at what size, for users about to give
    it their own images (a model of the built-in rendered faces turns photos into colour
    noise)."""
    datasets = trained_on(meta)
    text = f"model: trained on {', '.join(datasets) or 'unknown data'} at {image_size} px"
    if datasets and all(d in BUILTIN for d in datasets):
        text += " (built-in rendered faces: real photos come out as noise)"
    return text


def save_weights(net: torch.nn.Module, path: Path) -> None:
    """As bytes, so the file follows the umask (save_file makes it owner-only: 0600)."""
    state = {k: v.detach().contiguous().cpu() for k, v in net.state_dict().items()}
    write_bytes(path, safetensors_bytes(state))


def load_weights(net: torch.nn.Module, path: Path) -> None:
    """Load a model folder's weights file; a missing or foreign file, and any NaN or Inf
    value (a diverged run: black images), is a StarGANError naming the file and tensor.
    Weights stored in half precision (float16 or bfloat16: a bundled model at half the
    size) load too: load_state_dict copies each tensor into the net's own float32 one,
    so the net computes in float32 as ever (tests/test_bundled.py holds it to that)."""
    try:
        state = load_file(str(path))
        net.load_state_dict(state)
    except FileNotFoundError as err:
        raise StarGANError(f"{path} is missing: corrupt model folder") from err
    except (SafetensorError, RuntimeError, OSError) as err:
        raise StarGANError(f"{path} does not hold this model's weights: {str(err)[:200]}") from err
    check_finite(state, path)


def check_finite(state: dict[str, torch.Tensor], path: Path) -> None:
    """Refuse weights with NaN or Inf values, naming the first such tensor."""
    for name, tensor in state.items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            bad = "NaN" if bool(torch.isnan(tensor).any()) else "Inf"
            raise StarGANError(
                f"{path}: tensor {name!r} holds {bad} values (the training run diverged?)"
            )


def like_input(images: Any, y: torch.Tensor) -> Any:
    """Model output ``y`` ([-1, 1]) in the form ``images`` came in: uint8 or float tensor,
    numpy array(s), PIL image(s)."""
    if isinstance(images, torch.Tensor):
        return to_uint8(y) if images.dtype == torch.uint8 else y
    arr = to_uint8(y).permute(0, 2, 3, 1).cpu().numpy()
    if isinstance(images, np.ndarray):
        return arr[0] if images.ndim == 3 else arr
    pils = [Image.fromarray(a) for a in arr]
    return pils[0] if isinstance(images, Image.Image) else pils


def data_provenance(datasets: Sequence[DataConfig]) -> dict[str, Any]:
    """The keys of a model folder's config.json that say what it was trained on and how its
    inputs are prepared: the first dataset's at the top level (what evaluation reads), and
    every dataset under ``sources``."""
    first = datasets[0]
    return {
        "dataset": first.dataset,
        "data_seed": first.seed,
        "crop": crop_of(first),
        "resize_filter": first.resize_filter,
        "sources": [
            {
                "name": d.label,
                "dataset": d.dataset,
                "data_seed": d.seed,
                "crop": crop_of(d),
                "resize_filter": d.resize_filter,
                "data": asdict(d),
            }
            for d in datasets
        ],
    }
