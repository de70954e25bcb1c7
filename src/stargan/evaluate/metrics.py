"""The metric registry behind ``stargan eval``, and what every metric is given.

A metric is a function of an :class:`EvalContext` that returns the measured part of a
record: ``summary`` (headline numbers), ``tables`` (see :mod:`stargan.evaluate.report`),
``images`` and ``notes``. :func:`evaluate_model` adds what was measured and how (model,
data, sample count, seed, time) and appends one JSON line per metric to
``metrics.jsonl``. The metrics themselves are listed in :mod:`stargan.evaluate.registry`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from stargan.config import DataConfig, from_dict
from stargan.data import load_dataset, named_paths
from stargan.data.dataset import ImageLabelDataset
from stargan.errors import StarGANError
from stargan.evaluate.score import source_rows, translate_batched
from stargan.translate import Translator


@dataclass(frozen=True)
class EvalSettings:
    n: int = 1000  # test images per dataset at most (a seeded subset when there are more)
    seed: int = 0
    batch_size: int = 50
    classifiers: tuple[str, ...] = ()  # --classifier [NAME=]PATH
    inception: str | None = None  # standard pt_inception weights instead of the default
    fid_real: int = 2000  # real training images per dataset that FID compares against
    progress: bool = True
    source: str | None = None  # --from: only test images of these domains are translated
    inception_torchvision: str | None = None  # torchvision's inception_v3 (fid-v2-official)


@dataclass(frozen=True)
class Metric:
    """One ``stargan eval`` metric with its behaviour for each model family: ``run`` for
    StarGAN v1 models (and CycleGAN pair sets), ``run_v2`` for StarGAN v2 models (the v2
    paper's protocol, :mod:`stargan.evaluate.style_protocol`); None where the family has
    no such metric. ``applies`` / ``applies_v2`` say why a metric cannot measure a model
    (None: it can); ``about_v2`` describes the v2 version where it differs."""

    name: str
    about: str
    run: Callable[[EvalContext], dict[str, Any]] | None
    applies: Callable[[EvalContext], str | None] = lambda ctx: None  # why not, or None
    formats: dict[str, str] = field(default_factory=dict)  # summary key -> percent|int|float
    run_v2: Callable[[EvalContext], dict[str, Any]] | None = None
    applies_v2: Callable[[EvalContext], str | None] = lambda ctx: None
    about_v2: str = ""

    def behaviour(self, ctx: EvalContext) -> tuple[Callable | None, str | None, str]:
        """(run, why it does not apply or None, what it measures) for ``ctx``'s model."""
        if is_style_model(ctx):
            if self.run_v2 is None:
                return None, "not defined for StarGAN v2 models", self.about
            return self.run_v2, self.applies_v2(ctx), self.about_v2 or self.about
        if self.run is None:
            return None, "StarGAN v2 models only", self.about
        return self.run, self.applies(ctx), self.about


def is_style_model(ctx: EvalContext) -> bool:
    """Whether the model under evaluation is a StarGAN v2 ``StyleModel``."""
    from stargan.stylemodel import StyleModel

    return isinstance(ctx.tr, StyleModel)


@dataclass
class EvalContext:
    """One model under evaluation: its translator (a v1 ``Translator`` or a v2
    ``StyleModel``), data, settings and output folder. Datasets, test subsets and helper
    networks are loaded once and shared by metrics."""

    model_path: Path
    tr: Any
    data: list[DataConfig]
    settings: EvalSettings
    out_dir: Path
    _cache: dict[Any, Any] = field(default_factory=dict)

    def cached(self, key: Any, make: Callable[[], Any]) -> Any:
        if key not in self._cache:
            self._cache[key] = make()
        return self._cache[key]

    def dataset(self, i: int, split: str) -> ImageLabelDataset:
        def load() -> ImageLabelDataset:
            data = load_dataset(self.data[i], self.tr.image_size, split, self.settings.progress)
            self._check_domains(i, data)
            return data

        return self.cached(("dataset", i, split), load)

    def _check_domains(self, i: int, data: ImageLabelDataset) -> None:
        spec = self.tr.layout.specs[i]
        if (data.spec.names, data.spec.kind) != (spec.names, spec.kind):
            raise StarGANError(
                f"the data of {self.data[i].label} ({self.data[i].path}) has domains "
                f"{list(data.spec.names)}, but the model was trained on {list(spec.names)}"
            )

    def test_images(self, i: int, n: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Up to ``n`` (default settings.n) test images of dataset ``i`` as uint8
        [N, 3, S, S] and their labels [N, c]: all of them, or a seeded subset in order."""
        data = self.dataset(i, "test")
        labels = torch.from_numpy(np.asarray(data.labels))
        what = f"test image of {self.data[i].label}"
        keep = source_rows(self.tr, self.settings.source, i, labels, what)
        candidates = keep.nonzero().flatten().numpy()
        rows = candidates[subset(len(candidates), n or self.settings.n, self.settings.seed)]
        x_u8, c_org = data.batch(torch.from_numpy(rows))
        return x_u8, c_org.float()

    def translate(
        self,
        x_u8: torch.Tensor,
        c_trg: torch.Tensor,
        remember: bool = False,
        c_org: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """G(x, c_trg) for uint8 inputs, batched, as uint8 [N, 3, S, S] on the CPU.
        ``c_org``: the inputs' own (encoded) labels, which pairwise model sets need to
        pick a generator (StarGAN ignores them).

        ``remember``: kept for the other metrics, keyed by the inputs' content, so that
        the translations of the test images that several metrics judge (classification's
        and reconstruction's single-domain changes) are computed once."""
        bs = self.settings.batch_size
        if not remember:
            return translate_batched(self.tr, x_u8, c_trg, bs, c_org)
        key = ("translation", _fingerprint(x_u8), _fingerprint(c_trg))
        if c_org is not None and getattr(self.tr, "needs_source", False):
            key += (_fingerprint(c_org),)
        return self.cached(key, lambda: translate_batched(self.tr, x_u8, c_trg, bs, c_org))

    def relative(self, path: Path) -> str:
        return path.relative_to(self.out_dir).as_posix()


def _fingerprint(t: torch.Tensor) -> tuple[str, tuple[int, ...], str]:
    """Dtype, shape and a hash of the values: equal for equal tensors."""
    data = t.detach().cpu().contiguous().numpy().tobytes()
    return str(t.dtype), tuple(t.shape), hashlib.blake2b(data, digest_size=16).hexdigest()


def subset(total: int, n: int, seed: int) -> np.ndarray:
    """Indices of at most ``n`` of ``total`` items: all, or a seeded sample kept in order."""
    if total <= n:
        return np.arange(total)
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(total, n, replace=False))


def append_record(path: Path, record: dict[str, Any]) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a") as fh:
            fh.write(json.dumps(_finite(record), allow_nan=False, default=_jsonable) + "\n")
    except OSError as err:
        raise StarGANError(f"cannot write {path}: {err.strerror}") from err


def _finite(value: Any) -> Any:
    """NaN and infinities (e.g. an undefined per-pair figure) become null."""
    if isinstance(value, float):
        return value if np.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def _jsonable(value: Any) -> Any:
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def source_configs(tr: Translator, data_args: tuple[str, ...] | list[str] = ()) -> list[DataConfig]:
    """Each dataset's config as the model was trained, with ``--data [NAME=]PATH`` values
    replacing the recorded paths (a bare path: the model's only dataset)."""
    sources = tr.meta.get("sources") or []
    if not sources or not all(isinstance(s, dict) and "data" in s for s in sources):
        raise StarGANError("this model folder does not record its data; re-export it")
    configs = [from_dict(DataConfig, s["data"], "model sources") for s in sources]
    paths = named_paths([c.label for c in configs], data_args)
    return [replace(c, path=paths[c.label]) if c.label in paths else c for c in configs]
