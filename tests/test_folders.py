"""Folder-per-domain datasets: both layouts, the stratified hold-out, modes, errors."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from stargan.config import DataConfig
from stargan.data import check_data_config, dataset_spec, load_dataset, summarize
from stargan.data import decode as decode_module
from stargan.data.folders import holdout_counts, load_folders, scan_layout, split_files
from stargan.errors import StarGANError

SHARED_CK = Path(__file__).resolve().parents[2] / "shared" / "data" / "ck_plus_48"
DOMAIN_COLOURS = {"angry": (200, 30, 30), "happy": (30, 200, 30), "sad": (30, 30, 200)}


def _make(folder: Path, counts: dict[str, int], suffix: str = ".png") -> None:
    """``counts[d]`` images per domain folder, each filled with the domain's colour."""
    for name, n in counts.items():
        (folder / name).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            Image.new("RGB", (20, 24), DOMAIN_COLOURS[name]).save(folder / name / f"{i}{suffix}")


def _cfg(root: Path, **kw: object) -> DataConfig:
    return DataConfig(dataset="folders", path=str(root), **{"num_test": 3, **kw})


def _assert_labels_match_pixels(ds) -> None:
    """Each image's colour is its one-hot label's domain colour."""
    assert ds.labels.sum(1).tolist() == [1.0] * len(ds)
    for img, label in zip(ds.images, ds.labels, strict=True):
        colour = DOMAIN_COLOURS[ds.spec.names[int(label.argmax())]]
        assert np.abs(img.astype(int) - colour).max() <= 2


@pytest.fixture(autouse=True)
def _own_cache(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("STARGAN_CACHE", str(tmp_path / "cache"))


@pytest.fixture
def flat(tmp_path) -> Path:
    root = tmp_path / "flat"
    _make(root, {"angry": 6, "happy": 3, "sad": 2})
    return root


# ---------------------------------------------------------------- the hold-out
def test_holdout_counts_by_hand() -> None:
    assert holdout_counts([100, 50, 10], 16) == [10, 5, 1]  # exact shares
    assert holdout_counts([6, 3, 1], 4) == [3, 1, 0]  # 2.4, 1.2, 0.4; a lone image stays
    assert holdout_counts([100, 2, 2], 3) == [1, 1, 1]  # at least one per domain
    assert holdout_counts([100, 2, 2], 2) == [2, 0, 0]  # too few for one each: by share
    assert holdout_counts([5, 5], 0) == [0, 0]
    assert sum(holdout_counts([7, 13, 29, 31], 17)) == 17
    with pytest.raises(StarGANError, match=r"num_test=9 .* 11 images in 3 domains: at most 8"):
        holdout_counts([6, 3, 2], 9)


def test_flat_layout_stratified_seeded_holdout(flat) -> None:
    train = load_dataset(_cfg(flat), 16, "train")
    test = load_dataset(_cfg(flat), 16, "test")
    assert (len(train), len(test)) == (8, 3)
    assert test.summary() == {"images": 3, "angry": 1, "happy": 1, "sad": 1}
    assert train.spec.names == ("angry", "happy", "sad") and train.spec.kind == "categorical"
    _assert_labels_match_pixels(train)
    _assert_labels_match_pixels(test)
    layout = scan_layout(flat)
    picks = {
        seed: [f for f, _ in split_files(layout, train.spec, "test", 5, seed)] for seed in range(4)
    }
    assert picks[0] == [f for f, _ in split_files(layout, train.spec, "test", 5, 0)]
    assert len({tuple(p) for p in picks.values()}) > 1  # the seed matters
    train_files = {f for f, _ in split_files(layout, train.spec, "train", 5, 0)}
    assert not train_files & set(picks[0]) and len(train_files) + 5 == 11


def test_train_test_layout_and_val_synonym(tmp_path) -> None:
    for test_dir in ("test", "val"):
        root = tmp_path / test_dir
        _make(root / "train", {"angry": 3, "happy": 2})
        _make(root / test_dir, {"angry": 1, "happy": 2}, suffix=".jpg")
        cfg = _cfg(root, num_test=999)  # not used with given splits
        assert summarize(cfg, 16, "train") == {"images": 5, "angry": 3, "happy": 2}
        test = load_dataset(cfg, 16, "test")
        assert test.summary() == {"images": 3, "angry": 1, "happy": 2}
        _assert_labels_match_pixels(test)


def test_train_only_layout_holds_out_of_train(tmp_path) -> None:
    _make(tmp_path / "r" / "train", {"angry": 4, "happy": 4})
    cfg = _cfg(tmp_path / "r", num_test=2)
    assert summarize(cfg, 16, "test") == {"images": 2, "angry": 1, "happy": 1}


def test_attrs_select_and_order_domains(flat) -> None:
    cfg = _cfg(flat, attrs=("sad", "angry"), num_test=2)
    ds = load_dataset(cfg, 16, "train")
    assert ds.spec.names == ("sad", "angry") and ds.labels.shape == (6, 2)
    assert ds.summary() == {"images": 6, "sad": 1, "angry": 5}
    _assert_labels_match_pixels(ds)
    with pytest.raises(StarGANError, match="unknown domain 'angy'.*did you mean angry"):
        dataset_spec(_cfg(flat, attrs=("angy", "sad")))
    with pytest.raises(StarGANError, match="at least 2 domains"):
        dataset_spec(_cfg(flat, attrs=("sad",)))


def test_image_modes_are_converted_through_the_loader(tmp_path) -> None:
    root = tmp_path / "modes"
    (root / "a").mkdir(parents=True)
    (root / "b").mkdir()
    Image.new("L", (20, 20), 100).save(root / "a" / "gray.png")
    Image.new("RGBA", (20, 20), (10, 20, 30, 0)).save(root / "a" / "clear.png")  # -> white
    palette = Image.new("P", (20, 20), 1)
    palette.putpalette([0, 0, 0, 0, 0, 200])
    palette.save(root / "a" / "palette.png")
    Image.new("CMYK", (20, 20), (0, 255, 0, 0)).save(root / "b" / "cmyk.tif")
    Image.new("I;16", (20, 20), 4000).save(root / "b" / "deep.png")
    ds = load_folders(_cfg(root, num_test=0), 16, "train")
    # files in sorted order: a/clear, a/gray, a/palette, b/cmyk, b/deep (16 bit: max -> 255)
    expected = [(255, 255, 255), (100,) * 3, (0, 0, 200), (255, 0, 255), (255,) * 3]
    assert len(ds) == 5 and ds.summary() == {"images": 5, "a": 3, "b": 2}
    for img, colour in zip(ds.images, expected, strict=True):
        assert np.abs(img.astype(int) - colour).max() <= 2, colour


def test_crop_is_used(tmp_path) -> None:
    root = tmp_path / "crop"
    for name in ("a", "b"):
        (root / name).mkdir(parents=True)
        arr = np.zeros((40, 40, 3), np.uint8)
        arr[10:30, 10:30] = 255  # white centre, black border
        Image.fromarray(arr).save(root / name / "x.png")
    whole = load_folders(_cfg(root, num_test=0), 16, "train")
    centre = load_folders(_cfg(root, num_test=0, crop=20), 16, "train")
    assert whole.images[0].min() == 0 and centre.images[0].min() >= 250


def test_resize_filter_is_used_and_checked(tmp_path) -> None:
    root = tmp_path / "noise"
    rng = np.random.default_rng(0)
    for name in ("a", "b"):
        (root / name).mkdir(parents=True)
        Image.fromarray(rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)).save(
            root / name / "x.png"
        )
    cfg = _cfg(root, num_test=0, resize_filter="bilinear")
    ds = load_folders(cfg, 16, "train")
    for img, name in zip(ds.images, ("a", "b"), strict=True):
        expected = decode_module.decode_one(root / name / "x.png", 16, 0, "bilinear")
        np.testing.assert_array_equal(img, expected)
    bicubic = load_folders(replace(cfg, resize_filter="bicubic"), 16, "train")
    assert not np.array_equal(bicubic.images, ds.images)
    with pytest.raises(StarGANError, match="data.resize_filter must be one of bicubic, bilinear"):
        check_data_config(replace(cfg, resize_filter="box"), 16)


def test_bad_image_error_or_skip(flat) -> None:
    (flat / "happy" / "1.png").write_bytes(b"not a png")
    with pytest.raises(StarGANError, match=r"happy/1\.png: not a readable image.*skip"):
        load_dataset(_cfg(flat, num_test=0), 16, "train")
    ds = load_dataset(_cfg(flat, num_test=0, on_bad_image="skip"), 16, "train")
    assert ds.summary() == {"images": 10, "angry": 6, "happy": 2, "sad": 2, "skipped": 1}
    _assert_labels_match_pixels(ds)


def test_second_load_is_cached(flat, monkeypatch) -> None:
    first = load_dataset(_cfg(flat), 16, "train")
    monkeypatch.setattr(decode_module, "decode_one", lambda *a: pytest.fail("decoded again"))
    second = load_dataset(_cfg(flat), 16, "train")
    assert isinstance(second.images, np.memmap)
    np.testing.assert_array_equal(second.images, first.images)


def test_layout_errors(tmp_path, flat) -> None:
    with pytest.raises(StarGANError, match="does not exist"):
        scan_layout(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(StarGANError, match="no domain folders"):
        scan_layout(tmp_path / "empty")
    (flat / "neutral").mkdir()
    (flat / "neutral" / "notes.txt").write_text("no images here")
    with pytest.raises(StarGANError, match=r"domain folder .*neutral has no images"):
        check_data_config(_cfg(flat), 16)
    check_data_config(_cfg(flat, attrs=("angry", "sad")), 16)  # unused domain: fine
    _make(tmp_path / "one", {"happy": 3})
    with pytest.raises(StarGANError, match="at least 2 domains"):
        check_data_config(_cfg(tmp_path / "one"), 16)
    with pytest.raises(StarGANError, match="num_test=30 cannot be held out"):
        check_data_config(_cfg(flat, attrs=("angry", "sad"), num_test=30), 16)
    with pytest.raises(StarGANError, match=r"test split .* is empty \(data.num_test is 0\)"):
        load_dataset(_cfg(flat, attrs=("angry", "sad"), num_test=0), 16, "test")
    with pytest.raises(StarGANError, match="needs a path"):
        dataset_spec(replace(_cfg(flat), path=""))


def test_split_layout_errors(tmp_path) -> None:
    _make(tmp_path / "a" / "train", {"angry": 2, "happy": 2})
    _make(tmp_path / "a" / "test", {"sad": 1})
    with pytest.raises(StarGANError, match="domains missing from train/: sad"):
        scan_layout(tmp_path / "a")
    _make(tmp_path / "b" / "train", {"angry": 2, "happy": 2})
    _make(tmp_path / "b", {"sad": 1})
    with pytest.raises(StarGANError, match=r"train/ next to other folders \(sad\)"):
        scan_layout(tmp_path / "b")
    _make(tmp_path / "c" / "val", {"angry": 2})
    with pytest.raises(StarGANError, match="no train/ folder"):
        scan_layout(tmp_path / "c")


# ---------------------------------------------------------------- the real CK+48
def test_real_ck_plus_48() -> None:
    if not SHARED_CK.is_dir():
        pytest.skip(f"CK+48 not available at {SHARED_CK}")
    cfg = DataConfig(dataset="folders", path=str(SHARED_CK), num_test=70)
    spec = check_data_config(cfg, 16)
    assert spec.names == ("anger", "contempt", "disgust", "fear", "happy", "sadness", "surprise")
    counts = {"anger": 135, "contempt": 54, "disgust": 177, "fear": 75}
    counts |= {"happy": 207, "sadness": 84, "surprise": 249}
    test = load_dataset(cfg, 16, "test")
    train = summarize(cfg, 16, "train")
    assert len(test) == 70 and train["images"] == 981 - 70
    assert all(train[n] + test.summary()[n] == c for n, c in counts.items())
    assert test.summary()["surprise"] == 18  # 70 * 249 / 981 = 17.8
    assert test.images.shape == (70, 16, 16, 3)
    grey = test.images.astype(int)
    assert (grey[..., 0] == grey[..., 1]).all() and grey.std() > 20  # grayscale faces
