"""The Table 3 evaluation classifier: ResNet-18, its training, real-image error, its folder.

Tiny on purpose (16 px, a few dozen images, 1 thread): the whole file runs in seconds.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from stargan.data.dataset import ImageLabelDataset, to_model_range
from stargan.data.labels import LabelSpec
from stargan.errors import StarGANError
from stargan.evaluate.domain_classifier import (
    ClassifierTrainConfig,
    DomainClassifier,
    class_weights,
    random_translate,
    real_test_error,
    train_domain_classifier,
)
from stargan.losses import classification_loss
from stargan.models import count_parameters
from stargan.models.resnet import ResNet18, resnet18_for

RGB = LabelSpec(("red", "green", "blue"), "categorical")
# Top/bottom, not left/right: the horizontal flip of training must not change the labels.
HALVES = LabelSpec(("top_bright", "bottom_bright"))
TINY = ClassifierTrainConfig(epochs=2, batch_size=16)


def tinted(n: int, seed: int, size: int = 16) -> ImageLabelDataset:
    """Noise images with one colour channel raised by 120: red, green, blue in turn."""
    rng = np.random.default_rng(seed)
    cls = np.arange(n) % 3
    img = rng.integers(0, 110, (n, size, size, 3))
    img[np.arange(n), :, :, cls] += 120
    return ImageLabelDataset(img.astype(np.uint8), np.eye(3, dtype=np.float32)[cls], RGB, "tint")


def halves(n: int, seed: int, size: int = 16) -> ImageLabelDataset:
    """Noise images whose top and/or bottom half is brighter by 130, per random labels."""
    rng = np.random.default_rng(seed)
    lab = rng.integers(0, 2, (n, 2))
    img = rng.integers(0, 100, (n, size, size, 3))
    img[:, : size // 2] += 130 * lab[:, 0, None, None, None]
    img[:, size // 2 :] += 130 * lab[:, 1, None, None, None]
    return ImageLabelDataset(img.astype(np.uint8), lab.astype(np.float32), HALVES, "halves")


@pytest.fixture(scope="module")
def rgb_classifier() -> DomainClassifier:
    return train_domain_classifier(tinted(64, seed=0), TINY, progress=False, test=tinted(48, 1))


# ---------------------------------------------------------------- the network
def test_resnet18_parameter_counts_on_meta_device() -> None:
    with torch.device("meta"):
        standard, small = ResNet18(1000), ResNet18(1000, small_input=True)
    assert next(standard.parameters()).is_meta  # nothing was allocated
    assert count_parameters(standard) == 11_689_512  # torchvision's resnet18, to the unit
    stem_difference = (7 * 7 - 3 * 3) * 3 * 64  # the 7x7 stem conv becomes 3x3
    assert count_parameters(small) == 11_689_512 - stem_difference == 11_681_832
    with torch.device("meta"):
        assert resnet18_for(16, 2).small_input and not resnet18_for(17, 2).small_input


@pytest.mark.parametrize("small_input", [False, True])
@pytest.mark.parametrize("size", [16, 32])
def test_output_shapes(size: int, small_input: bool) -> None:
    torch.manual_seed(0)
    model = ResNet18(5, small_input=small_input)
    x = torch.rand(2, 3, size, size) * 2 - 1
    s = size if small_input else size // 4  # the ImageNet stem quarters the resolution
    assert model.stem(x).shape == (2, 64, s, s)
    out = model(x)
    assert out.shape == (2, 5) and torch.isfinite(out).all()
    out.square().sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())


def test_random_translate_shifts_whole_windows() -> None:
    x = torch.arange(16.0).view(1, 1, 4, 4).expand(60, 3, 4, 4)
    y = random_translate(x, torch.Generator().manual_seed(0), pad=1)
    padded = torch.nn.functional.pad(x[:1], (1, 1, 1, 1), mode="reflect")[0]
    windows = [padded[:, dy : dy + 4, dx : dx + 4] for dy in range(3) for dx in range(3)]
    seen = {next(k for k, w in enumerate(windows) if torch.equal(w, img)) for img in y}
    assert seen == set(range(9))  # every image is a window, and all 9 shifts occur
    again = random_translate(x, torch.Generator().manual_seed(0), pad=1)
    assert torch.equal(y, again)


# ---------------------------------------------------------------- training
def test_learns_an_easy_categorical_problem(rgb_classifier: DomainClassifier) -> None:
    real = rgb_classifier.meta["real_test"]
    assert real["n"] == 48 and real["error"] < 0.1
    assert set(real["per_domain"]) == set(RGB.names)
    assert max(real["per_domain"].values()) < 0.2
    x, c = tinted(9, seed=2).batch(torch.arange(9))
    pred = rgb_classifier.predict(x)
    assert pred.shape == (9, 3) and pred.sum(1).tolist() == [1.0] * 9  # one-hot
    assert rgb_classifier.meta["train"]["epochs"] == 2
    assert rgb_classifier.meta["data"]["images"] == 64


def test_learns_an_easy_multi_label_problem() -> None:
    clf = train_domain_classifier(halves(64, seed=0), TINY, progress=False, test=halves(48, 1))
    real = clf.meta["real_test"]
    assert set(real["per_attribute"]) == set(HALVES.names)
    assert max(real["per_attribute"].values()) < 0.1
    assert real["error"] == pytest.approx(sum(real["per_attribute"].values()) / 2)


def test_class_weights_give_each_value_an_even_share() -> None:
    labels = np.array([[1, 0, 1], [0, 0, 1], [0, 0, 1], [0, 0, 1], [0, 0, 1]], np.float32)
    # 1 of 5 present: pos_weight 4; none or all present: 1 (nothing to balance)
    assert class_weights(labels, "multi").tolist() == [4.0, 1.0, 1.0]
    one_hot = np.eye(3, dtype=np.float32)[[0, 0, 0, 1]]  # 3 red, 1 green, no blue
    assert class_weights(one_hot, "categorical").tolist() == pytest.approx([4 / 9, 4 / 3, 1.0])


def _best_constant_logits(c: torch.Tensor, kind: str, weights: torch.Tensor | None):
    """The logits a judge that sees nothing (one vector for every image) is best off with."""
    bias = torch.zeros(c.size(1), requires_grad=True)
    opt = torch.optim.LBFGS([bias], max_iter=100)

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = classification_loss(bias.expand(len(c), -1), c, kind, weights)
        loss.backward()
        return loss

    opt.step(closure)
    return bias.detach()


@pytest.mark.parametrize("kind", ["multi", "categorical"])
def test_balanced_loss_puts_a_blind_judge_at_an_even_prior(kind: str) -> None:
    """A judge that sees nothing is best off at the data's prior with the paper's loss and
    at an even one with the balanced loss."""
    if kind == "multi":
        c = torch.tensor([[1.0]] * 2 + [[0.0]] * 8)  # 20% present
    else:
        c = torch.eye(2)[[0, 0, 1, 1, 1, 1, 1, 1, 1, 1]]  # 20% class 0
    plain = _best_constant_logits(c, kind, None)
    balanced = _best_constant_logits(c, kind, class_weights(c.numpy(), kind))
    prior = math.log(0.2 / 0.8)
    if kind == "categorical":  # the logit gap between the two classes
        plain, balanced = plain[:1] - plain[1:], balanced[:1] - balanced[1:]
    assert plain.item() == pytest.approx(prior, abs=1e-3)
    assert balanced.item() == pytest.approx(0.0, abs=1e-3)


def test_balance_reaches_the_training_loss(monkeypatch: pytest.MonkeyPatch) -> None:
    import stargan.evaluate.domain_classifier as module

    seen = []

    def spy(logits, c, kind, weights=None):
        seen.append(weights)
        return classification_loss(logits, c, kind)

    monkeypatch.setattr(module, "classification_loss", spy)
    data = halves(32, seed=0)
    train_domain_classifier(data, ClassifierTrainConfig(epochs=1, batch_size=16), False)
    assert seen and all(w is None for w in seen)
    seen.clear()
    balanced = ClassifierTrainConfig(epochs=1, batch_size=16, balance=True)
    train_domain_classifier(data, balanced, False)
    expected = class_weights(data.labels, "multi")
    assert seen and all(torch.equal(w, expected) for w in seen)


def test_same_seed_same_weights() -> None:
    data = tinted(32, seed=3)
    cfg = ClassifierTrainConfig(epochs=1, batch_size=16, seed=5)
    a = train_domain_classifier(data, cfg, progress=False).model.state_dict()
    torch.manual_seed(123)  # the global RNG must not matter
    b = train_domain_classifier(data, cfg, progress=False).model.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    other = ClassifierTrainConfig(epochs=1, batch_size=16, seed=6)
    c = train_domain_classifier(data, other, progress=False).model.state_dict()
    assert not torch.equal(a["layer1.0.conv1.weight"], c["layer1.0.conv1.weight"])


def test_train_config_is_validated() -> None:
    with pytest.raises(StarGANError, match="batch_size"):
        ClassifierTrainConfig(batch_size=1)
    with pytest.raises(StarGANError, match="epochs"):
        ClassifierTrainConfig(epochs=0)


# ---------------------------------------------------------------- real-image error
def _tint_logits(x: torch.Tensor) -> torch.Tensor:
    """Stand-in for a trained net on ``tinted``: each channel's mean (the tint wins)."""
    return x.float().mean((2, 3))


def _halves_logits(x: torch.Tensor) -> torch.Tensor:
    """Stand-in for a trained net on ``halves``: each half's brightness above ~115."""
    h = x.size(2) // 2
    top, bottom = x[:, :, :h].float().mean((1, 2, 3)), x[:, :, h:].float().mean((1, 2, 3))
    return torch.stack([top, bottom], 1) - 115


def test_real_test_error_by_hand(monkeypatch: pytest.MonkeyPatch) -> None:
    clf = DomainClassifier(ResNet18(3, small_input=True), RGB, 16)
    monkeypatch.setattr(clf, "logits", _tint_logits)
    data = tinted(12, seed=4)  # classes 0, 1, 2, 0, 1, 2, ...
    labels = data.labels.copy()
    labels[[0, 3, 6]] = [0, 1, 0]  # three red images labelled green
    wrong = ImageLabelDataset(data.images, labels, RGB)
    assert real_test_error(clf, data, batch_size=5)["error"] == 0.0
    r = real_test_error(clf, wrong, batch_size=5)  # 3 batches, the last of 2
    assert r == {"error": 3 / 12, "per_domain": {"red": 0.0, "green": 3 / 7, "blue": 0.0}, "n": 12}

    clf = DomainClassifier(ResNet18(2, small_input=True), HALVES, 16)
    monkeypatch.setattr(clf, "logits", _halves_logits)
    data = halves(10, seed=5)
    labels = data.labels.copy()
    labels[:4, 1] = 1 - labels[:4, 1]  # four bottom labels flipped
    r = real_test_error(clf, ImageLabelDataset(data.images, labels, HALVES), batch_size=3)
    assert r == {
        "error": (0 + 4 / 10) / 2,
        "per_attribute": {"top_bright": 0.0, "bottom_bright": 0.4},
        "n": 10,
    }


def test_image_size_and_domain_mismatch(rgb_classifier: DomainClassifier) -> None:
    with pytest.raises(StarGANError, match="16x16"):
        real_test_error(rgb_classifier, tinted(3, seed=0, size=32))
    with pytest.raises(StarGANError, match="16x16"):
        rgb_classifier.predict(torch.zeros(1, 3, 32, 32))
    with pytest.raises(StarGANError, match="domains"):
        real_test_error(rgb_classifier, halves(3, seed=0))
    with pytest.raises(StarGANError, match="16x16"):  # refused before any training
        train_domain_classifier(tinted(32, 0), TINY, progress=False, test=tinted(3, 0, size=32))


# ---------------------------------------------------------------- the folder
def test_save_load_round_trip(
    rgb_classifier: DomainClassifier, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = rgb_classifier.save(tmp_path / "clf")
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "model.safetensors"]
    config = json.loads((folder / "config.json").read_text())
    assert config["kind"] == "stargan-classifier" and config["format_version"] == 1
    assert (config["arch"], config["small_input"], config["image_size"]) == ("resnet18", True, 16)

    def no_pickle(*args, **kwargs):
        raise AssertionError("torch.load must not be used")

    monkeypatch.setattr(torch, "load", no_pickle)
    loaded = DomainClassifier.load(folder)
    x_uint8, _ = tinted(5, seed=6).batch(torch.arange(5))
    x = to_model_range(x_uint8)
    assert torch.equal(loaded.logits(x), rgb_classifier.logits(x))
    assert torch.equal(loaded.logits(x_uint8), loaded.logits(x))  # real images as they are
    assert loaded.logits(x[:0]).shape == (0, 3)
    assert (loaded.spec, loaded.image_size) == (RGB, 16)
    assert loaded.meta == rgb_classifier.meta and not loaded.model.training


@pytest.fixture
def saved(tmp_path: Path) -> Path:
    torch.manual_seed(0)
    return DomainClassifier(ResNet18(3, small_input=True), RGB, 16, {"note": "x"}).save(
        tmp_path / "clf"
    )


def _edit(folder: Path, **changes: object) -> None:
    config = json.loads((folder / "config.json").read_text())
    config.update(changes)
    (folder / "config.json").write_text(json.dumps(config))


def test_load_refuses_a_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(StarGANError, match="stargan classifier train") as err:
        DomainClassifier.load(tmp_path / "nowhere")
    assert "nowhere" in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"format_version": 2}, "made by a newer stargan"),
        ({"kind": "stargan-v1"}, "not a 'stargan-classifier'"),
        ({"arch": "resnet50"}, "unknown arch"),
        ({"image_size": 4}, "image_size"),
        ({"labels": {"names": "red"}}, "labels"),
    ],
)
def test_load_refuses_bad_configs(saved: Path, changes: dict, message: str) -> None:
    _edit(saved, **changes)
    with pytest.raises(StarGANError, match=message):
        DomainClassifier.load(saved)


def test_load_refuses_wrong_or_missing_weights(saved: Path) -> None:
    _edit(saved, labels=LabelSpec(("a", "b"), "categorical").to_dict())  # a 2-output head
    with pytest.raises(StarGANError, match="does not hold") as err:
        DomainClassifier.load(saved)
    assert "model.safetensors" in str(err.value) and "\n" not in str(err.value)
    (saved / "model.safetensors").unlink()
    with pytest.raises(StarGANError, match="missing"):
        DomainClassifier.load(saved)
