"""From a config to a finished run folder: resolve, load data, train, resume."""

from __future__ import annotations

import gc
import json
from dataclasses import replace
from pathlib import Path

import torch
import torch.distributed as dist

from stargan.config import Config, apply_overrides, load_config, validate
from stargan.data import check_data_config, load_dataset, named_paths
from stargan.data.joint import LabelLayout
from stargan.errors import StarGANError
from stargan.train.base import pick_device
from stargan.train.checkpoint import list_checkpoints, resolve_checkpoint
from stargan.train.distributed import (
    World,
    broadcast_object,
    init_process_group,
    max_weight_gap,
    world_from_env,
)
from stargan.train.memory import keep_freed_memory
from stargan.train.precision import cuda_math
from stargan.train.rundir import list_runs, new_run_dir
from stargan.train.v1 import V1Trainer
from stargan.train.v2 import V2Trainer

TRAINERS = {"v1": V1Trainer, "v2": V2Trainer}


def label_layout(cfg: Config) -> LabelLayout:
    """The label layout of a config's datasets, checked without reading pixels."""
    specs = tuple(check_data_config(d, cfg.model.image_size) for d in cfg.datasets)
    return LabelLayout(tuple(d.label for d in cfg.datasets), specs)


def prepare_config(cfg: Config, overrides: list[str] = ()) -> Config:
    """Apply overrides, fill c_dim and mask_dim from the data's labels, validate."""
    cfg = validate(apply_overrides(cfg, list(overrides)))
    layout = label_layout(cfg)
    m = cfg.model
    if m.arch == "v2" and layout.specs[0].kind != "categorical":
        raise StarGANError(
            f"StarGAN v2 learns categorical domains (one folder per domain); dataset "
            f"{cfg.data.label} has multi-label attributes (e.g. use faces-sex, "
            f"faces-expr or a folders dataset)"
        )
    if m.c_dim == 0:
        cfg = replace(cfg, model=replace(m, c_dim=layout.cls_dim, mask_dim=layout.mask_dim))
    elif (m.c_dim, m.mask_dim) != (layout.cls_dim, layout.mask_dim):
        raise StarGANError(
            f"model.c_dim {m.c_dim} (mask_dim {m.mask_dim}) does not match the data's "
            f"{layout.cls_dim} domains ({', '.join(layout.domain_names())}) and "
            f"{layout.mask_dim} mask entries"
        )
    return validate(cfg)


def load_splits(cfg: Config, split: str, progress: bool) -> list:
    """Each dataset's ``split``, in the config's dataset order."""
    return [load_dataset(d, cfg.model.image_size, split, progress) for d in cfg.datasets]


def data_assignments(
    cfg: Config, data_args: tuple[str, ...] | list[str], on_bad_image: str | None = None
) -> list[str]:
    """``--data [NAME=]PATH`` and ``--on-bad-image`` as ``--set`` assignments.

    One dataset: ``--data PATH``. Joint runs: ``--data NAME=PATH`` for each dataset
    that reads files (a bare path would be ambiguous)."""
    labels = [d.label for d in cfg.datasets]
    paths = named_paths(labels, data_args)
    if len(labels) == 1:
        out = [f"data.path={path}" for path in paths.values()]
    else:
        out = [f"data.{name}.path={path}" for name, path in paths.items()]
    if on_bad_image and len(labels) == 1:
        out.append(f"data.on_bad_image={on_bad_image}")
    elif on_bad_image:
        out += [f"data.{name}.on_bad_image={on_bad_image}" for name in labels]
    return out


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
    ``config.json`` before step 0. Under torchrun every process calls this; see
    :mod:`stargan.train.distributed` for what each rank does."""
    world = world_from_env()
    try:
        return _run(cfg, outdir, resume, overrides, progress, world)
    finally:
        if world.distributed and dist.is_initialized():
            dist.destroy_process_group()


def _run(
    cfg: Config,
    outdir: Path,
    resume: str | None,
    overrides: list[str],
    progress: bool,
    world: World,
) -> Path:
    if resume:
        ckpt = find_resume(outdir, resume)
        cfg = prepare_config(load_config(ckpt / "config.json"), overrides)
    else:
        cfg = prepare_config(cfg, overrides)
        ckpt = None
    world.local_batch(cfg.train.batch_size)  # divisible by the world size
    if world.distributed:  # the resolved device picks the backend (gloo or NCCL)
        init_process_group(world, pick_device(cfg.train.device))
    progress = progress and world.is_main
    if cfg.train.threads > 0:
        torch.set_num_threads(cfg.train.threads)
    if cfg.train.fast_kernels:
        keep_freed_memory()
    with cuda_math(cfg):
        return _train(cfg, outdir, ckpt, progress, world)


def joint_counting(cfg: Config) -> str:
    """What one iteration is in a joint run, against the official solver's counting."""
    schedule = cfg.train.dataset_schedule or (1,) * len(cfg.datasets)
    per_round = sum(schedule)
    names = ", ".join(f"{n} {d.label}" for n, d in zip(schedule, cfg.datasets, strict=True))
    return (
        f"joint run: one iteration is one batch of one dataset (one D update); a round is "
        f"{per_round} iterations ({names}), the official solver's one iteration: "
        f"{cfg.train.num_iters} iterations = {cfg.train.num_iters // per_round} rounds"
    )


def _train(cfg: Config, outdir: Path, ckpt: Path | None, progress: bool, world: World) -> Path:
    train_sets = load_splits(cfg, "train", progress)
    for data_cfg, data in zip(cfg.datasets, train_sets, strict=True):
        if len(data) < cfg.train.batch_size:
            raise StarGANError(
                f"dataset {data_cfg.label} has {len(data)} training images, fewer than one "
                f"batch of {cfg.train.batch_size} (lower train.batch_size)"
            )
    sample_sets = load_splits(cfg, "test", progress)
    if ckpt is not None:
        run_dir = ckpt.parent.parent
    else:
        run_dir = broadcast_object(new_run_dir(outdir, cfg.name) if world.is_main else None, world)
    trainer = TRAINERS[cfg.model.arch](cfg, run_dir, train_sets, sample_sets, world)
    if progress and cfg.train.precision == "auto":
        print(
            f"train.precision auto: {trainer.precision.name} on this {trainer.device.type}"
            + (" (--precision fp32 to opt out)" if trainer.precision.name != "fp32" else "")
        )
    if progress and cfg.joint:
        print(joint_counting(cfg))
    if ckpt is not None:
        _check_same_labels(ckpt, trainer.layout)
        trainer.resume(ckpt)
        if world.is_main:
            drop_stats_after(run_dir / "stats.jsonl", trainer.state.step)
        if progress:
            print(f"resumed {run_dir} at iteration {trainer.state.step}")
    elif world.is_main:
        _write_summary(
            run_dir, {d.label: s.summary() for d, s in zip(cfg.datasets, train_sets, strict=True)}
        )
    if world.is_main:
        (run_dir / "config.json").write_text(cfg.to_json())
    trainer.fit(progress=progress)
    if world.distributed:
        _check_in_sync(trainer, world)
        del trainer  # DDP's reducers go before the process group does
        gc.collect()
        dist.barrier()  # no rank tears down while another is still in a collective
    return run_dir


def _check_in_sync(trainer, world: World) -> None:
    """DDP keeps every rank's weights identical; say so, or stop loudly if not."""
    gaps = {name: max_weight_gap(net, world) for name, net in trainer.nets.items()}
    if any(gaps.values()):
        raise StarGANError(f"ranks ended with different weights (max gap per net: {gaps})")
    if world.is_main:
        print(f"{world.size} ranks in sync: identical weights ({', '.join(gaps)})")


def _check_same_labels(ckpt: Path, layout: LabelLayout) -> None:
    """A resumed run must see its data's domains in the order it trained on them (a
    renamed or reordered folder or column would silently remap the labels)."""
    try:
        recorded = json.loads((ckpt / "state.json").read_text()).get("labels")
    except (OSError, ValueError, AttributeError):
        recorded = None
    if recorded is not None and LabelLayout.from_dict(recorded) != layout:
        raise StarGANError(
            f"the data's domains ({', '.join(layout.domain_names())}) differ from those "
            f"{ckpt} was trained on; resume with the same data"
        )


def drop_stats_after(path: Path, step: int) -> None:
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
