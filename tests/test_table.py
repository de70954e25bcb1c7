"""Label tables (CSV / TSV / whitespace): parsing, splits, exclusive groups, errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from stargan.config import DataConfig
from stargan.data import check_data_config, dataset_spec, load_dataset, summarize
from stargan.data import decode as decode_module
from stargan.data.table import group_overlaps, read_table, split_rows
from stargan.errors import StarGANError

# file, Black, Blond, Smile; image i is filled with grey level 40 * i
ROWS = [
    ("img/a.png", 1, 0, 1),
    ("img/b.png", 0, 1, -1),
    ("img/c.png", -1, -1, 1),
    ("img/d.png", 1, 1, -1),  # both hair colours: allowed, counted
    ("img/e.png", 0, 1, 1),
]


def _write_table(path: Path, sep: str = ",", rows=ROWS, header=("file", "Black", "Blond", "Smile")):
    lines = [sep.join(header)] + [sep.join(str(v) for v in row) for row in rows]
    path.write_text("\n".join(lines) + "\n")


def _images(folder: Path, n: int = len(ROWS)) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        Image.new("RGB", (18, 16), (40 * i,) * 3).save(folder / f"{'abcde'[i]}.png")


def _cfg(path: Path, **kw: object) -> DataConfig:
    return DataConfig(dataset="table", path=str(path), **{"num_test": 2, **kw})


def _binary(v: int) -> float:
    return float(v > 0)


@pytest.fixture(autouse=True)
def _own_cache(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("STARGAN_CACHE", str(tmp_path / "cache"))


@pytest.fixture
def table(tmp_path) -> Path:
    _images(tmp_path / "data" / "img")
    path = tmp_path / "data" / "labels.csv"
    _write_table(path)
    return path


@pytest.mark.parametrize("sep", [",", "\t", "  "])
def test_read_table_any_delimiter(tmp_path, sep: str) -> None:
    path = tmp_path / "t.txt"
    _write_table(path, sep)
    t = read_table(path)
    assert t.names == ("Black", "Blond", "Smile") and t.split is None
    assert t.files == tuple(r[0] for r in ROWS) and t.lines == (2, 3, 4, 5, 6)
    expected = [[_binary(v) for v in r[1:]] for r in ROWS]
    np.testing.assert_array_equal(t.values, expected)  # -1 -> 0


def test_quoted_names_blank_lines_and_bom(tmp_path) -> None:
    path = tmp_path / "t.csv"
    path.write_text('\ufefffile,A,B\n\n"x, 1.png",1,0\n\ny.png,+1,-1\n', encoding="utf-8")
    t = read_table(path)
    assert t.files == ("x, 1.png", "y.png") and t.lines == (3, 5)
    assert t.values.tolist() == [[1, 0], [1, 0]]


def test_load_labels_follow_rows_and_attrs(table) -> None:
    cfg = _cfg(table, attrs=("Smile", "Black"), num_test=0)
    with pytest.raises(StarGANError, match="test split .* is empty"):
        load_dataset(cfg, 16, "test")
    ds = load_dataset(cfg, 16, "train")
    assert ds.spec.names == ("Smile", "Black") and ds.spec.kind == "multi"
    assert ds.images.shape == (5, 16, 16, 3)
    for i, row in enumerate(ROWS):
        assert ds.labels[i].tolist() == [_binary(row[3]), _binary(row[1])]
        assert np.abs(ds.images[i].astype(int) - 40 * i).max() <= 1  # row i's own image
    with pytest.raises(StarGANError, match="unknown domain 'Smiling'.*did you mean Smile"):
        dataset_spec(_cfg(table, attrs=("Smiling",)))


def test_holdout_is_seeded_and_disjoint(table) -> None:
    t = read_table(table)
    test = split_rows(t, "test", 2, seed=3)
    assert len(test) == 2 and np.array_equal(test, split_rows(t, "test", 2, seed=3))
    train = split_rows(t, "train", 2, seed=3)
    assert sorted([*train, *test]) == [0, 1, 2, 3, 4]
    seeds = {tuple(split_rows(t, "test", 2, s)) for s in range(6)}
    assert len(seeds) > 1
    ds = load_dataset(_cfg(table, seed=3), 16, "test")
    assert [int(round(float(ds.images[k].mean()) / 40)) for k in range(2)] == test.tolist()
    with pytest.raises(StarGANError, match="num_test=5 must be less than the 5 rows"):
        check_data_config(_cfg(table, num_test=5), 16)


def test_split_column(tmp_path) -> None:
    _images(tmp_path / "img")
    path = tmp_path / "t.tsv"
    splits = ["train", "TEST", "train", "val", "train"]
    rows = [(r[0], r[1], s) for r, s in zip(ROWS, splits, strict=True)]
    _write_table(path, "\t", rows, header=("image", "Black", "split"))
    t = read_table(path)
    assert t.names == ("Black",) and t.split == ("train", "test", "train", "test", "train")
    cfg = _cfg(path, num_test=100)  # not used with a split column
    assert summarize(cfg, 16, "test") == {"images": 2, "Black": 1}
    assert summarize(cfg, 16, "train") == {"images": 3, "Black": 1}
    path.write_text("image\tBlack\tsplit\nimg/a.png\t1\tholdout\n")
    with pytest.raises(StarGANError, match=r"t.tsv:2: split 'holdout' must be train, test or val"):
        read_table(path)


def test_exclusive_groups(table, capsys) -> None:
    cfg = _cfg(table, exclusive=("Black|Blond",), num_test=0)
    assert dataset_spec(cfg).exclusive_groups == (("Black", "Blond"),)
    ds = load_dataset(cfg, 16, "train", progress=True)
    assert group_overlaps(ds.labels, ds.spec) == {"Black|Blond": 1}
    assert "1 train rows have more than one of Black|Blond" in capsys.readouterr().err
    with pytest.raises(StarGANError, match="unknown domain 'Blnd'.*did you mean Blond"):
        dataset_spec(_cfg(table, exclusive=("Black|Blnd",)))
    with pytest.raises(StarGANError, match="Blond is not in data.attrs"):
        dataset_spec(_cfg(table, attrs=("Black", "Smile"), exclusive=("Black|Blond",)))
    with pytest.raises(StarGANError, match="expected 2\\+ distinct names"):
        dataset_spec(_cfg(table, exclusive=("Black",)))
    with pytest.raises(StarGANError, match="Blond is in more than one group"):
        dataset_spec(_cfg(table, exclusive=("Black|Blond", "Blond|Smile")))


def test_missing_image_rows(table) -> None:
    (table.parent / "img" / "c.png").unlink()
    with pytest.raises(StarGANError, match=r"1 labelled images missing, e\.g\. .*labels.csv:4: "):
        load_dataset(_cfg(table, num_test=0), 16, "train")
    ds = load_dataset(_cfg(table, num_test=0, on_bad_image="skip"), 16, "train")
    assert len(ds) == 4 and ds.skipped == 1 and ds.summary()["skipped"] == 1
    kept = [0, 1, 3, 4]
    assert ds.labels[:, 2].tolist() == [_binary(ROWS[i][3]) for i in kept]
    assert [int(round(float(img.mean()) / 40)) for img in ds.images] == kept


def test_corrupt_image_names_the_table_line(table) -> None:
    (table.parent / "img" / "b.png").write_bytes(b"junk")
    with pytest.raises(StarGANError, match=r"labels.csv:3: .*b\.png: not a readable image"):
        load_dataset(_cfg(table, num_test=0), 16, "train")


def test_image_dir_and_cache_reuse(tmp_path, table, monkeypatch) -> None:
    moved = tmp_path / "elsewhere"
    moved.mkdir()
    (table.parent / "img").rename(moved / "img")
    with pytest.raises(StarGANError, match="missing"):
        load_dataset(_cfg(table, num_test=0), 16, "train")
    cfg = _cfg(table, num_test=0, image_dir=str(moved))
    first = load_dataset(cfg, 16, "train")
    monkeypatch.setattr(decode_module, "decode_one", lambda *a: pytest.fail("decoded again"))
    second = load_dataset(cfg, 16, "train")
    assert isinstance(second.images, np.memmap)
    np.testing.assert_array_equal(second.images, first.images)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("file,A,B\nx.png,1,0\ny.png,1\n", r"t.csv:3: 2 columns, expected 3"),
        ("file,A,B\nx.png,1,0\ny.png,1,yes\n", r"t.csv:3: value 'yes' in column B must be 0, 1"),
        ("file,A\nx.png,1\ny.png,0\nx.png,1\n", r"t.csv:4: duplicate row for x.png .*line 2"),
        ("", r"t.csv: empty label table"),
        ("file,A,B\n\n", r"t.csv: no rows after the header"),
        ("x.png,1,0\ny.png,0,1\n", r"t.csv:1: the first line must be a header"),
        ("file\nx.png\n", r"t.csv:1: header needs a file column and attribute columns"),
        ("file,A,A\nx.png,1,0\n", r"t.csv:1: column names must be non-empty and distinct"),
        ("file,split\nx.png,train\n", r"t.csv:1: no attribute columns"),
    ],
)
def test_table_errors_name_file_and_line(tmp_path, text: str, message: str) -> None:
    path = tmp_path / "t.csv"
    path.write_text(text)
    with pytest.raises(StarGANError, match=message):
        read_table(path)


def test_unreadable_table_and_no_path(tmp_path) -> None:
    with pytest.raises(StarGANError, match="cannot read label table"):
        read_table(tmp_path / "none.csv")
    with pytest.raises(StarGANError, match="needs a path"):
        dataset_spec(DataConfig(dataset="table"))
