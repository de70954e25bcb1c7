"""CelebA in its official layout, the decoded-image cache, and the training-batch helpers."""

from __future__ import annotations

import os
import random
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from stargan.config import DataConfig
from stargan.data import decode, load_dataset
from stargan.data.cache import cache_key, cached_images, default_cache_dir
from stargan.data.celeba import (
    PAPER_ATTRS,
    label_spec,
    load_celeba,
    read_attr_file,
    split_indices,
)
from stargan.data.dataset import (
    ImageLabelDataset,
    epoch_batch_indices,
    random_flip,
    to_model_range,
    to_uint8,
)
from stargan.data.labels import LabelSpec
from stargan.errors import StarGANError
from stargan.images import load_rgb

# The 40 attribute names of list_attr_celeba.txt, in file order.
CELEBA_ATTRS = [
    "5_o_Clock_Shadow",
    "Arched_Eyebrows",
    "Attractive",
    "Bags_Under_Eyes",
    "Bald",
    "Bangs",
    "Big_Lips",
    "Big_Nose",
    "Black_Hair",
    "Blond_Hair",
    "Blurry",
    "Brown_Hair",
    "Bushy_Eyebrows",
    "Chubby",
    "Double_Chin",
    "Eyeglasses",
    "Goatee",
    "Gray_Hair",
    "Heavy_Makeup",
    "High_Cheekbones",
    "Male",
    "Mouth_Slightly_Open",
    "Mustache",
    "Narrow_Eyes",
    "No_Beard",
    "Oval_Face",
    "Pale_Skin",
    "Pointy_Nose",
    "Receding_Hairline",
    "Rosy_Cheeks",
    "Sideburns",
    "Smiling",
    "Straight_Hair",
    "Wavy_Hair",
    "Wearing_Earrings",
    "Wearing_Hat",
    "Wearing_Lipstick",
    "Wearing_Necklace",
    "Wearing_Necktie",
    "Young",
]

# One colour per image, framed by another colour: 20-pixel bands above and below, which
# the paper's centre crop (178x178 of 178x218) must cut away, and 18-pixel stripes left and
# right, which it must keep (they become the outer 3 columns at 32 px).
COLOURS = [(200, 30, 30), (30, 200, 30), (30, 30, 200), (220, 220, 40), (40, 200, 200), (128,) * 3]
PARTITION = [0, 0, 0, 1, 2, 2]  # official: 0 train, 1 validation (-> train), 2 test
SHARED_SUBSET = Path(__file__).parents[2] / "shared" / "data" / "celeba_subset"


def _frame(colour: tuple[int, ...]) -> tuple[int, int, int]:
    return (0, 0, 0) if sum(colour) > 300 else (255, 255, 255)


def _values(n: int) -> np.ndarray:
    return np.where(np.random.default_rng(42).random((n, 40)) > 0.5, 1, -1).astype(np.int8)


def _file(i: int) -> str:
    return f"{i + 1:06d}.jpg"


def _write_attr_file(path: Path, values: np.ndarray, names: list[str] = CELEBA_ATTRS) -> None:
    lines = [str(len(values)), " ".join(names) + " "]  # the official file has a trailing space
    for i, row in enumerate(values):
        lines.append(_file(i) + " " + " ".join(f"{v:2d}" for v in row))
    path.write_text("\n".join(lines) + "\n")


@pytest.fixture
def celeba(tmp_path, monkeypatch) -> Path:
    """A six-image CelebA folder in the official layout."""
    monkeypatch.setenv("STARGAN_CACHE", str(tmp_path / "cache"))
    root = tmp_path / "celeba"
    (root / "img_align_celeba").mkdir(parents=True)
    _write_attr_file(root / "list_attr_celeba.txt", _values(len(COLOURS)))
    (root / "list_eval_partition.txt").write_text(
        "".join(f"{_file(i)} {p}\n" for i, p in enumerate(PARTITION))
    )
    for i, colour in enumerate(COLOURS):
        arr = np.empty((218, 178, 3), np.uint8)
        arr[:] = _frame(colour)
        arr[20:198, 18:160] = colour
        Image.fromarray(arr).save(root / "img_align_celeba" / _file(i), quality=95)
    return root


# ---------------------------------------------------------------- attribute file
def test_read_attr_file(celeba) -> None:
    names, files, values = read_attr_file(celeba / "list_attr_celeba.txt")
    assert names == CELEBA_ATTRS
    assert files == [_file(i) for i in range(6)]
    assert values.dtype == np.int8 and values.shape == (6, 40)
    np.testing.assert_array_equal(values, _values(6))


def test_read_attr_file_tolerates_blank_lines(tmp_path) -> None:
    path = tmp_path / "attrs.txt"
    path.write_text("2\nA B\n\nx.jpg 1 -1\n\ny.jpg -1 -1\n\n")
    names, files, values = read_attr_file(path)
    assert names == ["A", "B"] and files == ["x.jpg", "y.jpg"]
    np.testing.assert_array_equal(values, [[1, -1], [-1, -1]])


def test_read_attr_file_wrong_column_count_names_the_line(tmp_path) -> None:
    path = tmp_path / "list_attr_celeba.txt"
    _write_attr_file(path, _values(3))
    lines = path.read_text().splitlines()
    lines[3] = lines[3].rsplit(" ", 1)[0]  # second data row (file line 4) loses a value
    path.write_text("\n".join(lines))
    with pytest.raises(StarGANError, match=r"list_attr_celeba.txt:4: 39 values, expected 40"):
        read_attr_file(path)


def test_read_attr_file_other_errors(tmp_path) -> None:
    path = tmp_path / "attrs.txt"
    path.write_text("1\nA B\nx.jpg 1 yes\n")
    with pytest.raises(StarGANError, match=r"attrs.txt:3: values must be 1 or -1"):
        read_attr_file(path)
    path.write_text("1\n")
    with pytest.raises(StarGANError, match="expected a count line and a names line"):
        read_attr_file(path)
    with pytest.raises(StarGANError, match="cannot read CelebA attribute file"):
        read_attr_file(tmp_path / "missing.txt")


def test_label_spec() -> None:
    spec = label_spec((), CELEBA_ATTRS)
    assert spec.names == PAPER_ATTRS and spec.kind == "multi"
    assert spec.exclusive_groups == (("Black_Hair", "Blond_Hair", "Brown_Hair"),)
    spec = label_spec(("Gray_Hair", "Blond_Hair", "Smiling"), CELEBA_ATTRS)
    assert spec.exclusive_groups == (("Blond_Hair", "Gray_Hair"),)
    assert label_spec(("Blond_Hair", "Male")).exclusive_groups == ()  # one colour: no group


def test_unknown_attribute_suggests_close_match(celeba) -> None:
    with pytest.raises(StarGANError, match="unknown domain 'Blonde_Hair'.*did you mean Blond_Hair"):
        load_celeba(celeba, ("Blonde_Hair", "Male"), 32, "train")


# ---------------------------------------------------------------- splits and labels
@pytest.mark.parametrize(("mode", "n_test"), [("paper", 3), ("official", 2)])
def test_splits_are_disjoint_and_cover_everything(celeba, mode: str, n_test: int) -> None:
    train = load_celeba(celeba, (), 32, "train", mode)
    test = load_celeba(celeba, (), 32, "test", mode)
    assert (len(train), len(test)) == (6 - n_test, n_test)
    files = [_file(i) for i in range(6)]
    tr = split_indices(files, celeba, mode, "train", 0)
    te = split_indices(files, celeba, mode, "test", 0)
    assert not set(tr) & set(te)
    assert sorted([*tr, *te]) == list(range(6))
    if mode == "official":
        assert tr.tolist() == [0, 1, 2, 3] and te.tolist() == [4, 5]
    # the labels of each split are the file's rows, -1 -> 0, in the spec's column order
    cols = [CELEBA_ATTRS.index(a) for a in PAPER_ATTRS]
    np.testing.assert_array_equal(train.labels, (_values(6)[tr][:, cols] + 1) // 2)
    np.testing.assert_array_equal(test.labels, (_values(6)[te][:, cols] + 1) // 2)
    assert train.labels.dtype == np.float32 and train.spec.names == PAPER_ATTRS


def test_paper_split_is_seeded() -> None:
    files = [_file(i) for i in range(100)]
    a = split_indices(files, Path("."), "paper", "test", 0)
    assert len(a) == 50  # half of a small set; 2,000 of the real one
    np.testing.assert_array_equal(a, split_indices(files, Path("."), "paper", "test", 0))
    assert not np.array_equal(a, split_indices(files, Path("."), "paper", "test", 1))
    assert (np.diff(a) > 0).all()  # sorted


def test_official_code_split_is_the_official_data_loaders() -> None:
    """An independent transcription of yunjey/stargan's data_loader.py preprocess()."""
    files = [f"{i + 1:06d}.jpg" for i in range(5000)]
    lines = [f"{f} 1 -1" for f in files]
    state = random.getstate()
    try:
        random.seed(1234)
        random.shuffle(lines)
    finally:
        random.setstate(state)
    official_test = {line.split()[0] for i, line in enumerate(lines) if (i + 1) < 2000}
    test = split_indices(files, Path("."), "official-code", "test", 0)
    train = split_indices(files, Path("."), "official-code", "train", 7)  # seed unused
    assert {files[i] for i in test} == official_test and len(test) == 1999
    assert len(train) == 5000 - 1999 and not set(test) & set(train)


def test_split_errors(celeba) -> None:
    files = [_file(i) for i in range(6)]
    with pytest.raises(
        StarGANError, match="must be one of paper, official, official-code, not 'random'"
    ):
        split_indices(files, celeba, "random", "train", 0)
    (celeba / "list_eval_partition.txt").unlink()
    with pytest.raises(StarGANError, match="list_eval_partition.txt.*test_split=official"):
        load_celeba(celeba, (), 32, "test", "official")


def test_attribute_order_follows_attrs(celeba) -> None:
    ds = load_celeba(celeba, ("Young", "Smiling"), 32, "train", "official")
    assert ds.spec.names == ("Young", "Smiling")
    rows = _values(6)[:4]
    expected = np.stack([rows[:, 39], rows[:, CELEBA_ATTRS.index("Smiling")]], axis=1) > 0
    np.testing.assert_array_equal(ds.labels, expected.astype(np.float32))


# ---------------------------------------------------------------- pixels and cache
def test_centre_crop_and_resize_give_expected_colours(celeba) -> None:
    ds = load_celeba(celeba, (), 32, "train", "official")
    assert ds.images.shape == (4, 32, 32, 3) and ds.images.dtype == np.uint8
    assert ds.image_size == 32
    for i in range(4):
        im = ds.images[i].astype(int)
        centre = np.abs(im[:, 5:27] - COLOURS[i])  # every row: the bands are cut away
        assert centre.max() <= 10, f"image {i}: not the centre crop"
        sides = np.abs(im[:, [0, 1, 2, 29, 30, 31]] - _frame(COLOURS[i]))
        assert sides.max() <= 10, f"image {i}: the crop is narrower than 178"


def test_missing_image_file(celeba) -> None:
    (celeba / "img_align_celeba" / _file(2)).unlink()
    with pytest.raises(StarGANError, match=r"1 labelled images missing, e\.g\. .*000003\.jpg"):
        load_celeba(celeba, (), 32, "train", "official")


def test_corrupt_image_file(celeba) -> None:
    (celeba / "img_align_celeba" / _file(0)).write_bytes(b"not a jpeg")
    with pytest.raises(StarGANError, match="000001.jpg: not a readable image"):
        load_celeba(celeba, (), 32, "train", "official")


def test_missing_root(tmp_path) -> None:
    with pytest.raises(StarGANError, match="does not exist"):
        load_celeba(tmp_path / "nope", (), 32, "train")


def test_wrong_folder_says_what_is_expected(celeba, tmp_path) -> None:
    expected = r"expected list_attr_celeba.txt and img_align_celeba/"
    with pytest.raises(StarGANError, match=rf"not a CelebA folder: no list_attr.*{expected}"):
        load_celeba(celeba / "img_align_celeba", (), 32, "train")  # one level too deep
    with pytest.raises(StarGANError, match=r"no list_attr_celeba.txt or img_align_celeba"):
        load_dataset(DataConfig(dataset="celeba", path=str(tmp_path)), 32, "train")
    nested = celeba / "img_align_celeba" / "img_align_celeba"
    nested.mkdir()
    with pytest.raises(StarGANError, match="holds another img_align_celeba/"):
        load_celeba(celeba, (), 32, "train")


def test_official_code_layout_images_folder(celeba) -> None:
    """yunjey/stargan's download.sh: images/ beside list_attr_celeba.txt."""
    before = load_celeba(celeba, (), 32, "train", "official")
    (celeba / "img_align_celeba").rename(celeba / "images")
    after = load_celeba(celeba, (), 32, "train", "official")
    assert np.array_equal(after.images, before.images)
    assert np.array_equal(after.labels, before.labels)


@pytest.mark.parametrize("damage", ["missing", "corrupt"])
def test_bad_images_skipped_and_counted(celeba, damage: str) -> None:
    bad = celeba / "img_align_celeba" / _file(1)
    if damage == "missing":
        bad.unlink()
    else:
        bad.write_bytes(b"junk")
    cfg = DataConfig(dataset="celeba", path=str(celeba), test_split="official")
    with pytest.raises(StarGANError, match=r"000002\.jpg.*--on-bad-image skip"):
        load_dataset(cfg, 32, "train")
    ds = load_dataset(replace(cfg, on_bad_image="skip"), 32, "train")
    assert len(ds) == 3 and ds.skipped == 1 and ds.summary()["skipped"] == 1
    cols = [CELEBA_ATTRS.index(a) for a in PAPER_ATTRS]
    np.testing.assert_array_equal(ds.labels, (_values(6)[[0, 2, 3]][:, cols] + 1) // 2)
    for row, i in enumerate([0, 2, 3]):  # the images stay with their own labels
        assert np.abs(ds.images[row, :, 5:27].astype(int) - COLOURS[i]).max() <= 10


def test_crop_from_config(celeba) -> None:
    cfg = DataConfig(dataset="celeba", path=str(celeba), test_split="official", crop=100)
    ds = load_dataset(cfg, 32, "train")
    assert np.abs(ds.images[0].astype(int) - COLOURS[0]).max() <= 10  # no frame left


def test_resize_filter_from_config(celeba) -> None:
    cfg = DataConfig(dataset="celeba", path=str(celeba), test_split="official")
    bilinear = load_dataset(replace(cfg, resize_filter="bilinear"), 32, "train")
    first = celeba / "img_align_celeba" / _file(0)
    np.testing.assert_array_equal(bilinear.images[0], decode.decode_one(first, 32, 178, "bilinear"))
    bicubic = load_dataset(cfg, 32, "train")  # the default, and another cache entry
    np.testing.assert_array_equal(bicubic.images[0], decode.decode_one(first, 32, 178, "bicubic"))
    assert not np.array_equal(bicubic.images, bilinear.images)


def test_second_load_is_memory_mapped_from_cache(celeba, tmp_path, monkeypatch) -> None:
    first = load_celeba(celeba, (), 32, "train", "official")
    assert isinstance(first.images, np.memmap)  # decoded straight into the cache file
    cached = list((tmp_path / "cache" / "celeba").glob("train-32px-*.npy"))
    assert len(cached) == 1 and cached[0].with_suffix(".json").exists()
    monkeypatch.setattr(decode, "decode_one", lambda *a: pytest.fail("decoded again"))
    second = load_celeba(celeba, (), 32, "train", "official")
    assert isinstance(second.images, np.memmap)
    np.testing.assert_array_equal(np.asarray(second.images), first.images)
    np.testing.assert_array_equal(second.labels, first.labels)
    # another size or split is another cache entry, not a wrong hit
    monkeypatch.undo()
    monkeypatch.setenv("STARGAN_CACHE", str(tmp_path / "cache"))
    assert load_celeba(celeba, (), 16, "train", "official").images.shape[1] == 16
    assert len(load_celeba(celeba, (), 32, "test", "official")) == 2
    assert len(list((tmp_path / "cache" / "celeba").glob("*.npy"))) == 3


def test_cache_is_invalidated_when_an_image_changes(celeba) -> None:
    before = load_celeba(celeba, (), 32, "train", "official").images[0].copy()
    p = celeba / "img_align_celeba" / _file(0)
    mtime_ns = p.stat().st_mtime_ns
    Image.new("RGB", (178, 218), (0, 0, 0)).save(p, quality=95)
    os.utime(p, ns=(mtime_ns + 10**9, mtime_ns + 10**9))  # robust to coarse mtime clocks
    after = load_celeba(celeba, (), 32, "train", "official")
    assert np.abs(after.images[0].astype(int)).max() <= 10  # black now, not the cached red
    assert not np.array_equal(before, after.images[0])


def test_cached_images_builds_once_and_rebuilds_damaged(tmp_path) -> None:
    calls = []

    def build() -> np.ndarray:
        calls.append(1)
        return np.arange(24, dtype=np.uint8).reshape(1, 2, 4, 3)

    path = tmp_path / "sub" / "x.npy"
    a = cached_images(path, build)
    b = cached_images(path, build)
    assert len(calls) == 1 and isinstance(b, np.memmap)
    np.testing.assert_array_equal(a, b)
    assert [p.name for p in path.parent.iterdir()] == ["x.npy"]  # no temp file left
    path.write_bytes(b"damaged")
    c = cached_images(path, build)
    assert len(calls) == 2
    np.testing.assert_array_equal(c, a)


def test_cache_dir_and_key(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("STARGAN_CACHE", str(tmp_path / "c"))
    assert default_cache_dir() == tmp_path / "c"
    monkeypatch.delenv("STARGAN_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "stargan"
    assert cache_key("a", 1, Path("b")) == cache_key("a", 1, Path("b"))
    assert cache_key("a", 1) != cache_key("a", 2) and cache_key("ab", "c") != cache_key("a", "bc")
    assert len(cache_key("x")) == 16


# ---------------------------------------------------------------- the real subset
def test_real_celeba_subset_official_split() -> None:
    if not (SHARED_SUBSET / "list_attr_celeba.txt").exists():
        pytest.skip(f"CelebA subset not available at {SHARED_SUBSET}")
    names, files, values = read_attr_file(SHARED_SUBSET / "list_attr_celeba.txt")
    assert names == CELEBA_ATTRS
    assert values.shape == (4000, 40) and set(np.unique(values)) == {-1, 1}
    train = split_indices(files, SHARED_SUBSET, "official", "train", 0)
    test = split_indices(files, SHARED_SUBSET, "official", "test", 0)
    assert (len(train), len(test)) == (3000, 1000)
    assert not set(train) & set(test)
    paper_test = split_indices(files, SHARED_SUBSET, "paper", "test", 0)
    assert len(paper_test) == 2000  # min(2000, n // 2)
    # decode one image only: the official aligned size
    im = load_rgb(SHARED_SUBSET / "img_align_celeba" / files[int(test[0])])
    assert im.size == (178, 218) and im.mode == "RGB"


# ---------------------------------------------------------------- dataset.py
def test_epoch_batch_indices_is_pure_and_covers_each_index_once() -> None:
    n, batch = 10, 3  # 3 batches per epoch, one image left over
    a = [epoch_batch_indices(n, batch, s, seed=5) for s in range(6)]
    b = [epoch_batch_indices(n, batch, s, seed=5) for s in reversed(range(6))][::-1]
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))  # order-independent
    for epoch in (a[:3], a[3:]):
        seen = torch.cat(epoch).tolist()
        assert len(seen) == 9 and len(set(seen)) == 9 and set(seen) <= set(range(n))
    assert torch.cat(a[:3]).tolist() != torch.cat(a[3:]).tolist()  # a fresh permutation
    assert not torch.equal(epoch_batch_indices(n, batch, 0, 5), epoch_batch_indices(n, batch, 0, 6))
    assert all(x.shape == (3,) and x.dtype == torch.int64 for x in a)


def test_epoch_batch_indices_needs_one_batch() -> None:
    assert epoch_batch_indices(4, 4, 7, 0).sort().values.tolist() == [0, 1, 2, 3]
    with pytest.raises(StarGANError, match="3 images, fewer than one batch of 4"):
        epoch_batch_indices(3, 4, 0, 0)


def test_model_range_round_trip_is_exact() -> None:
    x = torch.arange(256, dtype=torch.uint8)
    y = to_model_range(x)
    assert y.dtype == torch.float32
    assert y[0] == -1.0 and y[255] == 1.0 and (y.diff() > 0).all()
    assert torch.equal(to_uint8(y), x)
    assert torch.equal(to_uint8(to_model_range(x, torch.float64)), x)
    assert to_uint8(torch.tensor([-3.0, 3.0])).tolist() == [0, 255]  # clamped


def test_random_flip() -> None:
    x = torch.arange(400 * 4, dtype=torch.float32).reshape(400, 1, 1, 4)
    a = random_flip(x, torch.Generator().manual_seed(0))
    b = random_flip(x, torch.Generator().manual_seed(0))
    assert torch.equal(a, b)
    flipped = (a != x).any(-1).flatten()
    assert torch.equal(a[flipped], x[flipped].flip(-1))
    assert torch.equal(a[~flipped], x[~flipped])
    assert 0.4 < flipped.float().mean().item() < 0.6
    assert torch.equal(x, torch.arange(400 * 4, dtype=torch.float32).reshape(400, 1, 1, 4))


def test_image_label_dataset() -> None:
    spec = LabelSpec(("a", "b"))
    images = np.arange(3 * 2 * 2 * 3, dtype=np.uint8).reshape(3, 2, 2, 3)
    labels = np.array([[1, 0], [0, 1], [1, 1]], np.float32)
    ds = ImageLabelDataset(images, labels, spec)
    x, c = ds.batch(torch.tensor([2, 0]))
    assert x.shape == (2, 3, 2, 2) and x.dtype == torch.uint8
    assert torch.equal(x[0], torch.from_numpy(images[2]).permute(2, 0, 1))
    assert c.tolist() == [[1.0, 1.0], [1.0, 0.0]]
    assert ds.summary() == {"images": 3, "a": 2, "b": 2}
    with pytest.raises(StarGANError, match="uint8"):
        ImageLabelDataset(images.astype(np.float32), labels, spec)
    with pytest.raises(StarGANError, match=r"labels must be \[3, 2\]"):
        ImageLabelDataset(images, labels[:2], spec)


def test_load_rgb_applies_exif_orientation(tmp_path: Path) -> None:
    im = Image.new("RGB", (40, 20), (200, 10, 10))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    im.save(tmp_path / "phone.jpg", exif=exif.tobytes())
    assert load_rgb(tmp_path / "phone.jpg").size == (20, 40)
