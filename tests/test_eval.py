"""``stargan eval``: the metric registry, the paper protocols on known answers, records."""

from __future__ import annotations

import functools
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from stargan.config import DataConfig, ModelConfig
from stargan.data.dataset import ImageLabelDataset
from stargan.data.labels import LabelSpec
from stargan.errors import StarGANError
from stargan.evaluate.domain_classifier import (
    ClassifierTrainConfig,
    DomainClassifier,
    train_domain_classifier,
)
from stargan.evaluate.metrics import EvalContext, EvalSettings, source_configs, subset
from stargan.evaluate.registry import evaluate_model, parse_metrics
from stargan.translate import Translator

SIZE = 16
COLOURS = torch.tensor([[1.0, -1, -1], [-1, 1, -1], [-1, -1, 1]])  # red, green, blue


def _colour_images(classes: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Solid colour per class in [-1, 1] with a little noise, [N, 3, S, S]."""
    x = COLOURS[classes][:, :, None, None].expand(-1, -1, SIZE, SIZE)
    return (0.8 * x + 0.1 * torch.randn(x.shape, generator=gen)).clamp(-1, 1)


def _halves_images(labels: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Attribute 0: top half bright; attribute 1: bottom half bright (flips keep both)."""
    x = torch.full((len(labels), 3, SIZE, SIZE), -0.8)
    x[:, :, : SIZE // 2] += 1.6 * labels[:, 0, None, None, None]
    x[:, :, SIZE // 2 :] += 1.6 * labels[:, 1, None, None, None]
    return (x + 0.1 * torch.randn(x.shape, generator=gen)).clamp(-1, 1)


def _dataset(x: torch.Tensor, labels: torch.Tensor, spec: LabelSpec) -> ImageLabelDataset:
    u8 = ((x + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    return ImageLabelDataset(np.ascontiguousarray(u8), labels.numpy().astype(np.float32), spec)


class Painter(nn.Module):
    """A stand-in generator: ``oracle`` paints the target domain exactly, else identity."""

    def __init__(self, kind: str, oracle: bool) -> None:
        super().__init__()
        self.kind, self.oracle = kind, oracle
        self.anchor = nn.Parameter(torch.zeros(1))  # gives the translator a device
        self.gen = torch.Generator().manual_seed(1)

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        if not self.oracle:
            return x
        if self.kind == "categorical":
            return _colour_images(c.argmax(1), self.gen)
        return _halves_images(c, self.gen)


@functools.cache
def _toy(kind: str) -> tuple[ImageLabelDataset, ImageLabelDataset, DomainClassifier]:
    """Train and test data of an easy problem and a classifier for it, once per kind."""
    gen = torch.Generator().manual_seed(0)
    if kind == "categorical":
        spec = LabelSpec(("red", "green", "blue"), "categorical")

        def make(n):
            classes = torch.arange(n) % 3
            return _colour_images(classes, gen), nn.functional.one_hot(classes, 3).float()
    else:
        spec = LabelSpec(("top", "bottom"), "multi")

        def make(n):
            labels = torch.randint(0, 2, (n, 2), generator=gen).float()
            return _halves_images(labels, gen), labels

    train, test = _dataset(*make(96), spec), _dataset(*make(30), spec)
    clf = train_domain_classifier(train, ClassifierTrainConfig(epochs=3, batch_size=32), False)
    return train, test, clf


def _context(kind: str, oracle: bool, tmp_path: Path, **settings) -> EvalContext:
    train, test, clf = _toy(kind)
    tr = Translator(Painter(kind, oracle), ModelConfig(image_size=SIZE), train.spec)
    data = [DataConfig(dataset="folders", name="toy", path="/nowhere")]
    settings = EvalSettings(progress=False, **settings)
    ctx = EvalContext(Path("toy-model"), tr, data, settings, tmp_path)
    ctx._cache |= {("dataset", 0, "train"): train, ("dataset", 0, "test"): test}
    ctx._cache[("classifier", 0)] = clf
    return ctx


@pytest.mark.parametrize("oracle", [True, False])
def test_categorical_protocol_error_is_zero_for_an_oracle_and_total_for_identity(
    oracle: bool, tmp_path: Path
) -> None:
    ctx = _context("categorical", oracle, tmp_path)
    (record,) = evaluate_model(ctx, ["classification"], log=lambda _: None)
    summary = record["summary"]
    assert summary["real_error"] == 0.0
    assert summary["translations"] == 30 * 2  # every test image to both other domains
    assert summary["error"] == (0.0 if oracle else 1.0)
    matrix = next(t for t in record["tables"] if t["kind"] == "matrix")
    assert matrix["columns"] == ["red", "green", "blue"]
    assert [row[1 + i] for i, row in enumerate(matrix["rows"])] == [None, None, None]  # diagonal
    assert (tmp_path / record["images"][0]).exists()


@pytest.mark.parametrize("oracle", [True, False])
def test_multi_label_protocol_target_accuracy_and_preservation(
    oracle: bool, tmp_path: Path
) -> None:
    ctx = _context("multi", oracle, tmp_path)
    (record,) = evaluate_model(ctx, ["classification"], log=lambda _: None)
    summary = record["summary"]
    assert summary["target_acc"] == (1.0 if oracle else 0.0)
    assert summary["kept"] == 1.0  # a flip of one half leaves the other as it was
    assert summary["translations"] == 2 * 30  # a flip changes every image
    assert summary["real_target_acc"] == 1.0  # the toy judge reads real images right
    bars = next(t for t in record["tables"] if t["kind"] == "bars")
    assert [row[0] for row in bars["rows"]] == ["top", "bottom"]
    assert bars["columns"][-1] == "classifier on real images of the target"
    assert [row[-1] for row in bars["rows"]] == [1.0, 1.0]


class _BlindToTop:
    """A judge that never reads the top half as set, on real images or translations."""

    def __init__(self, clf: DomainClassifier) -> None:
        self.clf, self.spec, self.image_size = clf, clf.spec, clf.image_size

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        pred = self.clf.predict(x).clone()
        pred[:, 0] = 0
        return pred


def test_real_target_reading_follows_the_judge_on_real_images_of_each_target(
    tmp_path: Path,
) -> None:
    ctx = _context("multi", True, tmp_path)
    ctx._cache[("classifier", 0)] = _BlindToTop(ctx._cache[("classifier", 0)])
    (record,) = evaluate_model(ctx, ["classification"], log=lambda _: None)
    bars = next(t for t in record["tables"] if t["kind"] == "bars")
    top, bottom = (row[-1] for row in bars["rows"])
    # Faces made top-set: real top-set faces read right 0%; made top-clear: 100%. So the
    # top row is the share of test images whose top is set (their flips are top-clear).
    c_test = torch.as_tensor(_toy("multi")[1].labels)
    assert top == pytest.approx(float(c_test[:, 0].float().mean()))
    assert 0 < top < 1 and bottom == 1.0
    assert record["summary"]["real_target_acc"] == pytest.approx((top + bottom) / 2)


def test_real_reading_of_targets_is_the_judges_recall_of_each_target_value() -> None:
    from stargan.evaluate.classification import _real_reading_of_targets

    # Real images: two carry the attribute (the judge sees one), two do not (both right).
    c_real = torch.tensor([[1.0], [1.0], [0.0], [0.0]])
    pred_real = torch.tensor([[1.0], [0.0], [0.0], [0.0]])
    read = _real_reading_of_targets(pred_real, c_real, torch.tensor([[1.0], [0.0], [1.0]]))
    assert read.tolist() == [0.5, 1.0, 0.5]
    # Two attributes changed together: a target no real image carries has no reading.
    c_real2 = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    read2 = _real_reading_of_targets(c_real2, c_real2, torch.tensor([[1.0, 1.0], [0.0, 1.0]]))
    assert read2[0].isnan() and read2[1] == 1.0


@pytest.mark.parametrize("kind", ["multi", "categorical"])
def test_reconstruction_is_exact_for_identity_and_lossy_for_a_redrawing_g(
    kind: str, tmp_path: Path
) -> None:
    """Identity G: G(G(x, c_trg), c_org) = x (the 100 dB cap); a G that redraws the image
    with fresh noise cannot give x back."""
    (same,) = evaluate_model(_context(kind, False, tmp_path), ["reconstruction"], lambda _: None)
    (redrawn,) = evaluate_model(_context(kind, True, tmp_path), ["reconstruction"], lambda _: None)
    assert same["summary"]["rec_psnr"] == 100.0
    assert 10.0 < redrawn["summary"]["rec_psnr"] < 40.0
    # one pass with the own labels (STGAN's protocol): exact for identity, lossy redrawn
    assert same["summary"]["self_rec_psnr"] == 100.0
    assert same["summary"]["self_rec_ssim"] == pytest.approx(1.0)
    assert 10.0 < redrawn["summary"]["self_rec_psnr"] < 40.0
    assert redrawn["summary"]["self_rec_ssim"] < 0.9
    (self_table,) = (t for t in redrawn["tables"] if t["title"].startswith("Self"))
    assert self_table["rows"][0][0] == "toy" and self_table["rows"][0][3] == 30
    rows = redrawn["tables"][0]["rows"]
    assert sum(r[2] for r in rows) == 30 * 2  # each image: both flips / both other classes


@pytest.mark.parametrize("kind", ["multi", "categorical"])
def test_classification_and_reconstruction_translate_the_test_images_once(
    kind: str, tmp_path: Path
) -> None:
    """Both judge G(x, c_trg) of the same single-domain changes: made once, then reused
    (the reconstruction's way back, G(fake, c_org), and its self pass G(x, c_org) are its
    own)."""
    ctx = _context(kind, True, tmp_path)
    calls = []
    ctx.tr.G.register_forward_hook(lambda _, args, out: calls.append(len(args[0])))
    evaluate_model(ctx, ["classification"], lambda _: None)
    translated = sum(calls)  # the changes, plus the sample grid's columns
    (rec,) = evaluate_model(ctx, ["reconstruction"], lambda _: None)
    # the way back (30 images x 2 changes) and the self-reconstruction G(x, c_org)
    assert sum(calls) - translated == 30 * 2 + 30
    assert 10.0 < rec["summary"]["rec_psnr"] < 40.0


def test_records_are_appended_as_json_lines_with_provenance(tmp_path: Path) -> None:
    ctx = _context("categorical", True, tmp_path, n=12, seed=3)
    evaluate_model(ctx, ["classification", "params"], log=lambda _: None)
    evaluate_model(ctx, ["params"], log=lambda _: None)
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    assert [r["metric"] for r in records] == ["classification", "params", "params"]
    first = records[0]
    assert first["n"] == 12 and first["seed"] == 3 and first["data"] == ["toy=/nowhere"]
    assert first["model"].endswith("toy-model") and first["elapsed_s"] >= 0
    assert "T" in first["time"]


def test_test_subset_is_seeded_and_ordered() -> None:
    a, b, c = subset(100, 10, 0), subset(100, 10, 0), subset(100, 10, 1)
    assert (a == b).all() and (a != c).any()
    assert (np.diff(a) > 0).all() and len(a) == 10
    assert (subset(5, 10, 0) == np.arange(5)).all()


def test_unknown_metric_is_refused_with_a_hint() -> None:
    with pytest.raises(StarGANError, match="did you mean classification"):
        parse_metrics("clasification")
    assert parse_metrics("fid, params,fid") == ["fid", "params"]


def test_source_configs_are_the_trained_ones_with_new_paths(tiny_model: Path) -> None:
    tr = Translator.from_pretrained(tiny_model)
    (cfg,) = source_configs(tr, ["/new/place"])
    assert cfg.dataset == "faces-attr" and cfg.path == "/new/place" and cfg.num_test == 16
    assert source_configs(tr)[0].path == ""


# ------------------------------------------------------------------ command line
def _cli(capsys, monkeypatch, *args) -> tuple[int, str, str]:
    import sys

    from stargan.cli import main

    monkeypatch.setattr(sys, "argv", ["stargan", *map(str, args)])
    with pytest.raises(SystemExit) as exit_info:
        main()
    out, err = capsys.readouterr()
    return exit_info.value.code, out, err


@pytest.fixture(scope="module")
def tiny_classifier(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``stargan classifier train`` of the tiny model's data: a 1-epoch ResNet-18."""
    import subprocess
    import sys

    out = tmp_path_factory.mktemp("clf") / "clf"
    cmd = [sys.executable, "-m", "stargan", "classifier", "train", "--model", str(tiny_model)]
    done = subprocess.run(
        [*cmd, "--epochs", "1", "--balance", "-o", str(out), "--quiet"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert "real test error:" in done.stdout and (out / "model.safetensors").exists()
    assert json.loads((out / "config.json").read_text())["meta"]["train"]["balance"] is True
    return out


def test_eval_writes_records_and_a_report_and_accumulates_models(
    capsys, monkeypatch, tiny_model: Path, tiny_classifier: Path, tmp_path: Path
) -> None:
    out = tmp_path / "eval"
    args = ("eval", tiny_model, "--classifier", tiny_classifier, "--n", 12, "-o", out, "--quiet")
    code, stdout, _ = _cli(capsys, monkeypatch, *args)
    assert code == 0 and "report:" in stdout
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    metrics = ["counterfactual", "classification", "reconstruction", "params", "speed"]
    assert [r["metric"] for r in records] == metrics
    counter = records[0]["summary"]
    assert counter["identity_psnr"] > counter["psnr"] > 0 and 0 <= counter["ssim"] <= 1
    assert "lpips" not in counter  # 16 px: below LPIPS's minimum, and the record says so
    assert any("LPIPS" in note for note in records[0]["notes"])
    assert 0 < records[2]["summary"]["rec_psnr"] <= 100
    assert records[3]["summary"]["G_params"] > 0 and records[4]["summary"]["images_per_s"] > 0
    html = (out / "report.html").read_text()
    assert "classification" in html and (out / "plots").is_dir()
    code, _, _ = _cli(capsys, monkeypatch, "eval", tiny_model, "--metrics", "params", "-o", out)
    assert code == 0 and len((out / "metrics.jsonl").read_text().splitlines()) == 6


def test_eval_is_deterministic_under_a_seed(
    capsys, monkeypatch, tiny_model: Path, tiny_classifier: Path, tmp_path: Path
) -> None:
    summaries = []
    for name in ("a", "b"):
        args = ("eval", tiny_model, "--metrics", "classification", "--n", 10, "--seed", 4)
        code, _, _ = _cli(
            capsys, monkeypatch, *args, "--classifier", tiny_classifier, "-o", tmp_path / name
        )
        assert code == 0
        line = (tmp_path / name / "metrics.jsonl").read_text()
        summaries.append((json.loads(line)["summary"], json.loads(line)["tables"]))
    assert summaries[0] == summaries[1]


def test_fid_metric_reports_tasks_and_a_real_floor(
    capsys, monkeypatch, tiny_model: Path, tmp_path: Path
) -> None:
    from conftest import require_weights

    require_weights("fid_inception.safetensors")
    args = ("eval", tiny_model, "--metrics", "fid", "--n", 6, "--fid-real", 12, "--quiet")
    code, _, err = _cli(capsys, monkeypatch, *args, "-o", tmp_path)
    assert code == 0, err
    (record,) = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    summary = record["summary"]
    assert summary["tasks"] >= 2 and summary["fid_real_floor"] > 0
    assert summary["fid_mean"] > 0 and summary["fid_all"] > 0
    (table,) = record["tables"]
    assert table["columns"] == ["task", "translations", "real images", "FID"]
    assert all(" > " in row[0] for row in table["rows"])


@pytest.mark.parametrize(
    ("args", "text"),
    [
        (("--metrics", "fidd"), "did you mean fid"),
        (("--metrics", "classification", "--classifier", "/no/clf"), "stargan classifier train"),
        (("--n", "0"), "0 is not in the range"),
        (("--metrics", "fid-v2-official"), "--inception-torchvision PATH"),
    ],
)
def test_eval_errors_are_one_line(
    capsys, monkeypatch, tiny_model: Path, tmp_path: Path, args, text
) -> None:
    code, _, err = _cli(capsys, monkeypatch, "eval", tiny_model, *args, "-o", tmp_path, "--quiet")
    lines = [x for x in err.splitlines() if x.strip()]
    assert code == 2 and len(lines) == 1 and text in lines[0], err


def test_a_classifier_of_other_domains_is_refused(
    capsys, monkeypatch, tiny_model: Path, tmp_path: Path
) -> None:
    _, _, clf = _toy("categorical")
    clf.save(tmp_path / "toy-clf")
    args = ("eval", tiny_model, "--metrics", "classification", "--classifier", tmp_path / "toy-clf")
    code, _, err = _cli(capsys, monkeypatch, *args, "-o", tmp_path / "ev", "--quiet")
    assert code == 2 and "judges ['red', 'green', 'blue'] at 16 px" in err


def test_classifier_train_needs_one_data_source(capsys, monkeypatch, tmp_path: Path) -> None:
    code, _, err = _cli(capsys, monkeypatch, "classifier", "train", "-o", tmp_path / "c")
    assert code == 2 and "exactly one of --model MODEL or --preset NAME" in err


def test_preservation_leaves_out_the_target_attribute_itself(tmp_path: Path) -> None:
    """CelebA rows can carry two hair colours; setting one keeps it unchanged while the
    other is cleared. The target's own column is judged by target accuracy only."""
    train, _, clf = _toy("multi")
    spec = LabelSpec(("top", "bottom"), "multi", (("top", "bottom"),))
    both = torch.ones(12, 2)
    test = _dataset(_halves_images(both, torch.Generator().manual_seed(2)), both, spec)
    ctx = _context("multi", True, tmp_path)
    ctx.tr = Translator(Painter("multi", True), ModelConfig(image_size=SIZE), spec)
    ctx._cache[("dataset", 0, "test")] = test
    (record,) = evaluate_model(ctx, ["classification"], log=lambda _: None)
    matrix = next(t for t in record["tables"] if t["kind"] == "matrix")
    assert [row[1 + i] for i, row in enumerate(matrix["rows"])] == [None, None]
    assert record["summary"]["translations"] == 24 and record["summary"]["target_acc"] == 1.0


class JointPainter(Painter):
    """Oracle for a joint model: paints the target of whichever dataset the mask names."""

    def __init__(self, layout) -> None:
        super().__init__("joint", True)
        self.layout = layout

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        out = torch.empty_like(x)
        to_colour = c[:, self.layout.cls_dim] == 1
        colour, halves = c[:, self.layout.part(0)], c[:, self.layout.part(1)]
        out[to_colour] = _colour_images(colour[to_colour].argmax(1), self.gen)
        out[~to_colour] = _halves_images(halves[~to_colour], self.gen)
        return out


def test_joint_models_are_also_judged_across_datasets(tmp_path: Path) -> None:
    from stargan.data.joint import LabelLayout

    colours, halves = _toy("categorical"), _toy("multi")
    layout = LabelLayout(("colours", "halves"), (colours[0].spec, halves[0].spec))
    tr = Translator(JointPainter(layout), ModelConfig(image_size=SIZE), layout)
    data = [DataConfig(dataset="folders", name=name, path="/nowhere") for name in layout.datasets]
    ctx = EvalContext(Path("joint"), tr, data, EvalSettings(progress=False), tmp_path)
    for i, (train, test, clf) in enumerate((colours, halves)):
        ctx._cache |= {("dataset", i, "train"): train, ("dataset", i, "test"): test}
        ctx._cache[("classifier", i)] = clf
    (record,) = evaluate_model(ctx, ["classification"], log=lambda _: None)
    summary = record["summary"]
    assert summary["colours.error"] == 0.0 and summary["halves.target_acc"] == 1.0
    assert summary["halves>colours.error"] == 0.0  # top/bottom faces painted a colour
    assert summary["colours>halves.target_acc"] == 1.0
    assert "colours>halves.real_error" not in summary and "colours.real_error" in summary
    titles = [t["title"] for t in record["tables"]]
    assert any(t.startswith("colours>halves: ") for t in titles)
    cross_bars = next(t for t in record["tables"] if t["title"].startswith("colours>halves: "))
    assert "classifier on real" not in cross_bars["columns"]
    assert "classifier on real images of the target" not in cross_bars["columns"]
    assert "colours>halves.real_target_acc" not in summary
    assert "halves.real_target_acc" in summary
    (rec,) = evaluate_model(ctx, ["reconstruction"], log=lambda _: None)
    (self_table,) = (t for t in rec["tables"] if t["title"].startswith("Self"))
    assert [row[0] for row in self_table["rows"]] == ["colours", "halves"]
    assert {"colours.self_rec_psnr", "halves.self_rec_ssim"} <= rec["summary"].keys()
    colours_cross = next(
        t
        for t in record["tables"]
        if t["title"].startswith("halves>colours: ") and t["kind"] == "bars"
    )
    assert colours_cross["columns"] == ["domain", "translated into it"]


def test_default_judge_is_per_resize_filter_and_bicubic_keeps_its_old_key(
    tmp_path, monkeypatch
) -> None:
    from dataclasses import asdict, replace
    from types import SimpleNamespace

    from stargan.data.cache import cache_key
    from stargan.evaluate.classification import default_classifier_dir

    monkeypatch.setenv("STARGAN_CACHE", str(tmp_path))
    data = DataConfig(dataset="celeba", path="/data/celeba")
    tr = SimpleNamespace(image_size=64)
    bicubic = default_classifier_dir(SimpleNamespace(data=[data], tr=tr), 0)
    bilinear_data = replace(data, resize_filter="bilinear")
    bilinear = default_classifier_dir(SimpleNamespace(data=[bilinear_data], tr=tr), 0)
    assert bicubic != bilinear
    # the key a judge got before data.resize_filter existed (judges trained then are reused)
    old = {k: v for k, v in asdict(data).items() if k != "resize_filter"}
    # ... and before ClassifierTrainConfig.balance: the settings of then, written out
    train = {"epochs": 30, "max_steps": 1500, "batch_size": 64, "lr": 1e-3}
    old_key = cache_key("resnet18", old, 64, {**train, "weight_decay": 5e-4, "seed": 0})
    assert bicubic == tmp_path / "classifiers" / f"celeba-{old_key}"


@pytest.mark.parametrize("oracle", [True, False])
def test_multi_attribute_metric_needs_every_changed_attribute_right(
    oracle: bool, tmp_path: Path
) -> None:
    """Paper Fig. 4 scored: both halves flipped at once; right only when both read right."""
    ctx = _context("multi", oracle, tmp_path)
    (record,) = evaluate_model(ctx, ["multi-attribute"], log=lambda _: None)
    summary = record["summary"]
    assert summary["target_acc"] == (1.0 if oracle else 0.0)
    assert summary["translations"] == 30  # a double flip changes every image
    bars = next(t for t in record["tables"] if t["kind"] == "bars")
    assert [row[0] for row in bars["rows"]] == ["top+bottom"]
    assert record["images"][0].endswith("-toy-multi.png")


def test_multi_attribute_metric_skips_categorical_labels(tmp_path: Path) -> None:
    logged: list[str] = []
    assert (
        evaluate_model(_context("categorical", True, tmp_path), ["multi-attribute"], logged.append)
        == []
    )
    assert "skipped (needs multi-label attributes of at least two kinds" in logged[0]


def test_from_translates_only_test_images_of_the_source_domain(tmp_path: Path) -> None:
    """The RaFD protocol: neutral faces in, every other expression out."""
    ctx = _context("categorical", True, tmp_path, source="red")
    (record,) = evaluate_model(ctx, ["classification"], log=lambda _: None)
    assert record["summary"]["translations"] == 10 * 2 and record["source"] == "red"
    matrix = next(t for t in record["tables"] if t["kind"] == "matrix")
    assert [row[0] for row in matrix["rows"] if any(v is not None for v in row[1:])] == ["red"]
    ctx = _context("multi", True, tmp_path, source="top=1,bottom=0")
    x_u8, c_org = ctx.test_images(0)
    assert len(x_u8) > 0 and c_org.tolist() == [[1.0, 0.0]] * len(x_u8)
    with pytest.raises(StarGANError, match="unknown domain 'left'"):
        _context("multi", True, tmp_path, source="left=1").test_images(0)


def test_official_v2_fid_is_for_v2_models(tmp_path: Path) -> None:
    said: list[str] = []
    assert evaluate_model(_context("multi", True, tmp_path), ["fid-v2-official"], said.append) == []
    assert "skipped (StarGAN v2 models only)" in said[0]
