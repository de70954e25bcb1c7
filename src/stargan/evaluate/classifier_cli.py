"""``stargan classifier train``: which data the judge learns from, then train and save it."""

from __future__ import annotations

from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from stargan.config import DataConfig
from stargan.data import load_dataset
from stargan.errors import StarGANError
from stargan.evaluate.domain_classifier import (
    ClassifierTrainConfig,
    DomainClassifier,
    train_domain_classifier,
)


def classifier_data(
    model_path: str | None,
    preset: str | None,
    data_args: tuple[str, ...],
    dataset_name: str | None,
    overrides: tuple[str, ...],
) -> tuple[DataConfig, int]:
    """The dataset config and image size: from a model folder, or from a preset with
    ``--data`` and ``--set`` applied as ``stargan train`` applies them."""
    if model_path is not None:
        from stargan.evaluate.metrics import source_configs
        from stargan.loading import load_model

        if overrides:
            raise StarGANError("--set goes with --preset; a model folder fixes its config")
        tr = load_model(Path(model_path))
        configs, size = source_configs(tr, data_args), tr.image_size
    else:
        from stargan.config import apply_overrides
        from stargan.presets import get_preset
        from stargan.train.run import data_assignments

        base = get_preset(preset)
        named = apply_overrides(base, list(overrides))
        cfg = apply_overrides(base, list(overrides) + data_assignments(named, data_args, None))
        configs, size = list(cfg.datasets), cfg.model.image_size
    return _pick(configs, dataset_name), size


def _pick(configs: list[DataConfig], name: str | None) -> DataConfig:
    labels = [c.label for c in configs]
    if name is None:
        if len(configs) > 1:
            raise StarGANError(
                f"there are {len(configs)} datasets; choose one: --dataset {' | '.join(labels)}"
            )
        return configs[0]
    if name not in labels:
        raise StarGANError(f"no dataset {name!r}; valid: {', '.join(labels)}")
    return configs[labels.index(name)]


def train_classifier_folder(
    data_cfg: DataConfig,
    size: int,
    train_kwargs: dict[str, Any],
    out: Path,
    progress: bool = True,
) -> DomainClassifier:
    """Train on ``data_cfg``'s training images at ``size`` px, score on its test images,
    save to ``out``."""
    settings = replace(ClassifierTrainConfig(), **train_kwargs)
    train = load_dataset(data_cfg, size, "train", progress)
    test = load_dataset(data_cfg, size, "test", progress)
    clf = train_domain_classifier(train, settings, progress, test)
    clf.meta["data"] = asdict(data_cfg)
    clf.save(out)
    return clf
