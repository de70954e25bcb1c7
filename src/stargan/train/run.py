"""From a config to a finished run folder: resolve, load data, train, resume."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import torch

from stargan.config import Config, apply_overrides, load_config, validate
from stargan.data import check_data_config, load_dataset
from stargan.errors import StarGANError
from stargan.train.checkpoint import list_checkpoints, resolve_checkpoint
from stargan.train.loop import Trainer
from stargan.train.rundir import list_runs, new_run_dir


def prepare_config(cfg: Config, overrides: list[str] = ()) -> Config:
    """Apply overrides, fill c_dim from the data's labels, validate."""
    cfg = apply_overrides(cfg, list(overrides))
    spec = check_data_config(cfg.data, cfg.model.image_size)
    if cfg.model.c_dim == 0:
        cfg = replace(cfg, model=replace(cfg.model, c_dim=spec.dim))
    elif cfg.model.c_dim != spec.dim:
        raise StarGANError(
            f"model.c_dim {cfg.model.c_dim} does not match the data's "
            f"{spec.dim} domains ({', '.join(spec.names)})"
        )
    return validate(cfg)


def find_resume(outdir: Path, resume: str) -> Path:
    """``latest``: the newest run in outdir with a complete checkpoint; else a path."""
    if resume != "latest":
        return resolve_checkpoint(Path(resume))
    for run in reversed(list_runs(outdir)):
        found = list_checkpoints(run / "checkpoints")
        if found:
            return found[-1]
    raise StarGANError(f"--resume latest: no run with a checkpoint under {outdir}")


def run_training(
    cfg: Config,
    outdir: Path,
    resume: str | None = None,
    overrides: list[str] = (),
    progress: bool = True,
) -> Path:
    """Train (or continue) a run; returns its folder. The resolved config is written to
    ``config.json`` before step 0."""
    if resume:
        ckpt = find_resume(outdir, resume)
        run_dir = ckpt.parent.parent
        cfg = prepare_config(load_config(ckpt / "config.json"), overrides)
    else:
        cfg = prepare_config(cfg, overrides)
        ckpt = None
    if cfg.train.threads > 0:
        torch.set_num_threads(cfg.train.threads)
    train_set = load_dataset(cfg.data, cfg.model.image_size, "train", progress)
    sample_set = load_dataset(cfg.data, cfg.model.image_size, "test", progress)
    if ckpt is None:
        run_dir = new_run_dir(outdir, cfg.name)
    trainer = Trainer(cfg, run_dir, train_set, sample_set)
    if ckpt is not None:
        trainer.resume(ckpt)
        _drop_stats_after(run_dir / "stats.jsonl", trainer.state.step)
        if progress:
            print(f"resumed {run_dir} at iteration {trainer.state.step}")
    else:
        _write_summary(run_dir, train_set.summary())
    (run_dir / "config.json").write_text(cfg.to_json())
    trainer.fit(progress=progress)
    return run_dir


def _drop_stats_after(path: Path, step: int) -> None:
    """A run killed after its last checkpoint logged steps it will now redo: forget them."""
    if not path.exists():
        return
    lines = path.read_text().splitlines(keepends=True)
    kept = [line for line in lines if _logged_step(line) <= step]
    if len(kept) != len(lines):
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text("".join(kept))
        tmp.replace(path)


def _logged_step(line: str) -> int:
    try:
        return int(json.loads(line)["step"])
    except (ValueError, KeyError, TypeError):
        return 1 << 62  # a torn last line from a crash: drop it


def _write_summary(run_dir: Path, summary: dict[str, int]) -> None:
    (run_dir / "data_summary.json").write_text(json.dumps(summary, indent=2))
