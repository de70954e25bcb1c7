"""Parallel decoding into the memory-mapped cache: pixels, bad files, reuse, invalidation."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFile

from stargan.data import decode
from stargan.data.cache import building, cache_key
from stargan.data.decode import decode_images
from stargan.errors import StarGANError

COLOURS = [(200, 30, 30), (30, 200, 30), (30, 30, 200), (220, 220, 40), (128, 128, 128)]


def _write(folder: Path, n: int = 5, suffix: str = ".png") -> list[Path]:
    """``n`` solid-colour 24x20 images: image i is COLOURS[i], the centre crop keeps it."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        p = folder / f"{i:03d}{suffix}"
        Image.new("RGB", (24, 20), COLOURS[i % len(COLOURS)]).save(p, quality=95)
        paths.append(p)
    return paths


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _fail(*args: object) -> None:
    raise AssertionError("decoded although the cache should have been used")


@pytest.fixture
def cache(tmp_path: Path) -> Path:
    return tmp_path / "cache"


def test_decodes_in_order_with_centre_crop(tmp_path, cache) -> None:
    paths = _write(tmp_path / "img")
    out = decode_images(paths, 16, cache_dir=cache, workers=3)
    assert out.images.shape == (5, 16, 16, 3) and out.images.dtype == np.uint8
    assert isinstance(out.images, np.memmap)  # streamed to disk, not held in RAM
    assert out.kept.tolist() == [0, 1, 2, 3, 4] and out.skipped == ()
    for i, colour in enumerate(COLOURS):
        assert np.abs(out.images[i].astype(int) - colour).max() <= 2


def test_parallel_equals_serial(tmp_path, cache) -> None:
    rng = np.random.default_rng(0)
    paths = []
    for i in range(12):
        p = tmp_path / f"{i}.png"
        Image.fromarray(rng.integers(0, 256, (30 + i, 26, 3), dtype=np.uint8)).save(p)
        paths.append(p)
    a = decode_images(paths, 16, cache_dir=cache / "a", workers=1)
    b = decode_images(paths, 16, cache_dir=cache / "b", workers=4)
    np.testing.assert_array_equal(a.images, b.images)
    np.testing.assert_array_equal(a.images[3], decode.decode_one(paths[3], 16, 0))


def test_cache_layout_and_reuse_without_decoding(tmp_path, cache, monkeypatch) -> None:
    paths = _write(tmp_path / "img")
    first = decode_images(paths, 16, cache_dir=cache, tag="demo", stem="train")
    names = sorted(p.name for p in (cache / "demo").iterdir())
    assert len(names) == 2 and names[0].endswith(".json") and names[1].endswith(".npy")
    assert names[1].startswith("train-16px-")  # no temp file left behind
    meta = json.loads((cache / "demo" / names[0]).read_text())
    assert meta == {"format_version": 1, "count": 5, "rows": 5, "skipped": []}
    monkeypatch.setattr(decode, "decode_one", _fail)
    second = decode_images(paths, 16, cache_dir=cache, tag="demo", stem="train")
    assert isinstance(second.images, np.memmap)
    np.testing.assert_array_equal(second.images, first.images)


def test_cache_is_invalidated_when_a_file_changes(tmp_path, cache) -> None:
    paths = _write(tmp_path / "img")
    decode_images(paths, 16, cache_dir=cache)
    mtime = paths[0].stat().st_mtime_ns
    Image.new("RGB", (24, 20), (0, 0, 0)).save(paths[0])
    os.utime(paths[0], ns=(mtime + 10**9, mtime + 10**9))
    after = decode_images(paths, 16, cache_dir=cache)
    assert after.images[0].max() <= 2  # black now, not the cached red
    assert len(list(cache.glob("*/*.npy"))) == 2
    # another size, crop or bad-image policy is another entry, not a wrong hit
    assert decode_images(paths, 8, cache_dir=cache).images.shape[1] == 8
    decode_images(paths, 16, 10, cache_dir=cache)
    decode_images(paths, 16, on_bad_image="skip", cache_dir=cache)
    assert len(list(cache.glob("*/*.npy"))) == 5


def _photo(path: Path, size: tuple[int, int] = (178, 218), seed: int = 0) -> Path:
    """A noisy RGB image (fine detail, so that filters differ), saved losslessly."""
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(path)
    return path


def test_bilinear_is_the_official_loaders_resize(tmp_path) -> None:
    """The official CelebA loader: CenterCrop(178) of a 178x218 image (rows 20-197), then
    torchvision's Resize(128), which on a PIL image is Image.resize(size, BILINEAR)."""
    path = _photo(tmp_path / "face.png")
    with Image.open(path) as im:
        crop = im.convert("RGB").crop((0, 20, 178, 198))
    official = np.asarray(crop.resize((128, 128), Image.BILINEAR))
    np.testing.assert_array_equal(decode.decode_one(path, 128, 178, "bilinear"), official)
    bicubic = decode.decode_one(path, 128, 178, "bicubic")
    np.testing.assert_array_equal(bicubic, np.asarray(crop.resize((128, 128), Image.BICUBIC)))
    np.testing.assert_array_equal(decode.decode_one(path, 128, 178), bicubic)  # the default
    assert np.abs(bicubic.astype(int) - official).mean() > 1  # so the test can fail


def test_each_resize_filter_has_its_own_cache_entry(tmp_path, cache, monkeypatch) -> None:
    paths = [_photo(tmp_path / f"{i}.png", (24, 20), seed=i) for i in range(3)]
    bicubic = decode_images(paths, 16, cache_dir=cache, tag="t")
    bilinear = decode_images(paths, 16, resize_filter="bilinear", cache_dir=cache, tag="t")
    assert len(list((cache / "t").glob("*.npy"))) == 2
    assert not np.array_equal(bicubic.images, bilinear.images)
    np.testing.assert_array_equal(
        bilinear.images[1], decode.decode_one(paths[1], 16, 0, "bilinear")
    )
    monkeypatch.setattr(decode, "decode_one", _fail)  # both are reused, neither confused
    again = decode_images(paths, 16, resize_filter="bilinear", cache_dir=cache, tag="t")
    np.testing.assert_array_equal(again.images, bilinear.images)
    np.testing.assert_array_equal(
        decode_images(paths, 16, cache_dir=cache, tag="t").images, bicubic.images
    )
    # bicubic entries keep the key they had before the filter was a choice (no re-decode)
    parts = [f"{os.path.abspath(p)}:{p.stat().st_size}:{p.stat().st_mtime_ns}" for p in paths]
    old_key = cache_key(decode.FORMAT_VERSION, 16, 0, "error", *parts)
    assert (cache / "t" / f"images-16px-{old_key}.npy").exists()


def test_an_unknown_resize_filter_is_refused(tmp_path, cache) -> None:
    paths = _write(tmp_path / "img", n=1)
    with pytest.raises(StarGANError, match="resize_filter must be one of bicubic, bilinear"):
        decode_images(paths, 16, resize_filter="lanczos", cache_dir=cache)
    with pytest.raises(StarGANError, match=r"one of bicubic, bilinear \(got 'nearest'\)"):
        decode.decode_one(paths[0], 16, 0, "nearest")
    assert not cache.exists()


def test_damaged_or_incomplete_entry_is_rebuilt(tmp_path, cache) -> None:
    paths = _write(tmp_path / "img")
    decode_images(paths, 16, cache_dir=cache)
    (npy,) = cache.glob("*/*.npy")
    npy.write_bytes(b"damaged")
    assert decode_images(paths, 16, cache_dir=cache).images.shape == (5, 16, 16, 3)
    npy.with_suffix(".json").unlink()  # an .npy without its sidecar is no entry
    assert decode_images(paths, 16, cache_dir=cache).images.shape == (5, 16, 16, 3)
    assert npy.with_suffix(".json").exists()


@pytest.mark.parametrize("damage", ["corrupt", "truncated-jpeg", "truncated-png", "missing"])
def test_bad_image_error_names_the_file(tmp_path, cache, damage: str) -> None:
    suffix = ".png" if damage == "truncated-png" else ".jpg"
    paths = _write(tmp_path / "img", suffix=suffix)
    if damage == "corrupt":
        paths[2].write_bytes(b"not an image")
    elif damage == "missing":
        paths[2].unlink()
    else:
        _truncate(paths[2])
    with pytest.raises(StarGANError, match=rf"002{suffix}.*--on-bad-image skip") as err:
        decode_images(paths, 16, cache_dir=cache, origins=[f"t.csv:{i + 2}" for i in range(5)])
    assert "t.csv:4: " in str(err.value)
    assert "\n" not in str(err.value)
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False
    assert not list(cache.rglob("*.npy")), "a failed decode must leave no cache file"


@pytest.mark.parametrize("damage", ["corrupt", "truncated", "missing"])
def test_skip_leaves_bad_images_out_and_reuses_the_decision(
    tmp_path, cache, monkeypatch, damage: str
) -> None:
    paths = _write(tmp_path / "img", suffix=".jpg")
    for p in (paths[1], paths[3]):
        if damage == "corrupt":
            p.write_bytes(b"\xff\xd8 junk")
        elif damage == "missing":
            p.unlink()
        else:
            _truncate(p)
    out = decode_images(paths, 16, on_bad_image="skip", cache_dir=cache)
    assert out.skipped == (1, 3) and out.kept.tolist() == [0, 2, 4]
    assert out.images.shape == (3, 16, 16, 3)
    for row, i in enumerate(out.kept):
        assert np.abs(out.images[row].astype(int) - COLOURS[i]).max() <= 12
    monkeypatch.setattr(decode, "decode_one", _fail)
    again = decode_images(paths, 16, on_bad_image="skip", cache_dir=cache)
    assert again.skipped == (1, 3) and again.kept.tolist() == [0, 2, 4]
    np.testing.assert_array_equal(again.images, out.images)


def test_skip_reports_the_count_when_progress(tmp_path, cache, capsys) -> None:
    paths = _write(tmp_path / "img")
    paths[0].write_bytes(b"junk")
    decode_images(paths, 16, on_bad_image="skip", cache_dir=cache, progress=True, tag="x")
    assert "skipped 1 of 5 unreadable images" in capsys.readouterr().err


def test_argument_and_cache_errors(tmp_path, cache) -> None:
    paths = _write(tmp_path / "img", n=2)
    with pytest.raises(StarGANError, match="on_bad_image must be error or skip, not 'ignore'"):
        decode_images(paths, 16, on_bad_image="ignore", cache_dir=cache)
    with pytest.raises(StarGANError, match="no image files"):
        decode_images([], 16, cache_dir=cache)
    for p in paths:
        p.write_bytes(b"junk")
    with pytest.raises(StarGANError, match="none of the 2 images could be read"):
        decode_images(paths, 16, on_bad_image="skip", cache_dir=cache)
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    _write(tmp_path / "ok", n=1)
    with pytest.raises(StarGANError, match="cannot write the image cache.*STARGAN_CACHE"):
        decode_images([tmp_path / "ok" / "000.png"], 16, cache_dir=blocker)


def test_building_renames_only_on_success(tmp_path) -> None:
    path = tmp_path / "x.npy"
    with building(path, (3, 2)) as out:
        assert isinstance(out, np.memmap) and not path.exists()  # filled under a temp name
        out[:] = 7
    assert np.load(path).tolist() == [[7, 7]] * 3
    with pytest.raises(RuntimeError), building(tmp_path / "y.npy", (2,)):
        raise RuntimeError("crash")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.npy"]
