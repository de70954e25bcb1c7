"""Classifier-judged scores for models trained on real data (no ground-truth translation)."""

from __future__ import annotations

from pathlib import Path

import pytest

from stargan.errors import StarGANError
from stargan.evaluate.real_score import format_real_table, score_real, source_configs
from stargan.translate import Translator


def test_source_configs_are_the_trained_ones_with_new_paths(tiny_model: Path) -> None:
    tr = Translator.from_pretrained(tiny_model)
    (cfg,) = source_configs(tr, ["/new/place"])
    assert cfg.dataset == "faces-attr" and cfg.path == "/new/place" and cfg.num_test == 16
    assert source_configs(tr)[0].path == ""


def test_score_real_reports_target_and_kept_attributes(tiny_model: Path) -> None:
    tr = Translator.from_pretrained(tiny_model)
    result = score_real(tr, source_configs(tr), n=16, classifier_steps=20, progress=False)
    assert set(result["per_domain"]) <= set(tr.spec.names)
    male = result["per_domain"]["Male"]
    assert male["n"] == 16  # flipping Male changes every row
    assert 0 <= male["target_acc"] <= 1 and 0 <= male["keep_acc"] <= 1
    assert set(result["classifier_real_acc"]) == set(tr.spec.names)
    table = format_real_table(result)
    assert "others kept" in table and "classifier accuracy on real test images" in table


def test_joint_data_arguments_must_be_named(tiny_model: Path, tmp_path: Path) -> None:
    import json
    import shutil

    model = tmp_path / "m"
    shutil.copytree(tiny_model, model)
    config = json.loads((model / "config.json").read_text())
    config["sources"] = config["sources"] * 2
    config["sources"][1] = dict(config["sources"][1], name="second")
    config["sources"][1]["data"] = dict(config["sources"][1]["data"], name="second")
    (model / "config.json").write_text(json.dumps(config))
    tr = Translator.from_pretrained(model)
    with pytest.raises(StarGANError, match="give each as --data NAME=PATH"):
        source_configs(tr, ["/x"])
    assert [c.path for c in source_configs(tr, ["second=/y"])] == ["", "/y"]
