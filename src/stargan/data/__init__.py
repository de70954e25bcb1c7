"""Datasets: a kind per ``data.dataset`` name (``LOADERS``), all giving ImageLabelDataset.

A kind knows its label spec without reading images (``spec``), loads a split
(``load``), and may count a split's domains more cheaply than loading it
(``summarize``). New formats register here; joint runs combine any of them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from stargan.config import DataConfig, check_resize_filter
from stargan.data.dataset import ImageLabelDataset
from stargan.data.labels import LabelSpec
from stargan.errors import StarGANError

Loader = Callable[[DataConfig, int, str, bool], ImageLabelDataset]
Summarizer = Callable[[DataConfig, int, str, bool], dict[str, int]]


@dataclass(frozen=True)
class DatasetKind:
    load: Loader
    spec: Callable[[DataConfig], LabelSpec]
    summarize: Summarizer | None = None  # default: load the split and count
    check: Callable[[DataConfig, int], None] | None = None  # checks needing no pixels
    default_crop: int = 0  # centre crop (source px) before resizing; 0: largest square
    needs_path: bool = True


def _builtin_kind() -> DatasetKind:
    from stargan.data import builtin

    def load(cfg: DataConfig, image_size: int, split: str, progress: bool):
        n = cfg.num_train if split == "train" else cfg.num_test
        return builtin.load_builtin(
            cfg.dataset, split, image_size, n, cfg.seed, cfg.attrs, progress=progress
        )

    def summarize(cfg: DataConfig, image_size: int, split: str, progress: bool):
        n = cfg.num_train if split == "train" else cfg.num_test
        return builtin.label_summary(cfg.dataset, split, n, cfg.seed, cfg.attrs)

    def check(cfg: DataConfig, image_size: int) -> None:
        if not 16 <= image_size <= 256:
            raise StarGANError(f"built-in faces render at 16 to 256 px, not {image_size}")

    return DatasetKind(
        load,
        lambda cfg: builtin.label_spec(cfg.dataset, cfg.attrs),
        summarize,
        check,
        needs_path=False,
    )


def _celeba_kind() -> DatasetKind:
    from stargan.data import celeba

    def load(cfg: DataConfig, image_size: int, split: str, progress: bool):
        return celeba.load_celeba(
            Path(cfg.path),
            cfg.attrs,
            image_size,
            split,
            cfg.test_split,
            cfg.seed,
            progress,
            crop=cfg.crop or celeba.CROP,
            on_bad_image=cfg.on_bad_image,
            resize_filter=cfg.resize_filter,
        )

    def check(cfg: DataConfig, image_size: int) -> None:
        if cfg.path:  # a preset without --data yet is checked when the data is given
            celeba.check_layout(Path(cfg.path))

    return DatasetKind(
        load, lambda cfg: celeba.label_spec(cfg.attrs), check=check, default_crop=celeba.CROP
    )


def _listed_kind(load, spec, summary, plan_split) -> DatasetKind:
    """A kind whose files are listed before decoding (folders, tables): its summary and
    checks come from the file lists; ``plan_split(cfg, split)`` raises on bad input."""

    def check(cfg: DataConfig, image_size: int) -> None:
        if cfg.path:  # a preset without --data yet is checked when the data is given
            for split in ("train", "test"):
                plan_split(cfg, split)

    return DatasetKind(
        lambda cfg, size, split, progress: load(cfg, size, split, progress),
        spec,
        lambda cfg, size, split, progress: summary(cfg, split),
        check,
    )


def _folders_kind() -> DatasetKind:
    from stargan.data import folders as f

    return _listed_kind(f.load_folders, f.folder_spec, f.folder_summary, f.plan_split)


def _table_kind() -> DatasetKind:
    from stargan.data import table as t

    return _listed_kind(t.load_table, t.table_spec, t.table_summary, t.plan_split)


LOADERS: dict[str, Callable[[], DatasetKind]] = {
    "faces-attr": _builtin_kind,
    "faces-expr": _builtin_kind,
    "faces-sex": _builtin_kind,
    "celeba": _celeba_kind,
    "folders": _folders_kind,
    "table": _table_kind,
}


def dataset_kind(cfg: DataConfig) -> DatasetKind:
    if cfg.dataset not in LOADERS:
        raise StarGANError(f"unknown dataset {cfg.dataset!r}; valid: {', '.join(LOADERS)}")
    return LOADERS[cfg.dataset]()


def load_dataset(
    cfg: DataConfig, image_size: int, split: str = "train", progress: bool = False
) -> ImageLabelDataset:
    kind = dataset_kind(cfg)
    _check_path(cfg, kind)
    return kind.load(cfg, image_size, split, progress)


def check_data_config(cfg: DataConfig, image_size: int) -> LabelSpec:
    """Everything about the data that can be checked without reading pixels; its spec."""
    kind = dataset_kind(cfg)
    if cfg.on_bad_image not in ("error", "skip"):
        raise StarGANError(f"data.on_bad_image must be error or skip, not {cfg.on_bad_image!r}")
    if cfg.crop < 0:
        raise StarGANError(f"data.crop must be >= 0 (got {cfg.crop})")
    check_resize_filter(cfg.resize_filter)
    if kind.check is not None:
        kind.check(cfg, image_size)
    return kind.spec(cfg)


def summarize(
    cfg: DataConfig, image_size: int, split: str, progress: bool = False
) -> dict[str, int]:
    """Images per domain of a split (built-in data: without rendering a pixel)."""
    kind = dataset_kind(cfg)
    _check_path(cfg, kind)
    if kind.summarize is not None:
        return kind.summarize(cfg, image_size, split, progress)
    return kind.load(cfg, image_size, split, progress).summary()


def dataset_spec(cfg: DataConfig) -> LabelSpec:
    """The label spec of a dataset config, without loading any image."""
    return dataset_kind(cfg).spec(cfg)


def crop_of(cfg: DataConfig) -> int:
    """The centre crop a translator should apply to photos like this dataset's."""
    return cfg.crop or dataset_kind(cfg).default_crop


def named_paths(labels: list[str], data_args: tuple[str, ...] | list[str]) -> dict[str, str]:
    """``--data [NAME=]PATH`` values by dataset name; a bare path only where there is one
    dataset (several would make it ambiguous)."""
    paths: dict[str, str] = {}
    for arg in data_args:
        name, sep, path = arg.partition("=")
        if sep and name in labels:
            paths[name] = path
        elif len(labels) == 1:
            paths[labels[0]] = arg
        else:
            raise StarGANError(
                f"--data {arg}: there are {len(labels)} datasets ({', '.join(labels)}); "
                f"give each as --data NAME=PATH"
            )
    return paths


def _check_path(cfg: DataConfig, kind: DatasetKind) -> None:
    if kind.needs_path and not cfg.path:
        kind = cfg.dataset if cfg.label == cfg.dataset else f"{cfg.label} ({cfg.dataset})"
        raise StarGANError(
            f"dataset {kind} needs a path: --data PATH (joint runs: --data {cfg.label}=PATH)"
        )


__all__ = [
    "LOADERS",
    "DatasetKind",
    "ImageLabelDataset",
    "LabelSpec",
    "check_data_config",
    "crop_of",
    "dataset_kind",
    "dataset_spec",
    "load_dataset",
    "named_paths",
    "summarize",
]
