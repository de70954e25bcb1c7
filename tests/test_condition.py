"""``model.g_condition=difference``: G told the change c_trg - c_org (STGAN), in training,
inference, export and evaluation."""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from stargan.errors import StarGANError
from stargan.export import export_model
from stargan.models.v1 import label_input
from stargan.presets import get_preset
from stargan.train import prepare_config
from stargan.translate import Translator
from test_train import _trainer


def test_label_input_is_the_target_or_the_change() -> None:
    c_org = torch.tensor([[1.0, 0.0, 1.0], [0.0, 0.0, 0.0]])
    c_trg = torch.tensor([[0.0, 1.0, 1.0], [0.0, 0.0, 1.0]])
    assert torch.equal(label_input(c_trg, c_org, "target"), c_trg)
    assert torch.equal(label_input(c_trg, None, "target"), c_trg)
    change = label_input(c_trg, c_org, "difference")
    assert torch.equal(change, torch.tensor([[-1.0, 1.0, 0.0], [0.0, 0.0, 1.0]]))
    assert torch.equal(label_input(c_org, c_org, "difference"), torch.zeros(2, 3))  # keep = 0
    with pytest.raises(ValueError, match="needs the inputs' own labels"):
        label_input(c_trg, None, "difference")
    with pytest.raises(ValueError, match="unknown"):
        label_input(c_trg, c_org, "absolute")


def test_difference_keeps_the_joint_mask_of_the_target() -> None:
    # two datasets of 2 labels each, then the 2-column mask: dataset 1's rows
    c_org = torch.tensor([[0.0, 0.0, 1.0, 0.0, 0.0, 1.0]])
    c_trg = torch.tensor([[0.0, 0.0, 0.0, 1.0, 0.0, 1.0]])
    change = label_input(c_trg, c_org, "difference", mask_dim=2)
    assert torch.equal(change, torch.tensor([[0.0, 0.0, -1.0, 1.0, 0.0, 1.0]]))


def _cfg(**train):
    cfg = prepare_config(get_preset("tiny"), ["model.g_condition=difference"])
    return replace(cfg, train=replace(cfg.train, **train)) if train else cfg


def test_training_feeds_g_the_change_and_its_negation_for_the_cycle(tmp_path: Path) -> None:
    tr = _trainer(_cfg(), tmp_path / "run")
    seen: list[torch.Tensor] = []
    g_train = tr.g_train
    tr.g_train = lambda x, c: seen.append(c.clone()) or g_train(x, c)
    n_critic = tr.cfg.optim.n_critic
    for _ in range(n_critic):
        tr.train_step()
    batch, _ = tr.make_batch(n_critic - 1)
    change = batch.c_trg - batch.c_org
    assert len(seen) == n_critic + 1  # a fake per step, and the G step's reconstruction
    assert torch.equal(seen[-2], change) and torch.equal(seen[-1], -change)
    assert change.abs().sum() > 0 and set(change.unique().tolist()) <= {-1.0, 0.0, 1.0}


def test_prepare_refuses_an_unknown_condition_and_v2() -> None:
    with pytest.raises(StarGANError, match="model.g_condition must be one of"):
        prepare_config(get_preset("tiny"), ["model.g_condition=absolute"])
    with pytest.raises(StarGANError, match="StarGAN v1 options"):
        prepare_config(get_preset("tiny-v2"), ["model.g_condition=difference"])


@pytest.fixture(scope="module")
def diff_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("diff")
    _trainer(_cfg(num_iters=4, num_iters_decay=2, ckpt_every=4), tmp / "run").fit(progress=False)
    return export_model(tmp / "run", tmp / "model")


def test_translator_gives_g_the_change_from_given_or_estimated_labels(diff_model: Path) -> None:
    tr = Translator.from_pretrained(diff_model)
    assert tr.needs_source and tr.model_cfg.g_condition == "difference"
    x = tr.preprocess(torch.randint(0, 256, (3, 3, 16, 16), dtype=torch.uint8))
    c_org = torch.zeros(3, tr.layout.dim)
    c_org[:, tr.spec.index("Male")] = 1.0
    c_trg = c_org.clone()
    c_trg[:, tr.spec.index("Male")] = 0.0
    torch.testing.assert_close(tr.apply(x, "Male=0", c_org), tr.G(x, c_trg - c_org))
    torch.testing.assert_close(tr.apply(x, "Male=1", c_org), tr.G(x, torch.zeros_like(c_org)))
    estimated = tr.estimate_labels(x)
    assert torch.equal(tr.source_and_target("Male=0", None, x)[0], estimated)
    torch.testing.assert_close(tr.apply(x, "Male=0"), tr.apply(x, "Male=0", estimated))
    torch.testing.assert_close(tr.generate(x, c_trg), tr.generate(x, c_trg, estimated))
    targets = dict(tr.layout.single_changes([c_org]))
    for name, y in tr.all_domains(x, c_org):
        torch.testing.assert_close(y, tr.G(x, targets[name] - c_org), msg=name)
    tr.D = None
    with pytest.raises(StarGANError, match="discriminator.safetensors"):
        tr.apply(x, "Male=0")


def test_export_sidecar_says_the_labels_are_a_change(diff_model: Path, tmp_path: Path) -> None:
    from stargan.export_formats import check_parity, export_torchscript

    out = tmp_path / "G.pt"
    export_torchscript(diff_model, out)
    sidecar = json.loads((tmp_path / "G.pt.json").read_text())
    assert "target - source" in sidecar["labels"]["rules"]
    assert check_parity(diff_model, out)["max_abs_diff"] < 1e-4


def test_cli_translates_and_evaluates_a_difference_model(
    diff_model: Path, tmp_path: Path, capsys, monkeypatch
) -> None:
    from PIL import Image

    from stargan.cli import main
    from stargan.data.faces import params_for, render

    photo = tmp_path / "face.png"
    Image.fromarray(render(params_for(0, "test", 3), 48)).save(photo)

    def cli(*args) -> tuple[int, str]:
        monkeypatch.setattr(sys, "argv", ["stargan", *map(str, args)])
        with pytest.raises(SystemExit) as exit_info:
            main()
        return exit_info.value.code, capsys.readouterr().err

    code, err = cli("translate", diff_model, photo, "--to", "Male=1", "-o", tmp_path / "out")
    assert code == 0, err
    assert len(list((tmp_path / "out").glob("face_*.png"))) == 1
    out = tmp_path / "eval"
    code, err = cli("eval", diff_model, "--metrics", "reconstruction", "--n", 8, "-o", out)
    assert code == 0, err
    record = json.loads((out / "metrics.jsonl").read_text().splitlines()[0])
    assert 0 < record["summary"]["rec_psnr"] <= 100


def test_export_without_d_warns_that_labels_must_be_given(
    diff_model: Path, tmp_path: Path, capsys, monkeypatch
) -> None:
    from stargan.cli import main

    run, out = diff_model.parent / "run", tmp_path / "m"
    args = ["export", str(run), "--no-discriminator", "-o", str(out)]
    monkeypatch.setattr(sys, "argv", ["stargan", *args])
    with pytest.raises(SystemExit) as exit_info:
        main()
    err = capsys.readouterr().err
    assert exit_info.value.code == 0 and "cannot read a photo's own labels" in err
    assert not (tmp_path / "m" / "discriminator.safetensors").exists()


def test_a_wrong_mask_keeps_the_targets_dataset_as_the_source() -> None:
    """Paper Fig. 8 with a difference-conditioned G: whether the target is named or given as
    labels, G's source is the input's reading in the target's dataset, not the mask's."""
    from stargan.config import ModelConfig
    from stargan.data.joint import LabelLayout
    from stargan.data.labels import LabelSpec
    from stargan.models.v1 import Discriminator, generator

    layout = LabelLayout(
        ("attr", "expr"),
        (LabelSpec(("Male", "Young")), LabelSpec(("happy", "sad"), "categorical")),
    )
    cfg = ModelConfig(
        image_size=16,
        c_dim=4,
        mask_dim=2,
        g_conv_dim=8,
        g_repeat_num=1,
        d_conv_dim=8,
        d_repeat_num=2,
        g_condition="difference",
    )
    torch.manual_seed(0)
    D = Discriminator(16, 4, 8, 2)
    tr = Translator(generator(cfg), cfg, layout, D, {"crop": 0})
    seen: list[torch.Tensor] = []
    tr.G.register_forward_hook(lambda _, args, out: seen.append(args[1].clone()))
    x = tr.preprocess(torch.randint(0, 256, (3, 3, 16, 16), dtype=torch.uint8))
    tr.apply(x, "happy", mask="attr")
    tr.apply(x, tr.target_labels("happy", None, x), mask="attr")
    named, labels = seen
    assert torch.equal(named, labels)
    assert named[:, -2:].tolist() == [[1.0, 0.0]] * 3  # the wrong mask reaches G
    assert named[:, :2].abs().sum() == 0  # the attributes: no change asked


# ------------------------------------------------ strength: the change scaled at test time
def test_label_input_scales_the_change_not_the_mask() -> None:
    c_org = torch.tensor([[0.0, 1.0, 0.0, 0.0, 1.0, 0.0]])
    c_trg = torch.tensor([[1.0, 0.0, 0.0, 0.0, 1.0, 0.0]])
    change = label_input(c_trg, c_org, "difference", mask_dim=2, strength=1.5)
    assert torch.equal(change, torch.tensor([[1.5, -1.5, 0.0, 0.0, 1.0, 0.0]]))
    assert torch.equal(label_input(c_trg, c_org, "target", strength=1.5), c_trg)


def test_strength_scales_what_translate_gives_g(diff_model: Path) -> None:
    tr = Translator.from_pretrained(diff_model)
    x = tr.preprocess(torch.randint(0, 256, (2, 3, 16, 16), dtype=torch.uint8))
    c_org = torch.zeros(2, tr.layout.dim)
    c_trg = c_org.clone()
    c_trg[:, tr.spec.index("Male")] = 1.0
    assert tr.strength == 1.0
    tr.strength = 2.0
    torch.testing.assert_close(tr.apply(x, "Male=1", c_org), tr.G(x, 2.0 * (c_trg - c_org)))
    assert not torch.allclose(tr.apply(x, "Male=1", c_org), tr.G(x, c_trg - c_org))
    assert tr.describe().endswith("; strength 2")
    for bad in (0.0, -1.0, float("nan"), 4.5):
        with pytest.raises(StarGANError, match="must be above 0"):
            tr.strength = bad
    assert tr.strength == 2.0  # a refused value leaves the last one


def test_strength_is_refused_for_a_target_conditioned_g(tiny_model: Path) -> None:
    tr = Translator.from_pretrained(tiny_model)
    assert tr.model_cfg.g_condition == "target"
    tr.strength = 1.0  # as trained: always fine
    with pytest.raises(StarGANError, match="only a model trained with model.g_condition"):
        tr.strength = 1.5


def test_cli_strength_in_translate_and_eval_refused_by_target_models(
    diff_model: Path, tiny_model: Path, tmp_path: Path, capsys, monkeypatch
) -> None:
    from PIL import Image

    from stargan.cli import main
    from stargan.data.faces import params_for, render

    photo = tmp_path / "face.png"
    Image.fromarray(render(params_for(0, "test", 3), 16)).save(photo)

    def cli(*args) -> tuple[int, str, str]:
        monkeypatch.setattr(sys, "argv", ["stargan", *map(str, args)])
        with pytest.raises(SystemExit) as exit_info:
            main()
        out, err = capsys.readouterr()
        return exit_info.value.code, out, err

    outputs = {}
    for strength in (1, 2):
        folder = tmp_path / f"out{strength}"
        args = ["--from", "Male=0", "--to", "Male=1", "-o", folder, "--strength", strength]
        code, out, err = cli("translate", diff_model, photo, *args)
        assert code == 0, err
        outputs[strength] = next(folder.glob("face_*.png")).read_bytes()
    assert outputs[1] != outputs[2]
    assert "strength 2" in out
    code, out, err = cli(
        "translate", tiny_model, photo, "--to", "Male=1", "-o", tmp_path / "t", "--strength", 1.5
    )
    assert code == 2 and "model.g_condition=difference" in err and not (tmp_path / "t").exists()
    code, out, err = cli(
        "translate", diff_model, photo, "--to", "Male=1", "-o", tmp_path / "z", "--strength", 0
    )
    assert code == 2 and "--strength" in err
    psnr = {}
    for strength in (1, 1.5):
        folder = tmp_path / f"eval{strength}"
        args = ["--metrics", "reconstruction", "--n", 8, "-o", folder, "--strength", strength]
        code, out, err = cli("eval", diff_model, *args)
        assert code == 0, err
        record = json.loads((folder / "metrics.jsonl").read_text().splitlines()[0])
        assert record.get("strength", 1) == strength
        psnr[strength] = record["summary"]["rec_psnr"]
    assert psnr[1] != psnr[1.5]  # G got the scaled change
    args = ["--metrics", "reconstruction", "-o", tmp_path / "e", "--strength", 1.5]
    code, out, err = cli("eval", diff_model, tiny_model, *args)
    assert code == 2 and "model.g_condition=difference" in err  # before any model ran
    assert not (tmp_path / "e").exists()
    code, out, err = cli("score", tiny_model, "--n", 8, "--strength", 1.5, "--quiet")
    assert code == 2 and "model.g_condition=difference" in err
