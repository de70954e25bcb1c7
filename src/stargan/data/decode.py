"""Decode image files to one uint8 array [N, S, S, 3]: in parallel, streamed to the cache.

Each file is opened with :func:`stargan.images.load_rgb` (any mode -> RGB, decompression
bomb guard; truncated files are errors, PIL's ``LOAD_TRUNCATED_IMAGES`` stays False),
centre-cropped and resized (``resize_filter``: bicubic or bilinear). Threads decode
(Pillow releases the GIL while decoding and resizing); the main thread writes each image,
in order, straight into a memory-mapped cache file, so the whole set never sits in RAM.
A later call with the same files and settings memory-maps that file instead of decoding.

Cache layout, under ``<cache_dir>/<tag>/``::

    <stem>-<S>px-<key>.npy   uint8 [N, S, S, 3]; rows [0, rows) hold the kept images in
                             order, any rows after them are unused (one per skipped file)
    <stem>-<S>px-<key>.json  {"format_version", "count": N, "rows", "skipped": [indices]}

``key`` hashes the format version, S, the crop, ``on_bad_image``, the resize filter (where
not bicubic) and every source file's absolute path, size and modification time. The .json
is written before the .npy is renamed into place, so an .npy without its .json is never a
valid entry.
"""

from __future__ import annotations

import os
import sys
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
from tqdm import tqdm

from stargan.config import DataConfig, check_resize_filter
from stargan.data.cache import (
    building,
    cache_key,
    default_cache_dir,
    open_cached,
    read_json,
    resize_filter_parts,
    write_json,
)
from stargan.errors import StarGANError
from stargan.images import center_crop_resize, load_rgb

FORMAT_VERSION = 1  # bump whenever the same files and settings give different pixels
BAD_IMAGE_POLICIES = ("error", "skip")
SKIP_HINT = "rerun with --on-bad-image skip (data.on_bad_image=skip) to leave such files out"


@dataclass(frozen=True)
class Decoded:
    """The decoded images of a path list, and which paths they are."""

    images: np.ndarray  # uint8 [K, S, S, 3], memory-mapped from the cache
    kept: np.ndarray  # int64 [K]: position in the path list of each image
    skipped: tuple[int, ...]  # positions of the files left out (on_bad_image="skip")


def decode_one(path: Path, size: int, crop: int, resize_filter: str = "bicubic") -> np.ndarray:
    """One file -> uint8 [size, size, 3]: centre crop (0: largest square), then resize."""
    image = center_crop_resize(load_rgb(path), size, crop, resize_filter)
    return np.asarray(image, dtype=np.uint8)


def decode_split(
    cfg: DataConfig,
    paths: Sequence[Path],
    image_size: int,
    split: str,
    tag: str,
    *,
    progress: bool = False,
    cache_dir: Path | None = None,
    workers: int | None = None,
    origins: Sequence[str] | None = None,
) -> Decoded:
    """:func:`decode_images` with a data config's crop, resize filter and bad-image
    policy, cached under ``tag`` per split."""
    return decode_images(
        paths,
        image_size,
        cfg.crop,
        on_bad_image=cfg.on_bad_image,
        resize_filter=cfg.resize_filter,
        cache_dir=cache_dir,
        tag=tag,
        stem=split,
        progress=progress,
        workers=workers,
        origins=origins,
    )


def decode_images(
    paths: Sequence[Path],
    size: int,
    crop: int = 0,
    *,
    on_bad_image: str = "error",
    resize_filter: str = "bicubic",
    cache_dir: Path | None = None,
    tag: str = "images",
    stem: str = "images",
    progress: bool = False,
    workers: int | None = None,
    origins: Sequence[str] | None = None,
) -> Decoded:
    """Decode ``paths`` (or memory-map their cached decode) to uint8 [K, size, size, 3].

    ``on_bad_image="error"`` stops at the first missing or unreadable file, naming it
    (and ``origins[i]``, e.g. ``labels.csv:7``, where given); ``"skip"`` leaves such
    files out and says which in ``Decoded.skipped``. ``workers``: decoding threads
    (default ``os.cpu_count()``). ``tag`` and ``stem`` name the cache file (see above).
    ``resize_filter``: ``bicubic`` or ``bilinear`` (config.RESIZE_FILTERS).
    """
    _check_args(paths, size, crop, on_bad_image)
    check_resize_filter(resize_filter)
    stats = [_stat(p) for p in paths]
    if on_bad_image == "error":
        _require_files(paths, stats, origins)
    filter_parts = resize_filter_parts(resize_filter)
    key = cache_key(
        FORMAT_VERSION, size, crop, on_bad_image, *filter_parts, *_source_parts(paths, stats)
    )
    path = (cache_dir or default_cache_dir()) / tag / f"{stem}-{size}px-{key}.npy"
    decoded = _open_entry(path, len(paths), size)
    if decoded is None:
        desc = f"{tag} {stem}"
        job = _Job(paths, size, crop, resize_filter, on_bad_image, progress, workers, origins, desc)
        _build_entry(path, job)
        decoded = _open_entry(path, len(paths), size)
        if decoded is None:
            raise StarGANError(f"the image cache {path} could not be read back after writing")
    if decoded.skipped and progress:
        print(
            f"{tag} {stem}: skipped {len(decoded.skipped)} of {len(paths)} unreadable "
            f"images (on_bad_image=skip), e.g. {paths[decoded.skipped[0]]}",
            file=sys.stderr,
        )
    return decoded


@dataclass(frozen=True)
class _Job:
    """What to decode and how (the arguments of decode_images that decide the work)."""

    paths: Sequence[Path]
    size: int
    crop: int
    resize_filter: str
    on_bad_image: str
    progress: bool
    workers: int | None
    origins: Sequence[str] | None
    desc: str


# ---------------------------------------------------------------- checks and keys
def _check_args(paths: Sequence[Path], size: int, crop: int, on_bad_image: str) -> None:
    if on_bad_image not in BAD_IMAGE_POLICIES:
        raise StarGANError(f"data.on_bad_image must be error or skip, not {on_bad_image!r}")
    if size < 1 or crop < 0:
        raise StarGANError(f"image size must be >= 1 and crop >= 0 (got {size}, {crop})")
    if not paths:
        raise StarGANError("no image files to decode")


def _stat(path: Path) -> tuple[int, int] | None:
    """(size in bytes, mtime in ns), or None when the file cannot be found."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_size, st.st_mtime_ns


def _source_parts(paths: Sequence[Path], stats: list[tuple[int, int] | None]) -> Iterator[str]:
    for p, st in zip(paths, stats, strict=True):
        yield f"{os.path.abspath(p)}:{'missing' if st is None else f'{st[0]}:{st[1]}'}"


def _require_files(
    paths: Sequence[Path], stats: list[tuple[int, int] | None], origins: Sequence[str] | None
) -> None:
    missing = [i for i, st in enumerate(stats) if st is None]
    if missing:
        i = missing[0]
        raise StarGANError(
            f"{len(missing)} labelled images missing, e.g. {_where(origins, i)}{paths[i]}; "
            f"{SKIP_HINT}"
        )


def _where(origins: Sequence[str] | None, i: int) -> str:
    return f"{origins[i]}: " if origins else ""


# ---------------------------------------------------------------- cache entries
def _open_entry(path: Path, count: int, size: int) -> Decoded | None:
    """The cached decode at ``path`` if it is complete and consistent, else None."""
    meta = read_json(path.with_suffix(".json"))
    if meta is None or meta.get("format_version") != FORMAT_VERSION:
        return None
    images = open_cached(path)
    skipped = tuple(int(i) for i in meta.get("skipped", []))
    rows = count - len(skipped)
    if images is None or images.shape != (count, size, size, 3) or meta.get("rows") != rows:
        return None
    kept = np.setdiff1d(np.arange(count, dtype=np.int64), np.asarray(skipped, np.int64))
    return Decoded(images[:rows], kept, skipped)


def _build_entry(path: Path, job: _Job) -> None:
    """Decode every file into a new cache entry (sidecar first, then the array)."""
    n = len(job.paths)
    try:
        with building(path, (n, job.size, job.size, 3)) as out:
            skipped = _decode_into(out, job)
            meta = {"format_version": FORMAT_VERSION, "count": n, "rows": n - len(skipped)}
            write_json(path.with_suffix(".json"), {**meta, "skipped": skipped})
    except OSError as err:
        raise StarGANError(
            f"cannot write the image cache in {path.parent} ({err.strerror or err}); "
            f"set STARGAN_CACHE to a writable folder"
        ) from err


# ---------------------------------------------------------------- decoding
def _decode_into(out: np.ndarray, job: _Job) -> list[int]:
    """Decode ``job.paths`` into the first rows of ``out``, in order; the skipped indices."""
    workers = job.workers or os.cpu_count() or 1
    decode = partial(_try_decode, size=job.size, crop=job.crop, resize_filter=job.resize_filter)
    skipped: list[int] = []
    row = 0
    with (
        ThreadPoolExecutor(workers, thread_name_prefix="decode") as pool,
        tqdm(
            total=len(job.paths), desc=f"decode {job.desc}", unit="img", disable=not job.progress
        ) as bar,
    ):
        for i, result in enumerate(_in_order(pool, decode, job.paths, window=8 * workers)):
            bar.update()
            if isinstance(result, StarGANError):
                if job.on_bad_image == "error":
                    raise StarGANError(f"{_where(job.origins, i)}{result}; {SKIP_HINT}") from result
                skipped.append(i)
                continue
            out[row] = result
            row += 1
    if row == 0:
        raise StarGANError(
            f"none of the {len(job.paths)} images could be read, e.g. {job.paths[0]}"
        )
    return skipped


def _try_decode(path: Path, size: int, crop: int, resize_filter: str) -> np.ndarray | StarGANError:
    try:
        return decode_one(path, size, crop, resize_filter)
    except StarGANError as err:
        return err


def _in_order(
    pool: ThreadPoolExecutor, fn: Callable[[Path], object], items: Iterable[Path], window: int
) -> Iterator[object]:
    """``fn`` over ``items`` on the pool, results in input order, at most ``window`` in
    flight (bounded memory, no barrier between chunks)."""
    pending: deque[Future] = deque()
    try:
        for item in items:
            if len(pending) >= window:
                yield pending.popleft().result()
            pending.append(pool.submit(fn, item))
        while pending:
            yield pending.popleft().result()
    finally:
        for future in pending:  # stopped early (an error): drop what has not started
            future.cancel()
