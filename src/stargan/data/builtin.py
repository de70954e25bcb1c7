"""The built-in procedural face datasets ``faces-attr``, ``faces-expr`` and ``faces-sex``.

``faces-attr`` mirrors CelebA (multi-label hair colour / Male / Young; expression varies
unlabelled); ``faces-expr`` mirrors RaFD (8 expression classes; the rest unlabelled);
``faces-sex`` mirrors CelebA-HQ as StarGAN v2 uses it (two domains, female and male;
hair colour, age, expression and the rest are the unlabelled style). All three label the
same renders.
Renders are cached as uint8 .npy files (memory-mapped), keyed by everything that
determines their pixels, so later runs start at once.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from stargan.data import faces
from stargan.data.cache import cached_images, default_cache_dir
from stargan.data.dataset import ImageLabelDataset
from stargan.data.labels import LabelSpec
from stargan.errors import StarGANError

RENDERER_VERSION = 2  # bump whenever faces.py renders different pixels for the same params
BUILTIN = ("faces-attr", "faces-expr", "faces-sex")
SEXES = ("female", "male")


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
    if name == "faces-sex":
        if attrs and tuple(attrs) != SEXES:
            raise StarGANError("faces-sex always uses both domains; leave data.attrs empty")
        return LabelSpec(SEXES, "categorical")
    raise StarGANError(f"unknown built-in dataset {name!r}; valid: {', '.join(BUILTIN)}")


def labels_of(name: str, spec: LabelSpec, params: list[faces.FaceParams]) -> np.ndarray:
    if name == "faces-expr":
        out = np.zeros((len(params), spec.dim), np.float32)
        out[np.arange(len(params)), [faces.expression_index(p) for p in params]] = 1.0
        return out
    if name == "faces-sex":
        out = np.zeros((len(params), spec.dim), np.float32)
        out[np.arange(len(params)), [int(p.male) for p in params]] = 1.0
        return out
    cols = [faces.ATTR_NAMES.index(a) for a in spec.names]
    return np.stack([faces.attr_vector(p)[cols] for p in params]).astype(np.float32)


def split_labels(name: str, spec: LabelSpec, split: str, n: int, seed: int) -> np.ndarray:
    """Labels [n, c] of images 0..n-1 of a split, from their parameters."""
    return labels_of(name, spec, [faces.params_for(seed, split, i) for i in range(n)])


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
    if not 16 <= size <= 256:
        raise StarGANError(f"built-in faces render at 16 to 256 px, not {size}")
    if n <= 0:
        raise StarGANError(f"number of {split} images must be > 0 (got {n})")
    images = _cached_renders(seed, split, size, n, cache_dir or default_cache_dir(), progress)
    return ImageLabelDataset(images, split_labels(name, spec, split, n, seed), spec, name)


def label_summary(
    name: str, split: str, n: int, seed: int = 0, attrs: tuple[str, ...] = ()
) -> dict[str, int]:
    """Images per domain of a built-in split, from its parameters alone (nothing rendered)."""
    spec = label_spec(name, attrs)
    labels = split_labels(name, spec, split, n, seed)
    return {"images": n, **{k: int(v) for k, v in zip(spec.names, labels.sum(0), strict=True)}}


def _cached_renders(
    seed: int, split: str, size: int, n: int, cache_dir: Path, progress: bool
) -> np.ndarray:
    """Renders 0..n-1, from any cached render of the same split with at least n images
    (image i depends on (seed, split, i) only, so a prefix is exactly the smaller set)."""
    folder = cache_dir / "faces"
    prefix = f"v{RENDERER_VERSION}-seed{seed}-{split}-{size}px-n"
    for path in folder.glob(f"{prefix}*.npy"):
        count = path.stem[len(prefix) :]
        if count.isdigit() and int(count) >= n:
            try:
                return np.load(path, mmap_mode="r")[:n]
            except (OSError, ValueError):
                continue
    return cached_images(
        folder / f"{prefix}{n}.npy", lambda: _render_all(seed, split, size, n, progress)
    )


def _render_all(seed: int, split: str, size: int, n: int, progress: bool) -> np.ndarray:
    from tqdm import tqdm

    chunk = 256
    out = np.empty((n, size, size, 3), np.uint8)
    starts = range(0, n, chunk)
    for start in tqdm(starts, desc=f"render {split} faces", disable=not progress, unit="chunk"):
        idx = range(start, min(start + chunk, n))
        out[start : start + len(idx)] = faces.render_batch(seed, split, idx, size)
    return out


def counterfactual_params(
    params: faces.FaceParams, spec: LabelSpec, c_trg: np.ndarray
) -> faces.FaceParams | None:
    """The face with its labels set to ``c_trg`` (in ``spec``'s columns), or None where the
    target has no single ground truth (a hair colour switched off with none switched on)."""
    full = faces.attr_vector(params)
    if spec.names == SEXES:
        full[faces.ATTR_NAMES.index("Male")] = float(np.argmax(c_trg))
        return faces.counterfactual(params, attrs=full)
    if spec.kind == "categorical":
        return faces.counterfactual(params, expression=int(np.argmax(c_trg)))
    targets = dict(zip(spec.names, c_trg, strict=True))
    if any(targets.get(h, 0) > 0.5 for h in faces.HAIR_GROUP):
        for h in faces.HAIR_GROUP:  # a new hair colour replaces the old one
            full[faces.ATTR_NAMES.index(h)] = 0.0
    for name, value in targets.items():
        full[faces.ATTR_NAMES.index(name)] = value
    try:
        return faces.counterfactual(params, attrs=full)
    except ValueError:
        return None


def counterfactual_images(
    seed: int, split: str, indices: list[int], size: int, spec: LabelSpec, c_trg: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Ground-truth renders of images ``indices`` with labels set to ``c_trg`` [N, c], and a
    bool mask [N] of the rows that have one (see ``counterfactual_params``)."""
    out = np.zeros((len(indices), size, size, 3), np.uint8)
    valid = np.zeros(len(indices), bool)
    for row, (i, c) in enumerate(zip(indices, c_trg, strict=True)):
        p = counterfactual_params(faces.params_for(seed, split, i), spec, c)
        if p is not None:
            out[row], valid[row] = faces.render(p, size), True
    return out, valid
