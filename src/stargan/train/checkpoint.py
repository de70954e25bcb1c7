"""Training checkpoints: one folder per step, written atomically, resumed exactly.

Layout of ``<run>/checkpoints/step-0000100/``::

    state.json          step, G updates, format version, the datasets' label specs
    config.json         the run's resolved config
    G.safetensors       generator weights (unwrapped module state_dict)
    D.safetensors       discriminator weights
    optim.pt            optimizer state dicts (tensors and numbers only; read weights_only)
    rng.pt              torch / CUDA RNG states of the process

The folder is written as ``.tmp-step-.../`` and renamed when complete, so a crash while
saving leaves the previous checkpoint as the latest complete one.
"""

from __future__ import annotations

import json
import os
import pickle
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from stargan.config import Config
from stargan.errors import StarGANError

FORMAT_VERSION = 1
_PREFIX = "step-"
_STEP_RE = re.compile(r"^step-\d+$")


@dataclass
class TrainState:
    step: int  # iterations done (each one D update)
    g_updates: int  # generator updates done
    # the logged losses of the steps since the last stats.jsonl row (a checkpoint made
    # between two log steps carries them, so the row after a resume averages the same steps)
    log_window: list[dict[str, float]] = field(default_factory=list)


def _write_tensors(tensors: dict[str, torch.Tensor], path: Path) -> None:
    save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, str(path))


def save_checkpoint(
    ckpt_root: Path,
    state: TrainState,
    cfg: Config,
    nets: dict[str, nn.Module],
    optims: dict[str, torch.optim.Optimizer],
    keep: int,
    labels: list[dict[str, Any]] | None = None,
    scalers: dict[str, torch.amp.GradScaler] | None = None,
) -> Path:
    """Write a checkpoint; ``labels``: the run's label layout (``LabelLayout.to_dict``),
    so export needs no access to the training data; ``scalers``: fp16 loss scalers (saved
    beside the optimizers)."""
    final = ckpt_root / f"{_PREFIX}{state.step:07d}"
    tmp = ckpt_root / f".tmp-{final.name}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for name, net in nets.items():
        _write_tensors(net.state_dict(), tmp / f"{name}.safetensors")
    states = {k: o.state_dict() for k, o in optims.items()}
    states |= {f"scaler/{k}": sc.state_dict() for k, sc in (scalers or {}).items()}
    torch.save(states, tmp / "optim.pt")
    rng = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        rng["cuda"] = torch.cuda.get_rng_state_all()
    torch.save(rng, tmp / "rng.pt")
    (tmp / "config.json").write_text(cfg.to_json())
    meta = {"format_version": FORMAT_VERSION, "step": state.step, "g_updates": state.g_updates}
    if labels is not None:
        meta["labels"] = labels
    if state.log_window:
        meta["log_window"] = state.log_window
    (tmp / "state.json").write_text(json.dumps(meta))
    _fsync_dir(tmp)
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    _fsync_dir(ckpt_root)
    prune_checkpoints(ckpt_root, keep)
    return final


def _fsync_dir(path: Path) -> None:
    for f in path.iterdir() if path.is_dir() else []:
        if f.is_file():
            with open(f, "rb") as fh:
                os.fsync(fh.fileno())
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def list_checkpoints(ckpt_root: Path) -> list[Path]:
    if not ckpt_root.is_dir():
        return []
    done = [
        p
        for p in ckpt_root.iterdir()
        if p.is_dir() and _STEP_RE.match(p.name) and (p / "state.json").exists()
    ]
    return sorted(done, key=lambda p: int(p.name[len(_PREFIX) :]))


def prune_checkpoints(ckpt_root: Path, keep: int) -> None:
    for old in list_checkpoints(ckpt_root)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    for tmp in ckpt_root.glob(".tmp-*"):
        shutil.rmtree(tmp, ignore_errors=True)


def resolve_checkpoint(path: Path) -> Path:
    """A checkpoint folder, or the latest complete checkpoint of a run folder."""
    if (path / "state.json").exists():
        return path
    found = list_checkpoints(path / "checkpoints")
    if not found:
        raise StarGANError(f"no complete checkpoint in {path}")
    return found[-1]


def load_checkpoint(
    ckpt: Path,
    nets: dict[str, nn.Module],
    optims: dict[str, torch.optim.Optimizer] | None,
    device: torch.device,
    scalers: dict[str, torch.amp.GradScaler] | None = None,
) -> TrainState:
    """Load weights (and optimizers, RNG) in place; returns the step to continue from.
    ``scalers`` missing from the checkpoint (a run continued in fp16) start afresh."""
    try:
        meta = json.loads((ckpt / "state.json").read_text())
        if meta.get("format_version", 0) > FORMAT_VERSION:
            raise StarGANError(
                f"checkpoint {ckpt} has format {meta['format_version']}, newer than this "
                f"stargan ({FORMAT_VERSION}); upgrade stargan"
            )
        for name, net in nets.items():
            net.load_state_dict(load_file(str(ckpt / f"{name}.safetensors"), device=str(device)))
        if optims is not None:
            states = _torch_load(ckpt / "optim.pt", device)
            for name, opt in optims.items():
                opt.load_state_dict(states[name])
            for name, scaler in (scalers or {}).items():
                if f"scaler/{name}" in states:
                    scaler.load_state_dict(states[f"scaler/{name}"])
            rng = _torch_load(ckpt / "rng.pt", torch.device("cpu"))
            torch.set_rng_state(rng["torch"])
            if "cuda" in rng and torch.cuda.is_available():
                torch.cuda.set_rng_state_all(rng["cuda"])
    except StarGANError:
        raise
    except (
        OSError,
        KeyError,
        RuntimeError,
        ValueError,
        json.JSONDecodeError,
        SafetensorError,
        pickle.UnpicklingError,
    ) as err:
        raise StarGANError(f"checkpoint {ckpt} is unreadable or incomplete: {err}") from err
    return TrainState(
        step=int(meta["step"]),
        g_updates=int(meta["g_updates"]),
        log_window=_log_window(meta.get("log_window", []), ckpt),
    )


def _log_window(rows: Any, ckpt: Path) -> list[dict[str, float]]:
    """state.json's log_window: a list of {loss name: number}; anything else is an error."""
    ok = isinstance(rows, list) and all(
        isinstance(r, dict)
        and all(isinstance(k, str) and isinstance(v, int | float) for k, v in r.items())
        for r in rows
    )
    if not ok:
        raise StarGANError(f"checkpoint {ckpt}: state.json has a malformed log_window")
    return [{k: float(v) for k, v in r.items()} for r in rows]


def _torch_load(path: Path, device: torch.device) -> Any:
    # weights_only: refuses anything but tensors, numbers, strings and containers.
    return torch.load(path, map_location=device, weights_only=True)
