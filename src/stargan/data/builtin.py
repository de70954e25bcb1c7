"""The built-in procedural face datasets ``faces-attr`` and ``faces-expr``.

``faces-attr`` mirrors CelebA (multi-label hair colour / Male / Young; expression varies
unlabelled); ``faces-expr`` mirrors RaFD (8 expression classes; the rest unlabelled).
Renders are cached as uint8 .npy files (memory-mapped), keyed by everything that
determines their pixels, so later runs start at once.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from stargan.data import faces
from stargan.data.cache import cache_key, cached_images, default_cache_dir
from stargan.data.dataset import ImageLabelDataset
from stargan.data.labels import LabelSpec
from stargan.errors import StarGANError

RENDERER_VERSION = 2  # bump whenever faces.py renders different pixels for the same params
BUILTIN = ("faces-attr", "faces-expr")


def label_spec(name: str, attrs: tuple[str, ...] = ()) -> LabelSpec:
    if name == "faces-attr":
        names = attrs or faces.ATTR_NAMES
        for a in names:
            if a not in faces.ATTR_NAMES:
                LabelSpec(faces.ATTR_NAMES).index(a)  # raises with close matches
        group = tuple(a for a in faces.HAIR_GROUP if a in names)
        return LabelSpec(tuple(names), "multi", (group,) if len(group) > 1 else ())
    if name == "faces-expr":
        if attrs and tuple(attrs) != faces.EXPRESSIONS:
            raise StarGANError("faces-expr always uses all 8 expressions; leave data.attrs empty")
        return LabelSpec(faces.EXPRESSIONS, "categorical")
    raise StarGANError(f"unknown built-in dataset {name!r}; valid: {', '.join(BUILTIN)}")


def labels_of(name: str, spec: LabelSpec, params: list[faces.FaceParams]) -> np.ndarray:
    if name == "faces-expr":
        out = np.zeros((len(params), spec.dim), np.float32)
        out[np.arange(len(params)), [faces.expression_index(p) for p in params]] = 1.0
        return out
    cols = [faces.ATTR_NAMES.index(a) for a in spec.names]
    return np.stack([faces.attr_vector(p)[cols] for p in params]).astype(np.float32)


def load_builtin(
    name: str,
    split: str,
    size: int,
    n: int,
    seed: int = 0,
    attrs: tuple[str, ...] = (),
    cache_dir: Path | None = None,
    progress: bool = False,
) -> ImageLabelDataset:
    """Render (or read from cache) images 0..n-1 of ``split`` at ``size`` px."""
    spec = label_spec(name, attrs)
    if n <= 0:
        raise StarGANError(f"number of {split} images must be > 0 (got {n})")
    params = [faces.params_for(seed, split, i) for i in range(n)]
    images = _cached_renders(seed, split, size, n, cache_dir or default_cache_dir(), progress)
    return ImageLabelDataset(images, labels_of(name, spec, params), spec, name)


def _cached_renders(
    seed: int, split: str, size: int, n: int, cache_dir: Path, progress: bool
) -> np.ndarray:
    key = cache_key("faces", RENDERER_VERSION, seed, split, size, n)
    path = cache_dir / "faces" / f"{split}-{size}px-{n}-{key}.npy"
    return cached_images(path, lambda: _render_all(seed, split, size, n, progress))


def _render_all(seed: int, split: str, size: int, n: int, progress: bool) -> np.ndarray:
    from tqdm import tqdm

    chunk = 256
    out = np.empty((n, size, size, 3), np.uint8)
    starts = range(0, n, chunk)
    for start in tqdm(starts, desc=f"render {split} faces", disable=not progress, unit="chunk"):
        idx = range(start, min(start + chunk, n))
        out[start : start + len(idx)] = faces.render_batch(seed, split, idx, size)
    return out


def counterfactual_images(
    seed: int,
    split: str,
    indices: list[int],
    size: int,
    spec: LabelSpec,
    c_trg: np.ndarray,
) -> np.ndarray:
    """Ground-truth renders of images ``indices`` with labels set to ``c_trg`` [N, c]."""
    out = np.empty((len(indices), size, size, 3), np.uint8)
    for row, (i, c) in enumerate(zip(indices, c_trg, strict=True)):
        p = faces.params_for(seed, split, i)
        if spec.kind == "categorical":
            p = faces.counterfactual(p, expression=int(np.argmax(c)))
        else:
            full = faces.attr_vector(p)
            for name, value in zip(spec.names, c, strict=True):
                full[faces.ATTR_NAMES.index(name)] = value
            p = faces.counterfactual(p, attrs=full)
        out[row] = faces.render(p, size)
    return out
