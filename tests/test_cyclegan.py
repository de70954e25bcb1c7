"""The pairwise CycleGAN baseline: networks, losses, image pool, the set of k(k-1)
generators, training with exact resume, export, translate and ``stargan eval``."""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file
from torch import nn

from stargan.config import DataConfig
from stargan.cyclegan import PairwiseGenerator, PairwiseModel, pairwise_parameters
from stargan.cyclegan_config import (
    CycleModelConfig,
    apply_overrides,
    get_cycle_preset,
    iters_per_pair,
)
from stargan.data.labels import LabelSpec
from stargan.errors import StarGANError
from stargan.losses import cyclegan as losses
from stargan.models import count_parameters
from stargan.models.cyclegan import PatchDiscriminator, ResnetGenerator, receptive_field
from stargan.train.image_pool import ImagePool

TINY = CycleModelConfig(image_size=16, g_dim=4, g_blocks=1, d_dim=4, d_layers=2)
COLOURS = torch.tensor([[1.0, -1, -1], [-1, 1, -1], [-1, -1, 1]])  # red, green, blue


def _cli(capsys, monkeypatch, *args) -> tuple[int, str, str]:
    from stargan.cli import main

    monkeypatch.setattr(sys, "argv", ["stargan", *map(str, args)])
    with pytest.raises(SystemExit) as exit_info:
        main()
    out, err = capsys.readouterr()
    return exit_info.value.code, out, err


# ---------------------------------------------------------------- networks
def test_networks_keep_the_image_size_and_score_patches() -> None:
    torch.manual_seed(0)
    G, D = ResnetGenerator(TINY.g_dim, TINY.g_blocks), PatchDiscriminator(TINY.d_dim, 2)
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    y = G(x)
    assert y.shape == x.shape and y.abs().max() <= 1
    assert D(x).shape == (2, 1, 16 // 4 - 2, 16 // 4 - 2)
    loss = y.mean() + D(y).mean()
    loss.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in G.parameters())


def test_paper_sizes_on_the_meta_device() -> None:
    """Appendix 7.2: the 9-block G at 256 px, the 6-block G at 128 px, the 70x70 D."""
    with torch.device("meta"):
        g9, g6 = ResnetGenerator(64, 9), ResnetGenerator(64, 6)
        d = PatchDiscriminator(64, 3)
    assert count_parameters(g9) == 11_378_179
    assert count_parameters(g6) == 7_837_699
    assert count_parameters(d) == 2_764_737
    assert receptive_field(3) == 70 and receptive_field(2) == 34
    widths = [m.out_channels for m in d.modules() if isinstance(m, nn.Conv2d)]
    assert widths == [64, 128, 256, 512, 1]  # C64-C128-C256-C512, then the patch scores


@pytest.mark.parametrize(("k", "generators"), [(2, 2), (4, 12), (7, 42), (8, 56)])
def test_a_set_for_k_domains_has_k_k_minus_1_generators(k: int, generators: int) -> None:
    counts = pairwise_parameters(TINY, k)
    assert counts["generators"] == generators  # the paper: "12 generators for 4 domains"
    g, d = count_parameters(ResnetGenerator(4, 1)), count_parameters(PatchDiscriminator(4, 2))
    assert (counts["G"], counts["D"]) == (generators * g, generators * d)


# ---------------------------------------------------------------- losses
def test_lsgan_and_discriminator_loss_on_known_inputs() -> None:
    ones, zeros = torch.ones(2, 1, 3, 3), torch.zeros(2, 1, 3, 3)
    assert losses.lsgan(ones, True) == 0 and losses.lsgan(zeros, False) == 0
    assert losses.lsgan(torch.full((4,), 3.0), True) == 4.0  # (3 - 1)^2
    loss, parts = losses.d_loss(zeros, ones)  # every answer wrong: 1/2 (1 + 1)
    assert loss == 1.0 and parts["real"] == 1.0 and parts["fake"] == 1.0
    assert losses.d_loss(ones, zeros)[0] == 0.0


def test_generator_loss_weighs_cycle_by_lambda_and_identity_by_half_of_it() -> None:
    x, y = torch.zeros(1, 3, 2, 2), torch.zeros(1, 3, 2, 2)
    cycles = (x, x + 0.1, y, y - 0.3)  # L_cyc = 0.1 + 0.3
    identities = (x, x + 0.2, y, y)  # L_identity = 0.2
    d_fake = torch.zeros(1, 1, 2, 2)  # both Ds call every fake fake: adv = 1 + 1
    loss, parts = losses.g_loss(d_fake, d_fake, cycles, identities, 10.0, 0.5)
    assert parts["adv"] == 2.0
    assert torch.isclose(parts["cyc"], torch.tensor(0.4))
    assert torch.isclose(loss, torch.tensor(2.0 + 10 * 0.4 + 0.5 * 10 * 0.2))
    without, parts = losses.g_loss(d_fake, d_fake, cycles, None, 10.0, 0.5)
    assert "idt" not in parts and torch.isclose(without, torch.tensor(6.0))


# ---------------------------------------------------------------- image pool
def test_image_pool_fills_then_swaps_keeping_every_image() -> None:
    pool = ImagePool(3, (1, 1, 1))
    first = torch.arange(1.0, 4.0).view(3, 1, 1, 1)
    assert torch.equal(pool.query(first, torch.Generator().manual_seed(0)), first)  # filling
    before = pool.images.flatten().tolist()
    fakes = torch.arange(10.0, 30.0).view(20, 1, 1, 1)
    out = pool.query(fakes, torch.Generator().manual_seed(1))
    returned = out.flatten().tolist()
    # nothing made or lost: what went in (pool + fakes) is what is there (pool + returned)
    assert sorted(before + fakes.flatten().tolist()) == sorted(
        pool.images.flatten().tolist() + returned
    )
    swapped = sum(r != f for r, f in zip(returned, fakes.flatten().tolist(), strict=True))
    assert 4 <= swapped <= 16  # about half, with probability 1/2 each
    again = ImagePool(3, (1, 1, 1))
    again.load_state_dict(pool.state_dict())  # the checkpointed state draws the same
    a = pool.query(fakes, torch.Generator().manual_seed(2))
    b = again.query(fakes, torch.Generator().manual_seed(2))
    assert torch.equal(a, b) and int(pool.count) == 3
    assert torch.equal(ImagePool(0, (1, 1, 1)).query(fakes, torch.Generator()), fakes)


# ---------------------------------------------------------------- the set as one model
class Stamp(nn.Module):
    """G_{s->t} for the routing tests: writes the value ``10 s + t`` everywhere."""

    def __init__(self, s: int, t: int) -> None:
        super().__init__()
        self.value = nn.Parameter(torch.tensor(10.0 * s + t))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.full_like(x, 1.0) * self.value


def test_pairwise_generator_routes_each_row_by_its_source_and_target() -> None:
    G = PairwiseGenerator({(s, t): Stamp(s, t) for s in range(3) for t in range(3) if s != t})
    x = torch.zeros(4, 3, 2, 2)
    src, trg = torch.tensor([0, 2, 1, 1]), torch.tensor([1, 0, 1, 2])
    eye = torch.eye(3)
    y = G(x, eye[trg], eye[src])
    assert y[:, 0, 0, 0].tolist() == [1.0, 20.0, 0.0, 12.0]  # row 2: own domain, unchanged


class PaintIfSource(nn.Module):
    """A perfect G_{s->t} for images of colour ``s`` (paints colour ``t``); anything else
    comes out black, so a generator picked for the wrong source fails the judge."""

    def __init__(self, s: int, t: int) -> None:
        super().__init__()
        self.s, self.t = s, t
        self.anchor = nn.Parameter(torch.zeros(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        is_s = (x.mean((2, 3)).argmax(1) == self.s)[:, None, None, None]
        colour = COLOURS[self.t][None, :, None, None].expand_as(x)
        return torch.where(is_s, 0.8 * colour, torch.full_like(x, -1.0))


def _colours(classes: torch.Tensor) -> np.ndarray:
    x = 0.8 * COLOURS[classes][:, :, None, None].expand(-1, -1, 16, 16)
    return ((x + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()


def test_classification_metric_judges_each_translation_by_its_source_generator(
    tmp_path: Path,
) -> None:
    from stargan.data.dataset import ImageLabelDataset
    from stargan.evaluate.domain_classifier import ClassifierTrainConfig, train_domain_classifier
    from stargan.evaluate.metrics import EvalContext, EvalSettings
    from stargan.evaluate.registry import evaluate_model

    spec = LabelSpec(("red", "green", "blue"), "categorical")
    classes = torch.arange(30) % 3
    labels = nn.functional.one_hot(classes, 3).float().numpy()
    data = ImageLabelDataset(np.ascontiguousarray(_colours(classes)), labels, spec)
    clf = train_domain_classifier(data, ClassifierTrainConfig(epochs=1, batch_size=10), False)
    nets = {(s, t): PaintIfSource(s, t) for s in range(3) for t in range(3) if s != t}
    model = PairwiseModel(PairwiseGenerator(nets), TINY, spec)
    ctx = EvalContext(
        Path("pairs"),
        model,
        [DataConfig(dataset="folders", name="toy", path="/nowhere")],
        EvalSettings(progress=False),
        tmp_path,
    )
    ctx._cache |= {("dataset", 0, "test"): data, ("classifier", 0): clf}
    (record,) = evaluate_model(ctx, ["classification"], log=lambda _: None)
    assert record["summary"]["real_error"] == 0.0
    assert record["summary"]["translations"] == 60 and record["summary"]["error"] == 0.0


# ---------------------------------------------------------------- config
def test_budget_is_split_evenly_over_the_pairs() -> None:
    ck = get_cycle_preset("cyclegan-ckplus")
    assert iters_per_pair(ck, 7) == 6000 // 21 == 285
    per_pair = apply_overrides(ck, ["train.budget_iters=0", "train.pair_iters=40"])
    assert iters_per_pair(per_pair, 7) == 40
    with pytest.raises(StarGANError, match="less than one iteration for each of the 21 pairs"):
        iters_per_pair(apply_overrides(ck, ["train.budget_iters=20"]), 7)
    with pytest.raises(StarGANError, match="unknown config key 'model.g_blockz'"):
        apply_overrides(ck, ["model.g_blockz=3"])
    with pytest.raises(StarGANError, match="expects int"):
        apply_overrides(ck, ["train.batch_size=big"])


# ---------------------------------------------------------------- train, export, eval
@pytest.fixture(scope="module")
def tiny_pairs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished ``cyclegan-tiny`` run: 8 built-in expressions, 28 pairs of 2 iterations."""
    from stargan.train.cyclegan_run import train_pairs

    outdir = tmp_path_factory.mktemp("cyclegan-runs")
    return train_pairs(get_cycle_preset("cyclegan-tiny"), outdir, progress=False)


def test_cli_train_export_translate_eval(
    capsys, monkeypatch, tiny_pairs: Path, tmp_path: Path
) -> None:
    import stargan.evaluate.score as score

    model = tmp_path / "pairs-model"
    code, out, err = _cli(capsys, monkeypatch, "cyclegan", "export", tiny_pairs, "-o", model)
    assert code == 0, err
    config = json.loads((model / "config.json").read_text())
    assert config["kind"] == "cyclegan-pairs" and len(config["generators"]) == 56
    assert len(list(model.glob("G_*.safetensors"))) == 56 == len(list(model.glob("D_*")))
    first = config["generators"][0]
    assert (first["source"], first["target"]) == ("angry", "contemptuous")
    # the exported G_0->1 is pair 0's G, the exported G_1->0 its F
    ckpt = sorted((tiny_pairs / "pairs" / "00-01-angry-contemptuous" / "checkpoints").iterdir())
    for name, net in (("G_00_to_01", "G"), ("G_01_to_00", "F")):
        exported = load_file(model / f"{name}.safetensors")
        trained = load_file(ckpt[-1] / f"{net}.safetensors")
        assert all(torch.equal(exported[k], trained[k]) for k in trained)

    face = tmp_path / "face.png"
    Image.fromarray(np.full((40, 40, 3), 128, np.uint8)).save(face)
    args = ("cyclegan", "translate", model, face, "--from", "angry", "--to", "happy,sad")
    code, out, err = _cli(capsys, monkeypatch, *args, "-o", tmp_path / "out")
    assert code == 0, err
    assert Image.open(tmp_path / "out" / "face-happy.png").size == (16, 16)

    clf = tmp_path / "clf"
    args = ("classifier", "train", "--model", model, "--epochs", "1", "-o", clf, "--quiet")
    assert _cli(capsys, monkeypatch, *args)[0] == 0
    monkeypatch.setattr(score, "CLASSIFIER_TRAIN_IMAGES", 256)  # the counterfactual judge
    metrics = "classification,counterfactual,reconstruction,params"
    args = ("eval", model, "--metrics", metrics, "--classifier", clf, "--n", 16, "--quiet")
    code, out, err = _cli(capsys, monkeypatch, *args, "-o", tmp_path / "eval")
    assert code == 0, err
    records = {
        r["metric"]: r
        for r in map(json.loads, (tmp_path / "eval" / "metrics.jsonl").read_text().splitlines())
    }
    classification = records["classification"]["summary"]
    assert classification["translations"] == 16 * 7 and 0 <= classification["error"] <= 1
    counter = records["counterfactual"]["summary"]
    assert counter["psnr"] > 0 and counter["identity_psnr"] > 0
    assert records["reconstruction"]["summary"]["rec_psnr"] > 0
    # G(x, c_org) = x by construction for a pair set: no self-reconstruction is claimed
    assert "self_rec_psnr" not in records["reconstruction"]["summary"]
    assert len(records["reconstruction"]["tables"]) == 1
    params = records["params"]["summary"]
    assert params["generators"] == 56
    assert params["G_params"] == pairwise_parameters(TINY, 8)["G"]
    assert params["total_params"] == pairwise_parameters(TINY, 8)["total"]


def test_translate_in_python_matches_the_source_generator(tiny_pairs: Path, tmp_path) -> None:
    from stargan.cyclegan import export_pairs

    model_dir, unfinished = export_pairs(tiny_pairs, tmp_path / "m", with_discriminators=False)
    assert unfinished == [] and not list(model_dir.glob("D_*"))
    model = PairwiseModel.from_pretrained(model_dir)
    assert model.D is None
    x = torch.randint(0, 256, (3, 3, 16, 16), dtype=torch.uint8)
    y = model.translate(x, "sad", "happy")
    direct = model.G.nets["04_to_06"](x.float() / 127.5 - 1)
    assert y.dtype == torch.uint8 and torch.equal(y, ((direct + 1) * 127.5).round().to(torch.uint8))
    assert torch.equal(model.translate(x, "happy", "happy"), x)  # own domain: unchanged


# ---------------------------------------------------------------- resume
def _folders(root: Path) -> Path:
    gen = np.random.default_rng(0)
    for d, name in enumerate(("red", "green", "blue")):
        (root / name).mkdir(parents=True)
        for i in range(8):
            pixels = gen.integers(0, 80, (16, 16, 3)) + np.eye(3, dtype=int)[d] * 170
            Image.fromarray(pixels.astype(np.uint8)).save(root / name / f"{i}.png")
    return root


def test_resume_continues_exactly_as_if_never_stopped(tmp_path: Path) -> None:
    from stargan.train.cyclegan_run import train_pairs

    data = _folders(tmp_path / "data")
    cfg = get_cycle_preset("cyclegan-tiny")
    cfg = replace(cfg, data=DataConfig(dataset="folders", path=str(data), num_test=3))
    sets = ["train.pair_iters=3", "train.ckpt_every=2", "train.log_every=2"]
    whole = train_pairs(cfg, tmp_path / "a", overrides=sets, progress=False)
    assert json.loads((whole / "pairs.json").read_text())["generators"] == 6  # 3 domains
    # stop in the middle of the second pair (checkpointed there), then resume
    stopped = train_pairs(cfg, tmp_path / "b", overrides=sets, progress=False, stop_after=4)
    assert not (stopped / "pairs" / "01-02-green-red").exists()  # domains sorted by name
    resumed = train_pairs(None, tmp_path / "b", resume="latest", progress=False)
    assert resumed == stopped
    for pair in ("00-01-blue-green", "00-02-blue-red", "01-02-green-red"):
        last = Path("pairs", pair, "checkpoints", "step-0000003")
        for net in ("G", "F", "D_X", "D_Y", "pool_X", "pool_Y"):
            a = load_file(whole / last / f"{net}.safetensors")
            b = load_file(stopped / last / f"{net}.safetensors")
            assert all(torch.equal(a[k], b[k]) for k in a), (pair, net)
    rows = lambda run: [  # noqa: E731
        {k: v for k, v in json.loads(line).items() if k not in ("time_s", "sec_per_iter")}
        for line in (run / "stats.jsonl").read_text().splitlines()
    ]
    assert rows(whole) == rows(stopped)


# ---------------------------------------------------------------- errors
@pytest.mark.parametrize(
    ("args", "text"),
    [
        (("train", "--preset", "cyclegan-tiny", "--set", "data.dataset=faces-attr"), "categorical"),
        (("train", "--preset", "cyclegan-tiny", "--budget-iters", "5"), "less than one iteration"),
        (("train", "--budget-iters", "9", "--pair-iters", "9"), "not both"),
        (("train", "--preset", "cyclegan-ckplus"), "needs a path"),
        (("train", "--resume", "/no/run"), "not a pairwise CycleGAN run"),
        (("export", "/no/run", "-o", "x"), "not a pairwise CycleGAN run"),
        (
            ("translate", "/no/model", "a.png", "--from", "a", "--to", "b", "-o", "x"),
            "does not exist",
        ),
    ],
)
def test_bad_input_is_one_line(capsys, monkeypatch, tmp_path: Path, args, text) -> None:
    monkeypatch.chdir(tmp_path)
    code, _, err = _cli(capsys, monkeypatch, "cyclegan", *args)
    lines = [x for x in err.splitlines() if x.strip()]
    assert code == 2 and len(lines) == 1 and text in lines[0], err


def test_translate_names_unknown_domains_and_runs(capsys, monkeypatch, tiny_pairs, tmp_path):
    from stargan.cyclegan import export_pairs

    model, _ = export_pairs(tiny_pairs, tmp_path / "m", with_discriminators=False)
    face = tmp_path / "f.png"
    Image.new("RGB", (16, 16)).save(face)
    for source, target, text in (("angy", "sad", "did you mean angry"), ("angry", "x", "'x'")):
        args = ("cyclegan", "translate", model, face, "--from", source, "--to", target)
        code, _, err = _cli(capsys, monkeypatch, *args, "-o", tmp_path / "o")
        assert code == 2 and text in err, err
    args = ("cyclegan", "translate", tiny_pairs, face, "--from", "angry", "--to", "sad")
    code, _, err = _cli(capsys, monkeypatch, *args, "-o", tmp_path / "o")
    assert code == 2 and "stargan cyclegan export" in err
