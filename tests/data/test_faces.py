"""Tests for the procedural face renderer (stargan.data.faces).

Region checks use fractions of the image: the head sits near (0.5, 0.48) with pose jitter of a
few percent, so the nose/mouth and face-interior boxes below hold for every pose.
"""

from __future__ import annotations

import dataclasses
import itertools
import subprocess
import sys

import numpy as np
import pytest

import stargan.data.faces as faces_module
from stargan.data.faces import (
    ATTR_NAMES,
    EXPRESSIONS,
    HAIR_COLOURS,
    HAIR_GROUP,
    SPLITS,
    FaceParams,
    attr_vector,
    counterfactual,
    expression_index,
    params_for,
    render,
    render_batch,
    sample_params,
)

SIZE = 64


def _changed(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """[H, W] bool: pixels where any channel differs."""
    return np.any(a != b, axis=-1)


def _box(mask: np.ndarray, x0: float, x1: float, y0: float, y1: float) -> np.ndarray:
    h, w = mask.shape
    return mask[int(y0 * h) : int(y1 * h), int(x0 * w) : int(x1 * w)]


def _corners(mask: np.ndarray, k: int = 6) -> int:
    return int(
        mask[:k, :k].sum() + mask[:k, -k:].sum() + mask[-k:, :k].sum() + mask[-k:, -k:].sum()
    )


def _first(pred, split: str = "train", n: int = 400) -> list[FaceParams]:
    return [p for p in (params_for(0, split, i) for i in range(n)) if pred(p)]


# --- determinism -------------------------------------------------------------------------------


def test_same_index_gives_identical_params_and_bytes():
    assert params_for(7, "train", 11) == params_for(7, "train", 11)
    a = render(params_for(7, "train", 11), SIZE)
    b = render(params_for(7, "train", 11), SIZE)
    assert a.tobytes() == b.tobytes()


@pytest.mark.parametrize(
    "other", [(7, "train", 12), (7, "test", 11), (8, "train", 11)], ids=["index", "split", "seed"]
)
def test_different_index_split_or_seed_gives_different_faces(other):
    base = render(params_for(7, "train", 11), SIZE)
    changed = render(params_for(*other), SIZE)
    assert params_for(*other) != params_for(7, "train", 11)
    assert _changed(base, changed).mean() > 0.5  # a different face, not just different noise


def test_render_batch_matches_render():
    batch = render_batch(3, "test", [5, 0, 5], 32)
    assert batch.shape == (3, 32, 32, 3) and batch.dtype == np.uint8
    assert np.array_equal(batch[0], render(params_for(3, "test", 5), 32))
    assert np.array_equal(batch[1], render(params_for(3, "test", 0), 32))
    assert np.array_equal(batch[0], batch[2])
    assert render_batch(3, "test", [], 32).shape == (0, 32, 32, 3)


def test_noise_comes_from_noise_seed_and_is_small():
    p = params_for(0, "train", 4)
    q = dataclasses.replace(p, noise_seed=p.noise_seed + 1)
    a, b = render(p, SIZE).astype(int), render(q, SIZE).astype(int)
    diff = np.abs(a - b)
    assert diff.mean() > 0.5  # the noise is really there, and seeded by noise_seed
    assert diff.mean() < 10  # but small: the face is the same


# --- shapes and argument checks ------------------------------------------------------------------


@pytest.mark.parametrize("size", [16, 32, 64, 128])
def test_render_shape_and_dtype(size):
    img = render(params_for(0, "train", 0), size)
    assert img.shape == (size, size, 3) and img.dtype == np.uint8
    assert img.std() > 10  # not a blank image


@pytest.mark.parametrize("size", [15, 257, 0, -64, 64.0, True])
def test_bad_size_raises(size):
    with pytest.raises(ValueError, match="size"):
        render(params_for(0, "train", 0), size)
    with pytest.raises(ValueError, match="size"):
        render_batch(0, "train", [0], size)


def test_unknown_split_raises_listing_valid_ones():
    with pytest.raises(ValueError, match="train") as info:
        params_for(0, "val", 0)
    assert "test" in str(info.value)
    with pytest.raises(ValueError, match="val"):
        render_batch(0, "val", [0])


def test_negative_index_raises():
    with pytest.raises(ValueError):
        params_for(0, "train", -1)


def test_bad_labels_in_params_raise():
    p = params_for(0, "train", 0)
    with pytest.raises(ValueError, match="hair_colour"):
        dataclasses.replace(p, hair_colour="purple")
    with pytest.raises(ValueError, match="expression"):
        dataclasses.replace(p, expression="bored")


def test_splits_constant():
    assert SPLITS == {"train": 0, "test": 1}


# --- labels ------------------------------------------------------------------------------------


def test_attr_vector_follows_params():
    for i in range(200):
        p = params_for(0, "train", i)
        v = attr_vector(p)
        assert v.dtype == np.float32 and v.shape == (len(ATTR_NAMES),)
        assert set(np.unique(v)) <= {0.0, 1.0}
        hair = v[: len(HAIR_GROUP)]
        if p.hair_colour in ("red", "grey"):
            assert hair.sum() == 0
        else:
            assert hair.sum() == 1
            assert HAIR_GROUP[int(hair.argmax())].split("_")[0].lower() == p.hair_colour
        assert v[ATTR_NAMES.index("Male")] == p.male
        assert v[ATTR_NAMES.index("Young")] == p.young
        assert EXPRESSIONS[expression_index(p)] == p.expression


def test_label_frequencies():
    ps = [params_for(0, "train", i) for i in range(2000)]
    male = np.mean([p.male for p in ps])
    young = np.mean([p.young for p in ps])
    hair = {c: np.mean([p.hair_colour == c for p in ps]) for c in HAIR_COLOURS}
    expr = np.bincount([expression_index(p) for p in ps], minlength=len(EXPRESSIONS)) / len(ps)
    assert 0.45 < male < 0.55
    assert 0.60 < young < 0.70
    assert 0.25 < hair["black"] < 0.35 and 0.25 < hair["brown"] < 0.35
    assert 0.15 < hair["blond"] < 0.25
    assert 0.07 < hair["red"] < 0.13 and 0.06 < hair["grey"] < 0.14
    assert expr.min() > 0.09 and expr.max() < 0.16
    grey_old = np.mean([p.hair_colour == "grey" for p in ps if not p.young])
    grey_young = np.mean([p.hair_colour == "grey" for p in ps if p.young])
    assert grey_old > 2 * grey_young
    # sex is independent of age and hair colour (no accidental correlation)
    assert abs(np.mean([p.male for p in ps if p.young]) - male) < 0.05
    assert abs(np.mean([p.male for p in ps if p.hair_colour == "blond"]) - male) < 0.08


def test_sample_params_uses_only_the_rng():
    a = sample_params(np.random.default_rng(5))
    b = sample_params(np.random.default_rng(5))
    assert a == b
    latents = [f.name for f in dataclasses.fields(FaceParams) if f.type in ("float", float)]
    assert len(latents) >= 10
    assert all(0.0 <= getattr(a, name) < 1.0 for name in latents)


# --- counterfactuals -----------------------------------------------------------------------------


def test_counterfactual_without_change_is_identity():
    for i in range(40):
        p = params_for(1, "test", i)
        q = counterfactual(p, attr_vector(p), expression_index(p))
        assert q == p
        assert counterfactual(p) == p
        assert render(q, 32).tobytes() == render(p, 32).tobytes()


def test_counterfactual_sets_labels_and_keeps_latents():
    p = _first(lambda p: p.hair_colour == "black" and p.male and p.young)[0]
    target = np.array([0, 1, 0, 0, 0], dtype=np.float32)  # blond, female, old
    q = counterfactual(p, target, "surprised")
    assert (q.hair_colour, q.male, q.young, q.expression) == ("blond", False, False, "surprised")
    assert np.array_equal(attr_vector(q), target)
    labelled = {"hair_colour", "male", "young", "expression"}
    for field in dataclasses.fields(FaceParams):
        if field.name not in labelled:
            assert getattr(q, field.name) == getattr(p, field.name), field.name
    assert counterfactual(p, expression=EXPRESSIONS.index("sad")).expression == "sad"
    assert counterfactual(p, [1, 0, 0, 1, 1]) == p  # plain lists work too


def test_counterfactual_all_zero_hair_group():
    red = _first(lambda p: p.hair_colour == "red")[0]
    q = counterfactual(red, [0, 0, 0, float(not red.male), 1])
    assert q.hair_colour == "red" and q.male != red.male
    brown = _first(lambda p: p.hair_colour == "brown")[0]
    with pytest.raises(ValueError, match="no labelled colour"):
        counterfactual(brown, [0, 0, 0, 1, 1])


@pytest.mark.parametrize(
    "attrs",
    [[1, 1, 0, 0, 1], [1, 0, 0, 1], [1, 0, 0, 1, 1, 0], [1, 0, 0, 0.5, 1], [2, 0, 0, 0, 1]],
    ids=["two-hair", "short", "long", "half", "two"],
)
def test_counterfactual_rejects_bad_attrs(attrs):
    with pytest.raises(ValueError):
        counterfactual(params_for(0, "train", 0), attrs)


@pytest.mark.parametrize("expression", ["bored", 8, -1, 2.5])
def test_counterfactual_rejects_bad_expression(expression):
    with pytest.raises(ValueError, match="expression"):
        counterfactual(params_for(0, "train", 0), expression=expression)


def test_hair_colour_change_stays_in_the_hair():
    # Women only: a man's beard rightly follows his hair colour and sits around the mouth.
    faces = _first(lambda p: not p.male and p.hair_colour in ("black", "blond"), n=120)
    assert len(faces) >= 15
    for p in faces:
        other = "blond" if p.hair_colour == "black" else "black"
        a = render(p, SIZE)
        b = render(dataclasses.replace(p, hair_colour=other), SIZE)
        changed = _changed(a, b)
        assert changed.mean() > 0.08  # the hair visibly changed
        assert _corners(changed) == 0  # background untouched (same noise too)
        nose_mouth = _box(changed, 0.38, 0.62, 0.55, 0.78).sum() / changed.sum()
        assert nose_mouth < 0.06
        assert _box(changed, 0, 1, 0, 0.45).sum() / changed.sum() > 0.25  # the crown is hair


def test_expression_change_stays_in_the_face():
    for i in range(30):
        p = params_for(2, "train", i)
        a = render(p, SIZE)
        for k in (1, 4):
            b = render(counterfactual(p, expression=(expression_index(p) + k) % 8), SIZE)
            changed = _changed(a, b)
            assert changed.sum() > 15
            interior = _box(changed, 0.2, 0.8, 0.25, 0.85).sum() / changed.sum()
            assert interior > 0.99
            assert _corners(changed) == 0
            assert not changed[: int(0.2 * SIZE)].any()  # the top of the hair never moves


def test_every_pair_of_expressions_differs_at_32px():
    # Weakest measured pair (dark skin, closed mouths): 7 pixels moved by > 30 levels (sum RGB).
    for i in range(20):
        p = params_for(5, "train", i)
        faces = [render(counterfactual(p, expression=e), 32).astype(int) for e in EXPRESSIONS]
        for a, b in itertools.combinations(range(len(EXPRESSIONS)), 2):
            moved = (np.abs(faces[a] - faces[b]).sum(-1) > 30).sum()
            assert moved >= 4, (i, EXPRESSIONS[a], EXPRESSIONS[b], moved)


def test_male_and_young_flips_change_the_face():
    faces = _first(lambda p: not p.male and p.young, n=80)
    assert len(faces) >= 8
    for p in faces:
        a = render(p, SIZE)
        hair = attr_vector(p)[: len(HAIR_GROUP)]
        to_male = _changed(a, render(counterfactual(p, [*hair, 1, 1]), SIZE))
        to_old = _changed(a, render(counterfactual(p, [*hair, 0, 0]), SIZE))
        assert to_male.mean() > 0.1  # hair style changes with sex
        assert to_old.mean() > 0.02  # wrinkles, greyer hair and skin
        assert not to_male[:6, :6].any() and not to_male[:6, -6:].any()  # (shoulders may widen)
        assert _corners(to_old) == 0


# --- legibility: a linear probe on raw 32 px pixels reads the labels ---------------------------


@pytest.fixture(scope="module")
def probe_data():
    n_train, n_test = 600, 300
    x_train = render_batch(0, "train", range(n_train), 32).reshape(n_train, -1) / 255.0
    x_test = render_batch(0, "test", range(n_test), 32).reshape(n_test, -1) / 255.0
    p_train = [params_for(0, "train", i) for i in range(n_train)]
    p_test = [params_for(0, "test", i) for i in range(n_test)]
    return x_train, x_test, p_train, p_test


def _ridge_accuracy(x_train, y_train, x_test, y_test, n_classes, lam=10.0) -> float:
    """One-vs-rest ridge regression in its dual form (n << pixels): a plain linear probe."""
    mean = x_train.mean(0)
    a = np.c_[x_train - mean, np.ones(len(x_train))]
    b = np.c_[x_test - mean, np.ones(len(x_test))]
    targets = np.eye(n_classes)[y_train]
    w = a.T @ np.linalg.solve(a @ a.T + lam * np.eye(len(a)), targets)
    return float(((b @ w).argmax(1) == y_test).mean())


# Measured accuracies (600 train / 300 test): hair 0.81, male 0.97, young 0.90, expression
# 0.69 (chance 0.32, 0.53, 0.61, 0.16). Thresholds leave a wide margin but are far above chance.
@pytest.mark.parametrize(
    ("label", "n_classes", "threshold"),
    [
        ("hair", len(HAIR_COLOURS), 0.7),
        ("male", 2, 0.85),
        ("young", 2, 0.78),
        ("expression", len(EXPRESSIONS), 0.5),
    ],
)
def test_linear_probe_reads_labels(probe_data, label, n_classes, threshold):
    x_train, x_test, p_train, p_test = probe_data
    get = {
        "hair": lambda p: HAIR_COLOURS.index(p.hair_colour),
        "male": lambda p: int(p.male),
        "young": lambda p: int(p.young),
        "expression": expression_index,
    }[label]
    y_train = np.array([get(p) for p in p_train])
    y_test = np.array([get(p) for p in p_test])
    acc = _ridge_accuracy(x_train, y_train, x_test, y_test, n_classes)
    assert acc > threshold, f"{label}: {acc:.2f}"


# --- module hygiene ----------------------------------------------------------------------------


def test_module_needs_only_numpy_and_pillow():
    # Load the file on its own (the stargan.data package itself may import torch).
    code = (
        "import importlib.util, sys\n"
        f"spec = importlib.util.spec_from_file_location('faces_alone', {faces_module.__file__!r})\n"
        "mod = importlib.util.module_from_spec(spec)\n"
        "sys.modules['faces_alone'] = mod\n"
        "spec.loader.exec_module(mod)\n"
        "assert mod.render(mod.params_for(0, 'train', 0), 16).shape == (16, 16, 3)\n"
        "print(sorted(m for m in ('torch', 'stargan') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
