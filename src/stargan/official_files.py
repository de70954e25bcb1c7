"""Official checkpoints read safely, and the provenance an imported model folder records:
what the v1 and v2 importers (``import_official``, ``import_official_v2``) share.

Pickles are read with ``torch.load(weights_only=True)``: one that needs anything but
tensors and plain containers is refused without running it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from stargan.config import DataConfig
from stargan.data.labels import LabelSpec
from stargan.errors import StarGANError
from stargan.model_folder import data_provenance
from stargan.weights import sha256_of

State = dict[str, torch.Tensor]


def existing_file(path: Path) -> Path:
    path = Path(path)
    if not path.is_file():
        what = "is not a file" if path.exists() else "does not exist"
        raise StarGANError(f"checkpoint {path} {what}")
    return path


def checked_state(state: Any, where: str, hint: str) -> State:
    """``state`` if it is a non-empty plain state dict (str -> tensor), else an error
    naming ``where`` (the file, or an entry of it) and what to pass instead (``hint``)."""
    if not isinstance(state, dict):
        raise StarGANError(
            f"{where} holds a {type(state).__name__}, not a state dict (name -> tensor)"
        )
    if not state:
        raise StarGANError(f"{where} is an empty state dict")
    for key, value in state.items():
        if not isinstance(key, str) or not isinstance(value, torch.Tensor):
            raise StarGANError(
                f"{where} is not a plain state dict: {key!r} holds a value of type "
                f"{type(value).__name__}, not a tensor ({hint})"
            )
    return dict(state)


def read_pickle(path: Path) -> Any:
    """A torch pickle read with ``weights_only=True``: tensors and plain containers only,
    nothing in it is run; any failure is one StarGANError saying why."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        # The restricted unpickler and the archive readers raise many types on a foreign
        # file (UnpicklingError, RuntimeError, KeyError, EOFError, ...); to the user each
        # means the same thing, so they become one message.
        raise StarGANError(f"{path} is not a plain PyTorch state dict: {_why(err)}") from err


def _why(err: Exception) -> str:
    needed = re.search(r"GLOBAL ([\w.]+)", str(err))
    if needed:
        return (
            f"its pickle needs {needed.group(1)}, which tensors never do (a whole pickled "
            f"model, or code); refused without running it"
        )
    # The restricted unpickler's messages open with advice to load unsafely; the cause
    # follows its "WeightsUnpickler error:" (e.g. "Unsupported operand 110").
    detail = str(err).partition("WeightsUnpickler error:")[2].strip() or str(err).strip()
    first = detail.splitlines()[0][:160] if detail else ""
    return f"unreadable ({type(err).__name__}{': ' + first if first else ''})"


def read_safetensors(path: Path) -> State:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as err:
        raise StarGANError(f"{path} is not a readable safetensors file: {err}") from err


def provenance(
    spec: LabelSpec, crop: int, files: Mapping[str, Path], origin: str
) -> dict[str, Any]:
    """Data source keys as export.py writes them (for data like the official code's:
    CelebA attributes, or one folder per domain, resized bilinear as its loaders do),
    ``source`` (the first file) and ``imported`` (``origin`` and each file's name and
    sha256)."""
    celeba = spec.kind != "categorical"
    data = DataConfig(
        dataset="celeba" if celeba else "folders",
        attrs=spec.names,
        crop=crop,
        # the official code's own test images, so that it is not scored on its training set
        test_split="official-code" if celeba else "paper",
        exclusive=tuple("|".join(g) for g in spec.exclusive_groups),
        # the official loaders' filter (torchvision's Resize of a PIL image), so that eval
        # and translate feed the model pixels like those it trained on
        resize_filter="bilinear",
    )
    return {
        **data_provenance([data]),
        "source": str(next(iter(files.values()))),
        "imported": {
            "from": origin,
            **{k: {"file": p.name, "sha256": sha256_of(p)} for k, p in files.items()},
        },
    }
