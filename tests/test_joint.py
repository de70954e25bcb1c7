"""Joint training of several datasets with the mask vector (paper section 3.2)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from stargan.config import Config, DataConfig, apply_overrides, load_config
from stargan.data.joint import LabelLayout
from stargan.data.labels import LabelSpec
from stargan.errors import StarGANError
from stargan.presets import get_preset
from stargan.train import V1Trainer, prepare_config, run_training
from stargan.train.base import dataset_at
from stargan.train.checkpoint import list_checkpoints
from stargan.train.run import data_assignments, load_splits

ATTRS = LabelSpec(("Black_Hair", "Blond_Hair", "Male"), "multi", (("Black_Hair", "Blond_Hair"),))
EXPR = LabelSpec(("happy", "sad", "angry", "Male"), "categorical")
LAYOUT = LabelLayout(("celeba", "rafd"), (ATTRS, EXPR))


# ---------------------------------------------------------------- label layout
def test_layout_dims_and_encoding_follow_the_paper() -> None:
    assert (LAYOUT.cls_dim, LAYOUT.mask_dim, LAYOUT.dim) == (7, 2, 9)
    c = LAYOUT.encode(1, torch.tensor([[0.0, 1.0, 0.0, 0.0]]))
    # [c_celeba (zero: unknown), c_rafd, mask one-hot on rafd]
    assert c.tolist() == [[0, 0, 0, 0, 1, 0, 0, 0, 1]]
    c = LAYOUT.encode(0, torch.tensor([[1.0, 0.0, 1.0]]))
    assert c.tolist() == [[1, 0, 1, 0, 0, 0, 0, 1, 0]]
    assert LAYOUT.part(1) == slice(3, 7)


def test_single_dataset_layout_has_no_mask() -> None:
    single = LabelLayout.single(ATTRS)
    c = torch.tensor([[1.0, 0.0, 1.0]])
    assert single.dim == 3 and single.mask_dim == 0 and single.encode(0, c) is c
    assert single.domain_names() == list(ATTRS.names)


def test_domain_names_qualified_or_bare_when_unique() -> None:
    assert LAYOUT.find("happy") == (1, "happy")
    assert LAYOUT.find("rafd.Male") == (1, "Male")
    assert LAYOUT.find("celeba.Male") == (0, "Male")
    with pytest.raises(StarGANError, match="several datasets.*celeba.Male, rafd.Male"):
        LAYOUT.find("Male")
    with pytest.raises(StarGANError, match="did you mean rafd.happy"):
        LAYOUT.find("hapy")
    with pytest.raises(StarGANError, match="mixes celeba, rafd"):
        LAYOUT.resolve({"Blond_Hair": 1.0, "happy": 1.0})


def test_layout_round_trips_through_json() -> None:
    back = LabelLayout.from_dict(json.loads(json.dumps(LAYOUT.to_dict())))
    assert back == LAYOUT
    with pytest.raises(StarGANError, match="malformed"):
        LabelLayout.from_dict([{"labels": ATTRS.to_dict()}])


def test_single_changes_cover_every_domain_of_every_dataset() -> None:
    labels = [torch.tensor([[1.0, 0.0, 0.0]]), torch.tensor([[0.0, 0.0, 1.0, 0.0]])]
    changes = LAYOUT.single_changes(labels)
    assert [n for n, _ in changes] == LAYOUT.domain_names()
    by_name = dict(changes)
    assert by_name["celeba.Blond_Hair"].tolist() == [[0, 1, 0, 0, 0, 0, 0, 1, 0]]
    assert by_name["rafd.sad"].tolist() == [[0, 0, 0, 0, 1, 0, 0, 0, 1]]


# ---------------------------------------------------------------- schedule
def test_schedule_alternates_and_every_dataset_trains_g() -> None:
    assert [dataset_at((1, 1), s)[0] for s in range(6)] == [0, 1, 0, 1, 0, 1]
    assert [dataset_at((2, 1), s)[:2] for s in range(6)] == [
        (0, 0), (0, 1), (1, 0), (0, 2), (0, 3), (1, 1)
    ]  # fmt: skip
    n_critic, schedule = 5, (1, 1, 1, 1, 1)  # 5 datasets: a plain step rule would starve 4
    g_parts = [
        dataset_at(schedule, s)[0]
        for s in range(100)
        if (dataset_at(schedule, s)[2] + 1) % n_critic == 0
    ]
    assert sorted(set(g_parts)) == [0, 1, 2, 3, 4] and len(g_parts) == 20


# ---------------------------------------------------------------- config
def _joint_tiny() -> Config:
    tiny = get_preset("tiny")
    attr = replace(tiny.data, name="attr")
    expr = DataConfig(dataset="faces-expr", name="expr", num_train=64, num_test=8, seed=1)
    return replace(tiny, name="tiny-joint", data=attr, joint=(expr,))


def test_prepare_fills_cls_and_mask_dims() -> None:
    cfg = prepare_config(_joint_tiny())
    assert (cfg.model.c_dim, cfg.model.mask_dim) == (5 + 8, 2)


def test_set_addresses_a_joint_dataset_by_name() -> None:
    cfg = apply_overrides(_joint_tiny(), ["data.expr.num_train=32", "data.attr.seed=4"])
    assert cfg.joint[0].num_train == 32 and cfg.data.seed == 4
    with pytest.raises(StarGANError, match="no dataset named 'exp'.*attr, expr"):
        apply_overrides(_joint_tiny(), ["data.exp.num_train=3"])


def test_joint_config_round_trips_through_json(tmp_path: Path) -> None:
    cfg = prepare_config(_joint_tiny())
    (tmp_path / "c.json").write_text(cfg.to_json())
    assert load_config(tmp_path / "c.json") == cfg


def test_duplicate_dataset_names_and_bad_schedule_are_refused() -> None:
    cfg = _joint_tiny()
    with pytest.raises(StarGANError, match="distinct names"):
        prepare_config(replace(cfg, joint=(replace(cfg.joint[0], name="attr"),)))
    with pytest.raises(StarGANError, match="one count >= 1 per dataset"):
        prepare_config(cfg, ["train.dataset_schedule=1,0"])


def test_data_arguments_name_each_dataset_of_a_joint_run() -> None:
    cfg = _joint_tiny()
    assert data_assignments(cfg, ["expr=/x=y"], "skip") == [
        "data.expr.path=/x=y",
        "data.attr.on_bad_image=skip",
        "data.expr.on_bad_image=skip",
    ]
    with pytest.raises(StarGANError, match="2 datasets \\(attr, expr\\); give each as"):
        data_assignments(cfg, ["/some/path"])
    assert data_assignments(get_preset("tiny"), ["/p"]) == ["data.path=/p"]


# ---------------------------------------------------------------- training
def _trainer(cfg: Config, run_dir: Path) -> V1Trainer:
    run_dir.mkdir(parents=True, exist_ok=True)
    return V1Trainer(
        cfg, run_dir, load_splits(cfg, "train", False), load_splits(cfg, "test", False)
    )


def test_d_classification_loss_uses_only_the_batch_dataset_slice(tmp_path: Path) -> None:
    cfg = prepare_config(_joint_tiny())
    tr = _trainer(cfg, tmp_path / "run")
    batch, gen = tr.make_batch(1)  # step 1: the expression dataset
    assert batch.part == 1 and torch.equal(batch.c_org[:, -2:].sum(0), torch.tensor([0.0, 4.0]))
    assert batch.c_org[:, :5].abs().sum() == 0  # its attribute part is unknown: zero
    tr.d_step(batch, tr.G(batch.x_real, batch.c_trg).detach(), gen)
    grad = tr.D.conv_cls.weight.grad
    assert grad[:5].abs().sum() == 0 and grad[5:].abs().sum() > 0


def test_joint_training_resumes_bit_identically(tmp_path: Path) -> None:
    cfg = prepare_config(_joint_tiny(), ["train.ckpt_every=3"])
    straight = _trainer(cfg, tmp_path / "a")
    straight.fit(progress=False)
    first = _trainer(cfg, tmp_path / "b")
    first.fit(progress=False, until=6)
    resumed = _trainer(cfg, tmp_path / "b")
    resumed.resume(list_checkpoints(tmp_path / "b" / "checkpoints")[-1])
    resumed.fit(progress=False)
    for (k, a), b in zip(
        straight.G.state_dict().items(), resumed.G.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b), k


@pytest.fixture(scope="module")
def joint_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from stargan.export import export_model

    run = run_training(_joint_tiny(), tmp_path_factory.mktemp("runs"), progress=False)
    return export_model(run, run / "model")


def test_joint_run_logs_each_dataset_and_grids_every_domain(joint_model: Path) -> None:
    from PIL import Image

    run = joint_model.parent
    stats = [json.loads(line) for line in (run / "stats.jsonl").read_text().splitlines()]
    assert any("D/loss_cls/attr" in s for s in stats) and any("D/loss_cls/expr" in s for s in stats)
    grid = Image.open(sorted((run / "samples").glob("*.png"))[-1])
    assert grid.width == 2 + (1 + 5 + 8) * (16 + 2)  # input + 5 attributes + 8 expressions
    assert grid.height == 2 + 8 * (16 + 2)  # 4 inputs from each dataset
    assert set(json.loads((run / "data_summary.json").read_text())) == {"attr", "expr"}


def test_joint_model_translates_across_datasets(joint_model: Path) -> None:
    from stargan.translate import Translator

    config = json.loads((joint_model / "config.json").read_text())
    assert config["format_version"] == 2 and [d["name"] for d in config["datasets"]] == [
        "attr",
        "expr",
    ]
    tr = Translator.from_pretrained(joint_model)
    x = torch.zeros(2, 3, 16, 16, dtype=torch.uint8)
    happy = tr.translate(x, "happy")
    assert happy.shape == x.shape and torch.equal(happy, tr.translate(x, "expr.happy"))
    assert not torch.equal(happy, tr.translate(x, "expr.sad"))
    c = tr.target_labels("Male=1", None, tr.preprocess(x))
    assert c[:, -2:].tolist() == [[1, 0], [1, 0]] and c[:, 5:13].abs().sum() == 0
    with pytest.raises(StarGANError, match="mixes attr, expr"):
        tr.translate(x, "Male=1,happy=1")
    names = [n for n, _ in tr.all_domains(tr.preprocess(x))]
    assert names[:2] == ["attr.Black_Hair", "attr.Blond_Hair"] and names[-1] == "expr.surprised"
    assert len(names) == 13


def test_score_judges_cross_dataset_translations_against_ground_truth(joint_model: Path) -> None:
    from stargan.evaluate.score import format_table, score_model
    from stargan.translate import Translator

    result = score_model(
        Translator.from_pretrained(joint_model), n=24, classifier_steps=30, progress=False
    )
    assert set(result["by_pair"]) == {"attr > attr", "attr > expr", "expr > attr", "expr > expr"}
    happy = result["per_domain"]["attr > expr.happy"]  # attribute faces given an expression
    assert 0 < happy["n"] <= 24 and 0 <= happy["target_acc"] <= 1 and happy["psnr"] > 0
    assert "expr > attr.Male" in result["per_domain"]
    assert "expr.happy" in result["classifier_real_acc"]
    assert "overall attr > expr" in format_table(result)


def test_translate_cli_with_a_joint_model(joint_model: Path, tmp_path: Path) -> None:
    from click.testing import CliRunner
    from PIL import Image

    from stargan.cli import cli

    Image.new("RGB", (20, 20), (120, 90, 60)).save(tmp_path / "face.png")
    runner = CliRunner()
    args = ["translate", str(joint_model), str(tmp_path / "face.png"), "-o", str(tmp_path / "o")]
    result = runner.invoke(cli, [*args, "--to", "happy"])
    assert result.exit_code == 0, result.output
    assert [p.name for p in (tmp_path / "o").iterdir()] == ["face_happy=1.png"]
    result = runner.invoke(cli, [*args, "--to", "Male=1,happy=1"])
    assert result.exit_code != 0 and "mixes attr, expr" in str(result.exception)
    result = runner.invoke(cli, [*args, "--all-domains"])
    assert result.exit_code == 0 and len(list((tmp_path / "o").iterdir())) == 1 + 13


def test_wrong_mask_and_declared_source(joint_model: Path, tmp_path: Path) -> None:
    """Paper Fig. 8: an expression asked with the attribute dataset's mask is another G
    input than with its own; --from gives the inputs' own expression (RaFD protocol)."""
    from click.testing import CliRunner
    from PIL import Image

    from stargan.cli import cli
    from stargan.translate import Translator

    tr = Translator.from_pretrained(joint_model)
    x = torch.full((2, 3, 16, 16), 90, dtype=torch.uint8)
    c = tr.layout.with_mask(tr.target_labels("happy", None, tr.preprocess(x)), "attr")
    assert c[:, -2:].tolist() == [[1, 0], [1, 0]] and c[:, 5:13].sum(1).tolist() == [1, 1]
    wrong = tr.translate(x, "happy", mask="attr")
    assert torch.equal(wrong, tr.translate(x, c)) and not torch.equal(
        wrong, tr.translate(x, "happy")
    )
    with pytest.raises(StarGANError, match="unknown dataset 'celeba' for the mask"):
        tr.translate(x, "happy", mask="celeba")
    c_src = tr.source_labels(tr.preprocess(x), "neutral")
    assert c_src[:, 5:].tolist() == [[0, 0, 0, 0, 0, 1, 0, 0, 0, 1]] * 2  # expr.neutral, mask
    labels = tr.dataset_labels(tr.preprocess(x), c_src)
    assert labels[1].tolist() == [[0, 0, 0, 0, 0, 1, 0, 0]] * 2

    Image.new("RGB", (20, 20), (120, 90, 60)).save(tmp_path / "face.png")
    runner = CliRunner()
    args = ["translate", str(joint_model), str(tmp_path / "face.png"), "-o", str(tmp_path / "o")]
    result = runner.invoke(cli, [*args, "--to", "happy", "--mask", "attr", "--from", "neutral"])
    assert result.exit_code == 0, result.output
    assert [p.name for p in (tmp_path / "o").iterdir()] == ["face_happy=1,mask=attr.png"]
    for extra, message in (
        (["--to", "happy", "--from", "Male=1"], "--from must name domains of the dataset"),
        (["--all-domains", "--mask", "attr"], "--mask needs --to"),
    ):
        result = runner.invoke(cli, [*args, *extra])
        assert result.exit_code != 0 and message in str(result.exception), extra


def test_translator_target_checks(joint_model: Path) -> None:
    from stargan.translate import Translator

    tr = Translator.from_pretrained(joint_model)
    x = tr.preprocess(torch.zeros(2, 3, 16, 16, dtype=torch.uint8))
    with pytest.raises(StarGANError, match="empty target"):
        tr.target_labels({}, None, x)
    with pytest.raises(StarGANError, match=r"labels must be \[N, 15\]"):
        tr.target_labels("happy", torch.zeros(2, 5), x)
    # rows of the attribute dataset: their expression labels come from D_cls, not zeros
    c_org = tr.layout.encode(0, torch.tensor([[1.0, 0, 0, 1, 1]] * 2))
    c = tr.target_labels("Male=0", c_org, x)
    assert c[:, :5].tolist() == [[1, 0, 0, 0, 1]] * 2
    c = tr.target_labels("happy", c_org, x)
    assert torch.equal(c, tr.target_labels("happy", None, x))


def test_dataset_names_and_single_dataset_schedule_are_checked() -> None:
    with pytest.raises(StarGANError, match="letters, digits"):
        prepare_config(_joint_tiny(), ["data.expr.name=ex.pr"])
    with pytest.raises(StarGANError, match="for joint runs"):
        prepare_config(get_preset("tiny"), ["train.dataset_schedule=3"])


def test_resume_applies_data_options_to_the_runs_own_datasets(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from stargan.cli import cli

    run_training(_joint_tiny(), tmp_path, overrides=["train.num_iters=5"], progress=False)
    result = CliRunner().invoke(
        cli,
        ["train", "--resume", "latest", "--outdir", str(tmp_path), "--quiet"]
        + ["--on-bad-image", "skip", "--set", "train.num_iters=6"],
    )
    assert result.exit_code == 0, result.output
    cfg = load_config(next(tmp_path.iterdir()) / "config.json")
    assert [d.on_bad_image for d in cfg.datasets] == ["skip", "skip"]


def test_resume_refuses_data_whose_domains_changed(tmp_path: Path) -> None:
    from stargan.train.run import find_resume

    run_training(_joint_tiny(), tmp_path, overrides=["train.num_iters=5"], progress=False)
    ckpt = find_resume(tmp_path, "latest")
    state = json.loads((ckpt / "state.json").read_text())
    state["labels"][1]["labels"]["names"][0] = "furious"  # as if a folder were renamed
    (ckpt / "state.json").write_text(json.dumps(state))
    with pytest.raises(StarGANError, match="differ from those"):
        run_training(get_preset("tiny"), tmp_path, "latest", ["train.num_iters=6"], False)


JOINT3_TOML = """\
name = "tiny-joint3"
[data]
name = "attr"
[[joint]]
dataset = "faces-expr"
name = "expr"
num_train = 32
num_test = 8
[[joint]]
dataset = "faces-sex"
name = "sex"
num_train = 32
num_test = 8
"""


def _main(args: list[str], monkeypatch: pytest.MonkeyPatch) -> int:
    import sys

    from stargan.cli import main

    monkeypatch.setattr(sys, "argv", ["stargan", *args])
    with pytest.raises(SystemExit) as exit_info:
        main()
    return exit_info.value.code


def test_config_file_trains_three_datasets_from_the_command_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    """--config lays a TOML file over --preset: three datasets, no Python needed."""
    (tmp_path / "joint3.toml").write_text(JOINT3_TOML)
    args = ["train", "--preset", "tiny", "--config", str(tmp_path / "joint3.toml"), "--quiet"]
    assert _main([*args, "--set", "data.sex.seed=3", "--outdir", str(tmp_path)], monkeypatch) == 0
    run = tmp_path / "00001-tiny-joint3"
    cfg = load_config(run / "config.json")
    assert [d.name for d in cfg.datasets] == ["attr", "expr", "sex"]
    assert (cfg.model.mask_dim, cfg.joint[1].seed, cfg.joint[1].num_train) == (3, 3, 32)
    assert cfg.train.num_iters == get_preset("tiny").train.num_iters  # the rest from --preset
    stats = [json.loads(line) for line in (run / "stats.jsonl").read_text().splitlines()]
    for name in ("attr", "expr", "sex"):
        assert any(f"D/loss_cls/{name}" in s for s in stats), name
    capsys.readouterr()


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("bad.toml", "[data\n", "not valid TOML"),
        ("bad.json", "{", "not valid JSON"),
        ("list.json", "[1]", "expected an object"),
        ("key.json", '{"train": {"num_iter": 5}}', r"unknown keys \['num_iter'\]"),
        ("type.json", '{"train": {"num_iters": "5"}}', "train.num_iters must be"),
        ("value.json", '{"model": {"image_size": 18}}', r"value.json: model.image_size 18 must"),
    ],
)
def test_config_file_errors_name_the_file_and_key(
    tmp_path: Path, name: str, text: str, message: str
) -> None:
    from stargan.config import overlay_config, read_config_file

    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(StarGANError, match=message):
        overlay_config(get_preset("tiny"), read_config_file(path), str(path))
    with pytest.raises(StarGANError, match="cannot read config"):
        read_config_file(tmp_path / "missing.json")


def test_config_file_and_resume_are_exclusive(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    (tmp_path / "c.json").write_text("{}")
    code = _main(["train", "--resume", "latest", "--config", str(tmp_path / "c.json")], monkeypatch)
    assert code != 0 and "drop --config" in capsys.readouterr().err
