"""CelebA in its official layout: ``list_attr_celeba.txt`` + ``img_align_celeba/``.

As the paper: attributes chosen by name, centre crop 178 then resize; the test split is
``paper`` (a seeded hold-out of 2,000 images), ``official`` (``list_eval_partition.txt``:
0 train, 1 validation, 2 test; train uses 0 and 1) or ``official-code`` (the official
StarGAN code's own split, for models imported from it).
Images are decoded in parallel into a memory-mapped cache (data/decode.py).
"""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np

from stargan.data.dataset import ImageLabelDataset
from stargan.data.decode import decode_images
from stargan.data.labels import LabelSpec
from stargan.errors import StarGANError

PAPER_ATTRS = ("Black_Hair", "Blond_Hair", "Brown_Hair", "Male", "Young")
HAIR_COLOURS = ("Black_Hair", "Blond_Hair", "Brown_Hair", "Gray_Hair")
PAPER_TEST_SIZE = 2000
CROP = 178
ATTR_FILE = "list_attr_celeba.txt"
IMAGE_DIR = "img_align_celeba"
OFFICIAL_CODE_IMAGE_DIR = "images"  # yunjey/stargan's download.sh unzips the images here


def read_attr_file(path: Path) -> tuple[list[str], list[str], np.ndarray]:
    """Parse the official attribute file -> (attribute names, file names, +1/-1 matrix)."""
    try:
        lines = path.read_text().splitlines()
    except OSError as err:
        raise StarGANError(f"cannot read CelebA attribute file {path}: {err.strerror}") from err
    if len(lines) < 2:
        raise StarGANError(f"{path}: expected a count line and a names line")
    names = lines[1].split()
    files, rows = [], []
    for lineno, line in enumerate(lines[2:], start=3):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != len(names) + 1:
            raise StarGANError(f"{path}:{lineno}: {len(parts) - 1} values, expected {len(names)}")
        files.append(parts[0])
        try:
            rows.append([int(v) for v in parts[1:]])
        except ValueError as err:
            raise StarGANError(f"{path}:{lineno}: values must be 1 or -1") from err
    return names, files, np.asarray(rows, dtype=np.int8).reshape(len(files), len(names))


def label_spec(attrs: tuple[str, ...], available: list[str] | None = None) -> LabelSpec:
    attrs = attrs or PAPER_ATTRS
    if available is not None:
        LabelSpec(tuple(available))  # validate names below with close-match hints
        for a in attrs:
            LabelSpec(tuple(available)).index(a)
    group = tuple(a for a in HAIR_COLOURS if a in attrs)
    return LabelSpec(tuple(attrs), "multi", (group,) if len(group) > 1 else ())


TEST_SPLITS = ("paper", "official", "official-code")
OFFICIAL_CODE_SEED = 1234  # yunjey/stargan's data_loader.py: random.seed(1234); shuffle(lines)


def split_indices(files: list[str], root: Path, mode: str, split: str, seed: int) -> np.ndarray:
    """Row indices of ``split`` ("train" or "test") under ``mode``: ``paper`` (2,000 test
    images drawn with ``seed``), ``official`` (CelebA's list_eval_partition.txt: test
    partition vs train + validation) or ``official-code`` (exactly the official StarGAN
    code's split: the attribute rows shuffled by Python's ``random`` seeded 1234, the
    first 1,999 are the test set)."""
    n = len(files)
    if mode == "official-code":
        order = list(range(n))
        random.Random(OFFICIAL_CODE_SEED).shuffle(order)  # the permutation of shuffle(lines)
        test = np.sort(np.asarray(order[: PAPER_TEST_SIZE - 1], np.int64))
        return test if split == "test" else np.setdiff1d(np.arange(n), test)
    if mode == "paper":
        perm = np.random.default_rng(seed).permutation(n)
        test = np.sort(perm[: min(PAPER_TEST_SIZE, n // 2)])
        return test if split == "test" else np.setdiff1d(np.arange(n), test)
    if mode == "official":
        part_path = root / "list_eval_partition.txt"
        try:
            table = dict(line.split()[:2] for line in part_path.read_text().splitlines() if line)
        except (OSError, ValueError) as err:
            raise StarGANError(f"cannot read {part_path} (needed by test_split=official)") from err
        unlisted = [f for f in files if f not in table]
        if unlisted:
            raise StarGANError(
                f"{part_path}: {len(unlisted)} labelled images have no partition "
                f"row, e.g. {unlisted[0]}"
            )
        wanted = {"2"} if split == "test" else {"0", "1"}
        return np.asarray([i for i, f in enumerate(files) if table.get(f) in wanted], np.int64)
    raise StarGANError(f"data.test_split must be one of {', '.join(TEST_SPLITS)}, not {mode!r}")


def load_celeba(
    root: Path,
    attrs: tuple[str, ...],
    image_size: int,
    split: str,
    test_split: str = "paper",
    seed: int = 0,
    progress: bool = False,
    cache_dir: Path | None = None,
    *,
    crop: int = CROP,
    on_bad_image: str = "error",
    resize_filter: str = "bicubic",
    workers: int | None = None,
) -> ImageLabelDataset:
    """A split of CelebA at ``image_size`` px; labels 0/1 in the order of ``attrs``.

    Missing or unreadable images stop the load (``on_bad_image="error"``) or are left
    out and counted in ``skipped`` (``"skip"``). ``resize_filter``: ``bicubic``, or
    ``bilinear`` as the official loader (torchvision's Resize after its CenterCrop).
    """
    root = Path(root)
    image_dir = check_layout(root)
    names, files, values = read_attr_file(root / ATTR_FILE)
    spec = label_spec(attrs, names)
    idx = split_indices(files, root, test_split, split, seed)
    if len(idx) == 0:
        raise StarGANError(f"CelebA {split} split of {root} is empty")
    paths = [image_dir / files[i] for i in idx]
    decoded = decode_images(
        paths,
        image_size,
        crop,
        on_bad_image=on_bad_image,
        resize_filter=resize_filter,
        cache_dir=cache_dir,
        tag="celeba",
        stem=split,
        progress=progress,
        workers=workers,
    )
    cols = [names.index(a) for a in spec.names]
    labels = (values[idx[decoded.kept]][:, cols] > 0).astype(np.float32)
    return ImageLabelDataset(decoded.images, labels, spec, "celeba", len(decoded.skipped))


def check_layout(root: Path) -> Path:
    """The image folder of CelebA folder ``root`` (``img_align_celeba/``, or ``images/`` as
    the official StarGAN code's download script makes it); a clear error when ``root`` is
    not a CelebA folder in either layout."""
    expected = (
        f"expected {ATTR_FILE} and {IMAGE_DIR}/ (the official CelebA layout; "
        f"{OFFICIAL_CODE_IMAGE_DIR}/ as yunjey/stargan's download.sh makes it also works)"
    )
    if not root.is_dir():
        raise StarGANError(f"CelebA folder {root} does not exist; {expected}")
    image_dir = root / IMAGE_DIR
    if not image_dir.exists() and (root / OFFICIAL_CODE_IMAGE_DIR).is_dir():
        image_dir = root / OFFICIAL_CODE_IMAGE_DIR
    lacking = [p.name for p in (root / ATTR_FILE, image_dir) if not p.exists()]
    if lacking:
        raise StarGANError(f"{root} is not a CelebA folder: no {' or '.join(lacking)}; {expected}")
    nested = image_dir / image_dir.name
    if nested.is_dir():
        raise StarGANError(
            f"{image_dir} holds another {image_dir.name}/ (unzipped twice?): move its images "
            f"up one level"
        )
    return image_dir
