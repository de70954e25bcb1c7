"""From a CycleGAN config to a finished run folder of k(k-1)/2 pairs: resolve the config,
load the data once, train the pairs one after another, resume where a run stopped.

Layout of ``runs/00001-cyclegan-ckplus/``::

    config.json         the resolved CycleGANConfig, written before the first iteration
    pairs.json          the domains, the pairs (i, j) in training order, iterations per pair
    stats.jsonl         one line per log interval: run-wide step, pair index, losses, lr
    pairs/00-01-anger-contempt/
        checkpoints/step-0000285/   G, F, D_X, D_Y, pool_X, pool_Y (.safetensors), optim.pt,
                                    rng.pt, state.json, config.json (train/checkpoint.py)
        samples/step-0000285.png    x, G(x), F(G(x)) and y, F(y), G(F(y)) for test images

The log's ``step`` counts iterations over the whole run (pair p's step s is
``p * iters_per_pair + s``), so the pairs' curves follow each other on one axis.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm import tqdm

from stargan.cyclegan_config import (
    CycleGANConfig,
    apply_overrides,
    domain_pairs,
    iters_per_pair,
    load_cycle_config,
    validate,
)
from stargan.data import check_data_config, load_dataset
from stargan.data.dataset import ImageLabelDataset
from stargan.data.labels import LabelSpec
from stargan.errors import StarGANError
from stargan.train.base import pick_device, stop_on_signal  # the v1 trainer's Ctrl-C handling
from stargan.train.checkpoint import list_checkpoints
from stargan.train.cyclegan import Pair, PairTrainer, domain_rows
from stargan.train.logging import StatsLogger
from stargan.train.run import drop_stats_after  # forget steps logged after the checkpoint
from stargan.train.rundir import list_runs, new_run_dir

PAIRS_FILE = "pairs.json"


@dataclass(frozen=True)
class PairPlan:
    domains: tuple[str, ...]
    pairs: tuple[Pair, ...]
    iters: int  # per pair

    @property
    def generators(self) -> int:
        return 2 * len(self.pairs)  # k(k-1)

    def to_dict(self) -> dict:
        return {
            "domains": list(self.domains),
            "pairs": [[p.x, p.y] for p in self.pairs],
            "iters_per_pair": self.iters,
            "generators": self.generators,
        }

    def describe(self, cfg: CycleGANConfig) -> str:
        k, t = len(self.domains), cfg.train
        budget = f" of a budget of {t.budget_iters}" if t.budget_iters else ""
        return (
            f"{len(self.pairs)} CycleGANs for the pairs of {k} domains ({self.generators} "
            f"generators), {self.iters} iterations each{budget}"
        )


def prepare_cycle_config(
    cfg: CycleGANConfig, overrides: list[str] | tuple[str, ...] = ()
) -> tuple[CycleGANConfig, LabelSpec]:
    """Apply overrides, validate, and check the data's domains without reading pixels."""
    cfg = validate(apply_overrides(cfg, overrides))
    spec = check_data_config(cfg.data, cfg.model.image_size)
    if spec.kind != "categorical":
        raise StarGANError(
            f"pairwise CycleGANs need categorical domains (one folder per domain, or "
            f"faces-expr); dataset {cfg.data.label} has multi-label attributes"
        )
    if spec.dim < 2:
        raise StarGANError(f"dataset {cfg.data.label} has one domain; pairs need two or more")
    return cfg, spec


def plan_pairs(cfg: CycleGANConfig, spec: LabelSpec) -> PairPlan:
    iters = iters_per_pair(cfg, spec.dim)
    pairs = tuple(
        Pair(n, i, j, (spec.names[i], spec.names[j]), iters)
        for n, (i, j) in enumerate(domain_pairs(spec.dim))
    )
    return PairPlan(spec.names, pairs, iters)


def train_pairs(
    cfg: CycleGANConfig | None,
    outdir: Path,
    resume: str | None = None,
    overrides: list[str] | tuple[str, ...] = (),
    progress: bool = True,
    stop_after: int | None = None,
) -> Path:
    """Train (or continue) a pairwise run; returns its folder. ``cfg``: None to resume
    (the run's own config, with ``overrides``). ``stop_after``: stop (and checkpoint)
    once the run has done that many iterations in all, as Ctrl-C does."""
    run_dir = find_pairs_run(outdir, resume) if resume else None
    cfg, plan = _resolve(cfg if run_dir is None else None, run_dir, overrides)
    if run_dir is not None and _finished(run_dir, plan):
        if progress:
            print(f"{run_dir}: all {len(plan.pairs)} pairs have finished")
        return run_dir
    if cfg.train.threads > 0:
        torch.set_num_threads(cfg.train.threads)
    size = cfg.model.image_size
    train = load_dataset(cfg.data, size, "train", progress)
    test = load_dataset(cfg.data, size, "test", progress)
    _check_domain_sizes(train, cfg.train.batch_size)
    if run_dir is None:
        run_dir = new_run_dir(outdir, cfg.name)
    (run_dir / "config.json").write_text(cfg.to_json())
    (run_dir / PAIRS_FILE).write_text(json.dumps(plan.to_dict(), indent=2))
    if progress:
        print(f"{run_dir}: {plan.describe(cfg)}")
    _train_plan(cfg, plan, run_dir, (train, test), progress, stop_after)
    return run_dir


def _resolve(
    cfg: CycleGANConfig | None, run_dir: Path | None, overrides: list[str] | tuple[str, ...]
) -> tuple[CycleGANConfig, PairPlan]:
    """The config (a resumed run's own) with overrides, and its pairs; a resumed run must
    keep its domains and iterations per pair."""
    if run_dir is not None:
        cfg = load_cycle_config(run_dir / "config.json")
    cfg, spec = prepare_cycle_config(cfg, overrides)
    plan = plan_pairs(cfg, spec)
    if run_dir is not None:
        _check_same_plan(run_dir, plan)
    return cfg, plan


def _finished(run_dir: Path, plan: PairPlan) -> bool:
    return all(checkpointed_step(run_dir / "pairs" / p.folder) >= plan.iters for p in plan.pairs)


def _train_plan(
    cfg: CycleGANConfig,
    plan: PairPlan,
    run_dir: Path,
    data: tuple[ImageLabelDataset, ImageLabelDataset],
    progress: bool,
    stop_after: int | None,
) -> None:
    """Train the pairs in order, each from its latest checkpoint; finished pairs are
    skipped, and a stop request ends the run after checkpointing the current pair."""
    done = {p.index: checkpointed_step(run_dir / "pairs" / p.folder) for p in plan.pairs}
    drop_stats_after(run_dir / "stats.jsonl", sum(done.values()))
    device = pick_device(cfg.train.device)
    with stop_on_signal() as stop:
        hooks = _Hooks(run_dir, plan, sum(done.values()), progress, stop_after, stop)
        try:
            for pair in plan.pairs:
                if done[pair.index] >= plan.iters:
                    continue
                pair_dir = run_dir / "pairs" / pair.folder
                trainer = PairTrainer(cfg, pair, *data, pair_dir, device)
                if done[pair.index]:
                    trainer.resume(list_checkpoints(pair_dir / "checkpoints")[-1])
                hooks.begin(pair)
                if not trainer.fit(hooks):
                    hooks.note(f"stopped at iteration {hooks.done}; continue with --resume")
                    break
        finally:
            hooks.close()


def checkpointed_step(pair_dir: Path) -> int:
    """The step of a pair's latest complete checkpoint (0: none yet)."""
    found = list_checkpoints(pair_dir / "checkpoints")
    if not found:
        return 0
    return int(json.loads((found[-1] / "state.json").read_text())["step"])


def find_pairs_run(outdir: Path, resume: str) -> Path:
    """``latest``: the newest pairwise run under ``outdir``; else the run folder named."""
    if resume == "latest":
        runs = [r for r in list_runs(outdir) if (r / PAIRS_FILE).is_file()]
        if not runs:
            raise StarGANError(f"--resume latest: no pairwise CycleGAN run under {outdir}")
        return runs[-1]
    run_dir = Path(resume)
    if not (run_dir / PAIRS_FILE).is_file():
        raise StarGANError(f"{run_dir} is not a pairwise CycleGAN run folder (no {PAIRS_FILE})")
    return run_dir


def _check_same_plan(run_dir: Path, plan: PairPlan) -> None:
    """A resumed run keeps its domains and iterations per pair (anything else would mix
    pairs trained on different data or schedules)."""
    try:
        recorded = json.loads((run_dir / PAIRS_FILE).read_text())
    except (OSError, ValueError) as err:
        raise StarGANError(f"{run_dir / PAIRS_FILE} is unreadable: {err}") from err
    if recorded != plan.to_dict():
        raise StarGANError(
            f"{run_dir} trained {recorded.get('iters_per_pair')} iterations per pair of "
            f"{recorded.get('domains')}; now {plan.iters} of {list(plan.domains)}: resume "
            f"with the same data and budget"
        )


def _check_domain_sizes(train: ImageLabelDataset, batch_size: int) -> None:
    for d, name in enumerate(train.spec.names):
        n = len(domain_rows(train, d))
        if n < batch_size:
            raise StarGANError(
                f"domain {name} has {n} training images, fewer than one batch of "
                f"{batch_size} (lower train.batch_size)"
            )


class _Hooks:
    """The run-wide side of training (train/cyclegan.RunHooks): one progress bar over all
    pairs' iterations, one stats log, the stop request (a signal, or ``stop_after``)."""

    def __init__(self, run_dir: Path, plan: PairPlan, done: int, progress: bool, stop_after, stop):
        self.plan, self.done, self.stop, self.stop_after = plan, done, stop, stop_after
        self.logger = StatsLogger(run_dir, tensorboard=False)
        total = plan.iters * len(plan.pairs)
        self.bar = tqdm(total=total, initial=done, disable=not progress, unit="it")

    def begin(self, pair: Pair) -> None:
        self.bar.set_description(f"pair {pair.index + 1}/{len(self.plan.pairs)} {pair.label}")

    def should_stop(self) -> bool:
        return self.stop.requested or (self.stop_after is not None and self.done >= self.stop_after)

    def advance(self, iterations: int) -> None:
        self.done += iterations
        self.bar.update(iterations)

    def log(self, pair: Pair, step: int, values: dict[str, float]) -> None:
        run_step = pair.index * self.plan.iters + step
        self.logger.log(run_step, run_step, {"pair": pair.index, "pair_step": step, **values})
        shown = {k: f"{values[k]:.3g}" for k in ("G/loss", "D_X/loss", "D_Y/loss") if k in values}
        self.bar.set_postfix(shown, refresh=False)

    def note(self, text: str) -> None:
        if not self.bar.disable:
            self.bar.write(text)

    def close(self) -> None:
        self.bar.close()
        self.logger.close()
