"""Model folders: the kind a folder declares, and one loader that dispatches on it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import stargan
from stargan import cyclegan, stylemodel, translate
from stargan.config import ModelConfig
from stargan.data.labels import LabelSpec
from stargan.errors import StarGANError
from stargan.loading import LOADERS, load_model
from stargan.model_folder import declared_kind
from stargan.models.v1 import Discriminator, Generator
from stargan.stylemodel import StyleModel
from stargan.translate import Translator
from v2_helpers import tiny_model


def _v1_folder(path: Path) -> Path:
    cfg = ModelConfig(
        image_size=16, c_dim=2, g_conv_dim=8, g_repeat_num=1, d_conv_dim=8, d_repeat_num=2
    )
    spec = LabelSpec(("Black_Hair", "Male"), "multi")
    G, D = Generator(2, 8, 1), Discriminator(16, 2, 8, cfg.d_repeat_num)
    Translator(G, cfg, spec, D, {"crop": 0, "dataset": "unit-test"}).save_pretrained(path)
    return path


def test_every_family_has_one_loader_under_its_kind() -> None:
    assert sorted(LOADERS) == sorted([translate.KIND, stylemodel.KIND, cyclegan.KIND])


def test_declared_kind_reads_config_json_or_says_none(tmp_path: Path) -> None:
    assert declared_kind(tmp_path / "missing") is None
    for text, kind in (("{", None), ("[1]", None), ('{"kind": 3}', None), ('{"kind": "x"}', "x")):
        (tmp_path / "config.json").write_text(text)
        assert declared_kind(tmp_path) == kind, text


def test_load_model_dispatches_on_the_kind(tmp_path: Path) -> None:
    v1 = load_model(_v1_folder(tmp_path / "v1"))
    v2 = load_model(tiny_model().save_pretrained(tmp_path / "v2"))
    assert isinstance(v1, Translator) and isinstance(v2, StyleModel)
    assert isinstance(stargan.load(tmp_path / "v1"), Translator)
    x = torch.zeros(1, 3, 16, 16, dtype=torch.uint8)
    assert v1.translate(x, "Male").shape == x.shape


def test_folders_of_no_known_kind_get_the_v1_loader_s_error(tmp_path: Path) -> None:
    folder = tmp_path / "odd"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"kind": "pix2pix"}))
    with pytest.raises(StarGANError, match="pix2pix"):
        load_model(folder)
    with pytest.raises(StarGANError):
        load_model(tmp_path / "nothing-here")


def test_eval_metrics_help_names_every_registered_metric(capsys, monkeypatch) -> None:
    import sys

    from stargan.cli import main
    from stargan.evaluate.registry import METRICS

    monkeypatch.setattr(sys, "argv", ["stargan", "eval", "--help"])
    with pytest.raises(SystemExit):
        main()
    help_text = " ".join(capsys.readouterr().out.split())
    assert f"Comma-separated: {', '.join(METRICS)};" in help_text
