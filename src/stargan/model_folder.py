"""Model folders (``config.json`` + safetensors): the kinds, and the kind a folder declares.

Each family's inference class owns its folder format (``Translator`` for ``stargan-v1``,
``StyleModel`` for ``stargan-v2``, ``PairwiseModel`` for ``cyclegan-pairs``);
:mod:`stargan.loading` maps a kind to its class. This module imports none of them.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
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
from stargan.config import DataConfig
from stargan.data import crop_of
from stargan.data.dataset import to_uint8
from stargan.errors import StarGANError

V1_KIND = "stargan-v1"
V2_KIND = "stargan-v2"
PAIRS_KIND = "cyclegan-pairs"


def declared_kind(path: str | Path) -> str | None:
    """The ``kind`` in a folder's config.json; None when there is none or it is unreadable
    (the v1 loader's errors then say what is wrong with the folder)."""
    try:
        config = json.loads((Path(path) / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    kind = config.get("kind") if isinstance(config, dict) else None
    return kind if isinstance(kind, str) else None


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
