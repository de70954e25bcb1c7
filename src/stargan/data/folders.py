"""One folder per domain: the RaFD, AFHQ, CelebA-HQ, CK+48 and FER2013 layouts.

Two layouts are recognised under ``data.path``::

    root/<domain>/*.png|jpg|...                        one set; test = a seeded hold-out
    root/train/<domain>/...  root/test/<domain>/...    given splits (``val`` = ``test``;
                                                       with both, ``test`` is used)

Domain folders are searched recursively for images (hidden files and folders skipped;
loose files next to the domain folders ignored). Labels are one-hot (categorical) over
the domain folder names, sorted; ``data.attrs`` picks and orders a subset.

Without train/test folders the test split holds out ``data.num_test`` images in all,
stratified: each domain gives its proportional share (largest remainder), at least one
per domain when ``num_test`` is at least the number of domains, and every domain keeps at
least one training image, so ``num_test`` may be at most images - domains. Which images
are held out depends only on ``data.seed`` and the domain's own files. With train/test
folders ``num_test`` is not used. ``data.num_train`` is not used: all training images are.
``data.crop`` is the centre crop in source pixels before resizing (0: largest square).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from stargan.config import DataConfig
from stargan.data.dataset import ImageLabelDataset
from stargan.data.decode import decode_split
from stargan.data.labels import LabelSpec
from stargan.errors import StarGANError
from stargan.images import IMAGE_SUFFIXES

TEST_DIRS = ("test", "val")  # the first present names the test split
Domains = dict[str, tuple[Path, ...]]  # domain name -> its image files, sorted


@dataclass(frozen=True)
class Layout:
    """The image files of a domain-folder dataset, per domain."""

    root: Path
    train_dir: Path  # root, or root/train
    train: Domains  # every image of the flat layout
    test_dir: Path | None  # root/test or root/val, when given
    test: Domains | None  # None: the test split is held out of ``train``

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(sorted(self.train))


def scan_layout(root: Path) -> Layout:
    """List the domains and image files under ``root``; StarGANError if it has none."""
    root = Path(root)
    if not root.is_dir():
        raise StarGANError(f"domain folder root {root} does not exist or is not a folder")
    subdirs = _subdirs(root)
    if "train" not in subdirs:
        if any(d in subdirs for d in TEST_DIRS):
            raise StarGANError(f"{root} has {'/'.join(TEST_DIRS)}/ but no train/ folder")
        return Layout(root, root, _domains(root), None, None)
    others = sorted(set(subdirs) - {"train", *TEST_DIRS})
    if others:
        raise StarGANError(
            f"{root} has train/ next to other folders ({', '.join(others)}): expected either "
            f"{root}/<domain>/ or {root}/train/<domain>/ and {root}/test/<domain>/"
        )
    train = _domains(root / "train")
    test_dir = next((root / d for d in TEST_DIRS if d in subdirs), None)
    test = _domains(test_dir) if test_dir else None
    unknown = sorted(set(test or {}) - set(train))
    if unknown:
        raise StarGANError(f"{test_dir} has domains missing from train/: {', '.join(unknown)}")
    return Layout(root, root / "train", train, test_dir, test)


def label_spec(names: tuple[str, ...], attrs: tuple[str, ...] = ()) -> LabelSpec:
    """One-hot labels over ``attrs`` (default: every domain), checked against ``names``."""
    every = LabelSpec(names, "categorical")
    for a in attrs:
        every.index(a)  # unknown name: error with close matches
    chosen = tuple(attrs) or names
    if len(chosen) < 2:
        raise StarGANError(f"StarGAN needs at least 2 domains, got {len(chosen)}: {chosen}")
    return LabelSpec(chosen, "categorical")


def holdout_counts(counts: list[int], num_test: int) -> list[int]:
    """Test images per domain: proportional shares of ``num_test`` (largest remainder),
    at least one each where ``num_test`` allows, never a domain's last image."""
    total, caps = sum(counts), np.asarray(counts) - 1
    if not 0 <= num_test <= int(caps.sum()):
        raise StarGANError(
            f"data.num_test={num_test} cannot be held out of {total} images in {len(counts)} "
            f"domains: at most {int(caps.sum())} (each domain keeps one training image)"
        )
    share = num_test * np.asarray(counts, np.float64) / total
    quota = np.zeros(len(counts), np.int64)
    if num_test >= len(counts):
        quota[caps > 0] = 1
    floor = np.maximum(quota, np.floor(share).astype(np.int64))  # <= caps, as share < count
    if floor.sum() <= num_test:
        quota = floor  # only the remainders are left to place one by one
    for _ in range(num_test - int(quota.sum())):
        deficit = np.where(quota < caps, share - quota, -np.inf)
        quota[int(np.argmax(deficit))] += 1
    return quota.tolist()


def split_files(
    layout: Layout, spec: LabelSpec, split: str, num_test: int, seed: int
) -> list[tuple[Path, int]]:
    """(file, domain index in ``spec``) of every image of ``split``, domain by domain."""
    if split not in ("train", "test"):
        raise StarGANError(f"split must be train or test, not {split!r}")
    if layout.test is not None:
        chosen = layout.train if split == "train" else layout.test
        return [(f, k) for k, n in enumerate(spec.names) for f in chosen.get(n, ())]
    counts = [len(layout.train[n]) for n in spec.names]
    quota = holdout_counts(counts, num_test)
    out = []
    for k, name in enumerate(spec.names):
        files = layout.train[name]
        rng = np.random.default_rng([seed, zlib.crc32(name.encode())])
        test = np.zeros(len(files), bool)
        test[rng.permutation(len(files))[: quota[k]]] = True
        out += [(f, k) for f, t in zip(files, test, strict=True) if t == (split == "test")]
    return out


def load_folders(
    cfg: DataConfig,
    image_size: int,
    split: str,
    progress: bool = False,
    cache_dir: Path | None = None,
    workers: int | None = None,
) -> ImageLabelDataset:
    """The ``split`` of the domain folders at ``cfg.path``: uint8 images, one-hot labels."""
    layout, spec, items = plan_split(cfg, split)
    decoded = decode_split(
        cfg,
        [f for f, _ in items],
        image_size,
        split,
        "folders",
        progress=progress,
        cache_dir=cache_dir,
        workers=workers,
    )
    classes = np.asarray([k for _, k in items], np.int64)[decoded.kept]
    labels = np.eye(spec.dim, dtype=np.float32)[classes]
    return ImageLabelDataset(decoded.images, labels, spec, cfg.label, len(decoded.skipped))


def folder_spec(cfg: DataConfig) -> LabelSpec:
    """The label spec of ``cfg``'s folders (lists the folders, reads no image). Without
    a path yet (a preset), ``data.attrs`` alone gives it; the load checks the folders."""
    if not cfg.path and cfg.attrs:
        return label_spec(tuple(cfg.attrs), cfg.attrs)
    return label_spec(scan_layout(_root(cfg)).names, cfg.attrs)


def folder_summary(cfg: DataConfig, split: str) -> dict[str, int]:
    """Images per domain of a split, counted from the file lists (no image decoded)."""
    _, spec, items = plan_split(cfg, split)
    counts = np.bincount([k for _, k in items], minlength=spec.dim)
    return {"images": len(items), **{n: int(c) for n, c in zip(spec.names, counts, strict=True)}}


def plan_split(cfg: DataConfig, split: str) -> tuple[Layout, LabelSpec, list[tuple[Path, int]]]:
    """The layout, label spec and (file, class) items of ``split``; every check that
    needs no pixels raises here."""
    layout = scan_layout(_root(cfg))
    spec = label_spec(layout.names, cfg.attrs)
    _require_images(layout, spec)
    items = split_files(layout, spec, split, cfg.num_test, cfg.seed)
    if not items:
        why = "data.num_test is 0" if layout.test is None else "its folder has no images"
        raise StarGANError(f"the {split} split of {layout.root} is empty ({why})")
    return layout, spec, items


# ---------------------------------------------------------------- helpers
def _require_images(layout: Layout, spec: LabelSpec) -> None:
    folders = [(layout.train_dir, layout.train)]
    if layout.test_dir is not None and layout.test is not None:
        folders.append((layout.test_dir, layout.test))
    for where, domains in folders:
        empty = [n for n in spec.names if n in domains and not domains[n]]
        if empty:
            raise StarGANError(
                f"domain folder {where / empty[0]} has no images "
                f"(looked for {', '.join(sorted(IMAGE_SUFFIXES))})"
            )


def _root(cfg: DataConfig) -> Path:
    if not cfg.path:
        raise StarGANError(
            f"dataset {cfg.label} (folders) needs a path (--data ROOT), or data.attrs "
            f"naming its domain folders"
        )
    return Path(cfg.path)


def _subdirs(folder: Path) -> list[str]:
    return sorted(d.name for d in folder.iterdir() if d.is_dir() and not d.name.startswith("."))


def _domains(folder: Path) -> Domains:
    """Each non-hidden subfolder of ``folder`` with its image files (recursive, sorted;
    possibly none: only the domains a run uses must have images)."""
    names = _subdirs(folder)
    if not names:
        raise StarGANError(
            f"{folder} has no domain folders: expected {folder}/<domain>/<images>, "
            f"one folder per domain"
        )
    return {n: _images_in(folder / n) for n in names}


def _images_in(folder: Path) -> tuple[Path, ...]:
    files = (
        p
        for p in folder.rglob("*")
        if p.suffix.lower() in IMAGE_SUFFIXES
        and not any(part.startswith(".") for part in p.relative_to(folder).parts)
        and p.is_file()
    )
    return tuple(sorted(files))
