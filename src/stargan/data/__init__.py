"""Datasets: a loader per ``data.dataset`` name, all returning ImageLabelDataset."""

from __future__ import annotations

from collections.abc import Callable

from stargan.config import DataConfig
from stargan.data.dataset import ImageLabelDataset
from stargan.data.labels import LabelSpec
from stargan.errors import StarGANError

Loader = Callable[[DataConfig, int, str, bool], ImageLabelDataset]


def _load_faces(cfg: DataConfig, image_size: int, split: str, progress: bool) -> ImageLabelDataset:
    from stargan.data.builtin import load_builtin

    n = cfg.num_train if split == "train" else cfg.num_test
    return load_builtin(cfg.dataset, split, image_size, n, cfg.seed, cfg.attrs, progress=progress)


def _load_celeba(cfg: DataConfig, image_size: int, split: str, progress: bool) -> ImageLabelDataset:
    from pathlib import Path

    from stargan.data.celeba import load_celeba

    if not cfg.path:
        raise StarGANError("dataset celeba needs a folder: --data PATH (or --set data.path=PATH)")
    return load_celeba(
        Path(cfg.path), cfg.attrs, image_size, split, cfg.test_split, cfg.seed, progress
    )


LOADERS: dict[str, Loader] = {
    "faces-attr": _load_faces,
    "faces-expr": _load_faces,
    "celeba": _load_celeba,
}


def load_dataset(
    cfg: DataConfig, image_size: int, split: str = "train", progress: bool = False
) -> ImageLabelDataset:
    if cfg.dataset not in LOADERS:
        raise StarGANError(f"unknown dataset {cfg.dataset!r}; valid: {', '.join(LOADERS)}")
    return LOADERS[cfg.dataset](cfg, image_size, split, progress)


def check_data_config(cfg: DataConfig, image_size: int) -> LabelSpec:
    """Everything about the data that can be checked without reading it; its label spec."""
    spec = dataset_spec(cfg)
    if cfg.dataset in ("faces-attr", "faces-expr") and not 16 <= image_size <= 256:
        raise StarGANError(f"built-in faces render at 16 to 256 px, not {image_size}")
    return spec


def summarize(
    cfg: DataConfig, image_size: int, split: str, progress: bool = False
) -> dict[str, int]:
    """Images per domain of a split: for built-in data without rendering a pixel."""
    if cfg.dataset in ("faces-attr", "faces-expr"):
        from stargan.data.builtin import label_summary

        n = cfg.num_train if split == "train" else cfg.num_test
        return label_summary(cfg.dataset, split, n, cfg.seed, cfg.attrs)
    return load_dataset(cfg, image_size, split, progress).summary()


def dataset_spec(cfg: DataConfig) -> LabelSpec:
    """The label spec of a dataset config, without loading any image."""
    if cfg.dataset in ("faces-attr", "faces-expr"):
        from stargan.data.builtin import label_spec

        return label_spec(cfg.dataset, cfg.attrs)
    if cfg.dataset == "celeba":
        from stargan.data.celeba import label_spec as celeba_spec

        return celeba_spec(cfg.attrs)
    raise StarGANError(f"unknown dataset {cfg.dataset!r}; valid: {', '.join(LOADERS)}")


__all__ = [
    "LOADERS",
    "ImageLabelDataset",
    "LabelSpec",
    "dataset_spec",
    "load_dataset",
    "summarize",
]
