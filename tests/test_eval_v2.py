"""``stargan eval`` of StarGAN v2 models: the v2 protocol on known answers."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from stargan.config import DataConfig, ModelConfig
from stargan.data.dataset import ImageLabelDataset
from stargan.data.labels import LabelSpec
from stargan.evaluate.domain_classifier import ClassifierTrainConfig, train_domain_classifier
from stargan.evaluate.metrics import EvalContext, EvalSettings
from stargan.evaluate.registry import evaluate_model
from stargan.evaluate.style_protocol import K, pairs
from stargan.stylemodel import StyleModel

SIZE, LATENT = 32, 4
COLOURS = torch.tensor([[1.0, -1, -1], [-1, 1, -1], [-1, -1, 1]])  # red, green, blue
SPEC = LabelSpec(("red", "green", "blue"), "categorical")


def _colour(classes: torch.Tensor, shade: torch.Tensor | None = None) -> torch.Tensor:
    """Solid colour per class in [-1, 1]; ``shade`` [N, 3] varies it (the "style")."""
    x = 0.7 * COLOURS[classes]
    if shade is not None:
        x = x + 0.25 * shade.tanh()
    return x[:, :, None, None].expand(-1, -1, SIZE, SIZE).clamp(-1, 1)


class Mapping(nn.Module):
    """F(z, y) = [one-hot y, z]: the style carries the domain and a random shade."""

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return torch.cat([nn.functional.one_hot(y, 3).float(), z], 1)


class Encoder(nn.Module):
    """E(x, y) = [one-hot y, shade, 0]: a reference's shade is how its colour departs
    from its domain's (x's mean colour minus the domain colour, rescaled)."""

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        shade = 4 * (x.mean((2, 3)) - 0.7 * COLOURS[y])
        pad = torch.zeros(len(x), LATENT - 3)
        return torch.cat([nn.functional.one_hot(y, 3).float(), shade, pad], 1)


class Painter(nn.Module):
    """G(x, s): ``oracle`` paints the style's domain with its shade; else the identity."""

    def __init__(self, oracle: bool) -> None:
        super().__init__()
        self.oracle = oracle
        self.anchor = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor, s: torch.Tensor, masks=None) -> torch.Tensor:
        return _colour(s[:, :3].argmax(1), s[:, 3:6]) if self.oracle else x


def _dataset(n: int, gen: torch.Generator) -> ImageLabelDataset:
    classes = torch.arange(n) % 3
    x = _colour(classes, torch.randn(n, 3, generator=gen))
    u8 = ((x + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    labels = nn.functional.one_hot(classes, 3).float().numpy()
    return ImageLabelDataset(np.ascontiguousarray(u8), labels, SPEC)


@functools.cache
def _toy():
    gen = torch.Generator().manual_seed(0)
    train, test = _dataset(96, gen), _dataset(12, gen)
    clf = train_domain_classifier(train, ClassifierTrainConfig(epochs=3, batch_size=32), False)
    return train, test, clf


def _context(oracle: bool, tmp_path: Path) -> EvalContext:
    train, test, clf = _toy()
    cfg = ModelConfig(arch="v2", image_size=SIZE, c_dim=3, latent_dim=LATENT, style_dim=3 + LATENT)
    model = StyleModel(Painter(oracle), Mapping(), Encoder(), cfg, SPEC)
    data = [DataConfig(dataset="folders", name="toy", path="/nowhere")]
    ctx = EvalContext(Path("toy-v2"), model, data, EvalSettings(progress=False), tmp_path)
    ctx._cache |= {("dataset", 0, "train"): train, ("dataset", 0, "test"): test}
    ctx._cache[("classifier", 0)] = clf
    return ctx


@pytest.mark.parametrize("oracle", [True, False])
def test_target_accuracy_is_total_for_an_oracle_and_zero_for_identity(
    oracle: bool, tmp_path: Path
) -> None:
    (record,) = evaluate_model(_context(oracle, tmp_path), ["classification"], log=lambda _: None)
    summary = record["summary"]
    expected = 1.0 if oracle else 0.0
    assert summary["accuracy_latent"] == expected and summary["accuracy_reference"] == expected
    assert summary["real_accuracy"] == 1.0
    latent, reference = record["tables"]
    assert latent["kind"] == "matrix" and latent["columns"] == list(SPEC.names)
    assert latent["rows"][0][1] is None  # red > red is not a task
    assert latent["rows"][0][2] == expected


def test_outputs_are_k_per_source_for_every_pair_and_seeded(tmp_path: Path) -> None:
    from stargan.evaluate.style_protocol import outputs

    ctx = _context(True, tmp_path)
    assert pairs(ctx) == [(1, 0), (2, 0), (0, 1), (2, 1), (0, 2), (1, 2)]
    out = outputs(ctx, "latent", 0, 1)
    assert out.shape == (4, K, 3, SIZE, SIZE) and out.dtype == torch.uint8
    again = outputs(_context(True, tmp_path), "latent", 0, 1)
    assert torch.equal(out, again)
    assert len({tuple(out[0, k, :, 0, 0].tolist()) for k in range(K)}) == K  # K styles


def test_diversity_is_zero_without_style_and_positive_with_it(tmp_path: Path) -> None:
    from conftest import require_weights

    require_weights("lpips_alex.safetensors")
    scores = {}
    for oracle in (True, False):
        ctx = _context(oracle, tmp_path / str(oracle))
        (record,) = evaluate_model(ctx, ["diversity"], log=lambda _: None)
        scores[oracle] = record["summary"]
        assert len(record["images"]) == 2
    assert scores[False]["lpips_latent"] == 0.0 and scores[False]["lpips_reference"] == 0.0
    assert scores[True]["lpips_latent"] > 0.005 and scores[True]["lpips_reference"] > 0.005


def test_metrics_without_a_v2_version_are_skipped_with_the_reason(tmp_path: Path) -> None:
    said = []
    records = evaluate_model(_context(True, tmp_path), ["counterfactual", "params"], said.append)
    assert [r["metric"] for r in records] == ["params"]
    assert records[0]["summary"]["total_params"] == 1  # the painter's anchor
    assert any("counterfactual: skipped (not defined for StarGAN v2" in s for s in said)


def test_v2_metrics_describe_the_v2_protocol(tmp_path: Path) -> None:
    from stargan.evaluate.registry import METRICS

    classification = METRICS["classification"]
    about = classification.behaviour(_context(True, tmp_path))[2]
    assert "reads as the target domain" in about
    assert "Table 3" in classification.about  # what v1 models are told


def test_eval_of_a_trained_and_exported_v2_model(
    capsys, monkeypatch, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """train --preset tiny-v2, export, eval: records for the v2 metrics, the rest skipped."""
    import json

    from stargan.presets import get_preset
    from stargan.train import run_training
    from test_eval import _cli

    run = run_training(get_preset("tiny-v2"), tmp_path / "runs", progress=False)
    code, _, err = _cli(capsys, monkeypatch, "export", run, "-o", tmp_path / "model")
    assert code == 0, err
    args = ("translate", tmp_path / "model", run / "samples", "--all-domains", "-o", tmp_path)
    code, _, err = _cli(capsys, monkeypatch, *args)
    assert code == 2 and "stargan sample" in err  # v1's command points to v2's
    metrics = "counterfactual,diversity,params,speed"  # classification: the toy tests above
    args = ("eval", tmp_path / "model", "--metrics", metrics, "--n", 8, "-o", tmp_path / "ev")
    code, out, err = _cli(capsys, monkeypatch, *args, "--quiet")
    assert code == 0, err
    assert "counterfactual: skipped" in out and "diversity: skipped" in out  # 16 px < LPIPS's 32
    lines = (tmp_path / "ev" / "metrics.jsonl").read_text().splitlines()
    records = {r["metric"]: r for r in map(json.loads, lines)}
    assert set(records) == {"params", "speed"}
    assert set(records["params"]["summary"]) == {
        "G_params",
        "F_params",
        "E_params",
        "D_params",
        "total_params",
    }
    assert records["speed"]["summary"]["images_per_s"] > 0


def test_official_v2_fid_takes_every_target_training_image_and_every_test_source(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The official protocol's sets (clovaai/stargan-v2 metrics/eval.py), whatever --n:
    real = all training images of the target, fakes = K outputs of every test image of
    the source; its own metric and summary keys, labelled with its protocol."""
    from dataclasses import replace

    import stargan.evaluate.fid as fid

    sizes, variants = [], []

    def features(images, model, batch_size=50, progress=True):
        sizes.append(len(images))
        return np.random.default_rng(len(sizes)).normal(size=(len(images), 8))

    def load(path=None, device="cpu", variant="tf"):
        variants.append(variant)
        return None

    monkeypatch.setattr(fid, "inception_features", features)
    monkeypatch.setattr(fid, "load_inception", load)
    ctx = _context(True, tmp_path)
    ctx.settings = replace(ctx.settings, n=2)
    (record,) = evaluate_model(ctx, ["fid-v2-official"], log=lambda _: None)
    assert variants == ["torchvision"] and record["protocol"] == "stargan-v2-official"
    assert sizes[:3] == [32, 32, 32]  # each domain's 96 / 3 training images
    assert sizes[3:] == [4 * K] * (2 * len(pairs(ctx)))  # all 12 test images, 4 per domain
    assert record["n"] == 12
    assert record["summary"]["fid_official_latent"] > 0
    assert "fid_latent" not in record["summary"]
