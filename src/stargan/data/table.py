"""Your own multi-label data: a CSV or TSV table of image files and 0/1 attributes.

``data.path`` is the table::

    file,Smiling,Glasses,Black_Hair,Blond_Hair[,split]
    img/0001.jpg,1,0,1,0[,train]
    img/0002.jpg,-1,1,0,1[,test]

The first line is the header; its first column holds the image files (any column name),
relative to the table's folder, or to ``data.image_dir`` when set (itself relative to the
working directory, or absolute). Values are 1 (has the attribute) and 0 or -1 (has not).
The delimiter is taken from the header: tab if it has one, else comma, else whitespace.
Blank lines are ignored; fields may be quoted (CSV rules).

``data.attrs`` picks and orders attribute columns (default: all). ``data.exclusive``
declares groups like ``Black_Hair|Blond_Hair`` whose members exclude each other in
generated targets; rows with several members active are kept (training targets keep one)
and counted. A ``split`` column with values train/test (``val`` = test) fixes the split;
without one, the test split is a seeded random hold-out of ``data.num_test`` rows.
``data.num_train`` is not used. ``data.crop``: centre crop in source px (0: largest square).
"""

from __future__ import annotations

import csv
import functools
import sys
from collections.abc import Callable
from dataclasses import dataclass
from operator import itemgetter
from pathlib import Path

import numpy as np

from stargan.config import DataConfig
from stargan.data.dataset import ImageLabelDataset
from stargan.data.decode import decode_split
from stargan.data.labels import LabelSpec
from stargan.errors import StarGANError

VALUES = {"1": 1, "+1": 1, "0": 0, "-1": 0}
SPLITS = {"train": "train", "test": "test", "val": "test"}
SPLIT_COLUMN = "split"


@dataclass(frozen=True)
class Table:
    """A parsed label table."""

    path: Path
    names: tuple[str, ...]  # attribute columns, in file order
    files: tuple[str, ...]  # image file of each row, as written
    lines: tuple[int, ...]  # 1-based line number of each row
    values: np.ndarray  # int8 [N, len(names)], 0/1
    split: tuple[str, ...] | None  # "train" / "test" per row, when there is a split column

    def where(self, row: int) -> str:
        return f"{self.path}:{self.lines[row]}"


def read_table(path: Path) -> Table:
    """Parse a label table; StarGANError naming file:line for anything malformed.

    Parsed tables are remembered by (path, size, mtime): spec, checks and both splits
    of one run read a large table once."""
    path = Path(path)
    try:
        st = path.stat()
    except OSError as err:
        raise StarGANError(f"cannot read label table {path}: {err.strerror}") from err
    return _read_table(path, (str(path.absolute()), st.st_size, st.st_mtime_ns))


@functools.lru_cache(maxsize=4)
def _read_table(path: Path, identity: tuple[str, int, int]) -> Table:
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise StarGANError(f"cannot read label table {path}: {err}") from err
    numbered = [(n, line) for n, line in enumerate(lines, start=1) if line.strip()]
    if not numbered:
        raise StarGANError(f"{path}: empty label table (expected a header file,attr1,...)")
    split_cells = _splitter(numbered[0][1])
    header = split_cells(numbered[0][1])
    _check_header(path, numbered[0][0], header)
    split_col = next((i for i, h in enumerate(header) if h.lower() == SPLIT_COLUMN), None)
    attr_cols = [i for i in range(1, len(header)) if i != split_col]
    rows = [(n, split_cells(line)) for n, line in numbered[1:]]
    if not rows:
        raise StarGANError(f"{path}: no rows after the header")
    _check_rows(path, header, rows)
    pick = itemgetter(*attr_cols) if len(attr_cols) > 1 else lambda cells: (cells[attr_cols[0]],)
    values = np.asarray([_values(path, n, pick(cells), header, attr_cols) for n, cells in rows])
    split = None
    if split_col is not None:
        split = tuple(_split_value(path, n, cells[split_col]) for n, cells in rows)
    values = values.astype(np.int8).reshape(len(rows), len(attr_cols))
    values.setflags(write=False)  # shared by every caller of the memoised table
    return Table(
        path,
        tuple(header[i] for i in attr_cols),
        tuple(cells[0] for _, cells in rows),
        tuple(n for n, _ in rows),
        values,
        split,
    )


def parse_exclusive(
    groups: tuple[str, ...], chosen: tuple[str, ...], columns: tuple[str, ...]
) -> tuple[tuple[str, ...], ...]:
    """``("A|B|C", ...)`` -> ``(("A", "B", "C"), ...)``, each name an attribute in use."""
    out: list[tuple[str, ...]] = []
    seen: set[str] = set()
    for text in groups:
        group = tuple(n.strip() for n in text.split("|"))
        if len(group) < 2 or not all(group) or len(set(group)) < len(group):
            raise StarGANError(f"data.exclusive group {text!r}: expected 2+ distinct names A|B")
        for name in group:
            LabelSpec(columns).index(name)  # not a column: error with close matches
            if name not in chosen:
                raise StarGANError(f"data.exclusive group {text!r}: {name} is not in data.attrs")
            if name in seen:
                raise StarGANError(f"data.exclusive: {name} is in more than one group")
            seen.add(name)
        out.append(group)
    return tuple(out)


def label_spec(
    table: Table, attrs: tuple[str, ...] = (), exclusive: tuple[str, ...] = ()
) -> LabelSpec:
    """Multi-label spec over ``attrs`` (default: every attribute column)."""
    every = LabelSpec(table.names)
    for a in attrs:
        every.index(a)  # unknown column: error with close matches
    chosen = tuple(attrs) or table.names
    return LabelSpec(chosen, "multi", parse_exclusive(exclusive, chosen, table.names))


def split_rows(table: Table, split: str, num_test: int, seed: int) -> np.ndarray:
    """Row indices of ``split``: by the split column, else a seeded hold-out."""
    if split not in ("train", "test"):
        raise StarGANError(f"split must be train or test, not {split!r}")
    n = len(table.files)
    if table.split is not None:
        rows = np.asarray([i for i, s in enumerate(table.split) if s == split], np.int64)
    else:
        if not 0 <= num_test < n:
            raise StarGANError(
                f"data.num_test={num_test} must be less than the {n} rows of {table.path}"
            )
        test = np.sort(np.random.default_rng(seed).permutation(n)[:num_test])
        rows = test if split == "test" else np.setdiff1d(np.arange(n), test)
    if len(rows) == 0:
        how = f"its {SPLIT_COLUMN} column" if table.split is not None else "data.num_test is 0"
        raise StarGANError(f"the {split} split of {table.path} is empty ({how})")
    return rows


def group_overlaps(labels: np.ndarray, spec: LabelSpec) -> dict[str, int]:
    """Rows with more than one member of an exclusive group active, per group ``A|B``."""
    out = {}
    for group in spec.exclusive_groups:
        cols = [spec.index(n) for n in group]
        out["|".join(group)] = int((labels[:, cols].sum(1) > 1).sum())
    return out


def load_table(
    cfg: DataConfig,
    image_size: int,
    split: str,
    progress: bool = False,
    cache_dir: Path | None = None,
    workers: int | None = None,
) -> ImageLabelDataset:
    """The ``split`` rows of the table at ``cfg.path``: uint8 images, 0/1 labels."""
    table, spec, rows = plan_split(cfg, split)
    image_root = Path(cfg.image_dir) if cfg.image_dir else table.path.parent
    decoded = decode_split(
        cfg,
        [image_root / table.files[i] for i in rows],
        image_size,
        split,
        "table",
        progress=progress,
        cache_dir=cache_dir,
        workers=workers,
        origins=[table.where(i) for i in rows],
    )
    cols = [table.names.index(n) for n in spec.names]
    labels = table.values[rows[decoded.kept]][:, cols].astype(np.float32)
    if progress:
        _report_overlaps(cfg.label, split, group_overlaps(labels, spec))
    return ImageLabelDataset(decoded.images, labels, spec, cfg.label, len(decoded.skipped))


def table_spec(cfg: DataConfig) -> LabelSpec:
    """The label spec of ``cfg``'s table (reads the table, no image). Without a path yet
    (a preset), ``data.attrs`` alone gives it; the load checks the table."""
    if not cfg.path and cfg.attrs:
        groups = parse_exclusive(cfg.exclusive, cfg.attrs, cfg.attrs)
        return LabelSpec(tuple(cfg.attrs), "multi", groups)
    return label_spec(read_table(_table_path(cfg)), cfg.attrs, cfg.exclusive)


def table_summary(cfg: DataConfig, split: str) -> dict[str, int]:
    """Rows per attribute of a split, from the table alone (no image decoded)."""
    table, spec, rows = plan_split(cfg, split)
    cols = [table.names.index(n) for n in spec.names]
    counts = table.values[rows][:, cols].sum(0)
    return {"images": len(rows), **{n: int(c) for n, c in zip(spec.names, counts, strict=True)}}


def plan_split(cfg: DataConfig, split: str) -> tuple[Table, LabelSpec, np.ndarray]:
    """The table, label spec and row indices of ``split``; every check that needs no
    pixels raises here."""
    table = read_table(_table_path(cfg))
    spec = label_spec(table, cfg.attrs, cfg.exclusive)
    return table, spec, split_rows(table, split, cfg.num_test, cfg.seed)


# ---------------------------------------------------------------- helpers
def _table_path(cfg: DataConfig) -> Path:
    if not cfg.path:
        raise StarGANError(
            f"dataset {cfg.label} (table) needs a path (--data LABELS.csv), or data.attrs "
            f"naming its columns"
        )
    return Path(cfg.path)


def _splitter(header: str) -> Callable[[str], list[str]]:
    """A function splitting a line into stripped cells, by the header's delimiter."""
    delimiter = "\t" if "\t" in header else "," if "," in header else None
    if delimiter is None:
        return lambda line: line.split()

    def split(line: str) -> list[str]:  # the csv module only where quotes need it (speed)
        cells = (
            next(csv.reader([line], delimiter=delimiter)) if '"' in line else line.split(delimiter)
        )
        return [c.strip() for c in cells] if " " in line else cells

    return split


def _check_header(path: Path, lineno: int, header: list[str]) -> None:
    where = f"{path}:{lineno}"
    if len(header) < 2:
        raise StarGANError(f"{where}: header needs a file column and attribute columns")
    if all(h in VALUES for h in header[1:]):
        raise StarGANError(f"{where}: the first line must be a header like file,attr1,attr2")
    if not all(header) or len(set(header)) < len(header):
        raise StarGANError(f"{where}: column names must be non-empty and distinct")
    if [h.lower() for h in header].count(SPLIT_COLUMN) > 1 or header[0].lower() == SPLIT_COLUMN:
        raise StarGANError(f"{where}: at most one {SPLIT_COLUMN} column, not the first")
    if len(header) == 2 and header[1].lower() == SPLIT_COLUMN:
        raise StarGANError(f"{where}: no attribute columns")


def _check_rows(path: Path, header: list[str], rows: list[tuple[int, list[str]]]) -> None:
    first_line: dict[str, int] = {}
    for lineno, cells in rows:
        if len(cells) != len(header):
            raise StarGANError(
                f"{path}:{lineno}: {len(cells)} columns, expected {len(header)} "
                f"({', '.join(header)})"
            )
        if not cells[0]:
            raise StarGANError(f"{path}:{lineno}: empty file name")
        if cells[0] in first_line:
            raise StarGANError(
                f"{path}:{lineno}: duplicate row for {cells[0]} (first at line "
                f"{first_line[cells[0]]})"
            )
        first_line[cells[0]] = lineno


def _values(
    path: Path, lineno: int, cells: tuple[str, ...], header: list[str], cols: list[int]
) -> list[int | None]:
    """The 0/1 values of a row's attribute ``cells`` (taken from columns ``cols``)."""
    values = list(map(VALUES.get, cells))
    if None in values:
        k = values.index(None)
        raise StarGANError(
            f"{path}:{lineno}: value {cells[k]!r} in column {header[cols[k]]} must be 0, 1 or -1"
        )
    return values


def _split_value(path: Path, lineno: int, value: str) -> str:
    if value.lower() not in SPLITS:
        raise StarGANError(f"{path}:{lineno}: split {value!r} must be train, test or val")
    return SPLITS[value.lower()]


def _report_overlaps(label: str, split: str, overlaps: dict[str, int]) -> None:
    for group, n in overlaps.items():
        if n:
            print(
                f"{label}: {n} {split} rows have more than one of {group} active; "
                f"generated targets keep one of them",
                file=sys.stderr,
            )
