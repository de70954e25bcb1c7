"""``stargan sample``: StarGAN v2 synthesis from files to PNGs and paper-style grids.

Written under OUT::

    latent_grid.png                   rows: sources; columns: the source, then per domain
                                      one output per seed (paper Fig. 4)
    latent/<domain>/<src>_seed<k>.png each output of that grid
    interpolation_<domain>.png        --interpolate: rows: sources; columns: the source,
                                      then G(x, s) along the line from the style of the
                                      first seed to that of the second
    reference_grid.png                --ref: top row the references, then per source the
                                      source and it in each reference's style (Fig. 5)
    reference/<src>_<ref>.png         each output of that grid

With ``--align`` every source and reference photo is searched for its largest face, which
is warped into CelebA-HQ's aligned layout (``align.CELEBA_HQ``: eyes level, where CelebA-HQ
has them) before the model's crop and resize; ``--paste-back`` then writes each output
as the whole source photo with the synthesised face blended back in (grids stay at the
model's size).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import click
import numpy as np
import torch
from PIL import Image

from stargan import synthesis
from stargan.align import CELEBA_HQ, AlignedFace, NoFaceError, align_photo, opencv, paste_back
from stargan.data import builtin, faces
from stargan.errors import StarGANError
from stargan.images import center_crop_resize, find_images, load_rgb, make_grid, save_png
from stargan.outputs import check_device, check_unique_stems, ensure_writable
from stargan.stylemodel import StyleModel

MAX_SEEDS = 1000
BUILTIN_SOURCES = 4  # test faces used as sources when none are given (built-in models)


@dataclass(frozen=True)
class SampleOptions:
    domains: tuple[str, ...] = ()  # target domains (empty: all); loose --ref: theirs
    seeds: tuple[int, ...] = tuple(range(8))
    psi: float = 1.0
    interpolate: bool = False
    steps: int = 8
    batch_size: int = 8
    align: bool = False  # photos' faces warped into CelebA-HQ's layout first
    paste_back: bool = False  # with align: outputs as whole photos, the face blended back


@dataclass
class Images:
    """Named uint8 images [N, S, S, 3] at the model's size, with their domains (refs)."""

    names: list[str]
    pixels: np.ndarray
    domains: list[int] | None = None
    photos: list[Image.Image] | None = None  # --paste-back: each source's photo
    transforms: list[np.ndarray] | None = None  # ... and its photo -> frame transform


def parse_seeds(text: str) -> list[int]:
    """``0-7``, ``1,5,9`` or both (``0-3,9``) -> seeds in order, repeats dropped."""
    seeds: list[int] = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        m = re.fullmatch(r"(\d+)(?:\s*-\s*(\d+))?", part)
        if not m:
            raise StarGANError(f"bad seeds {text!r}: expected e.g. 0-7, 1,5,9 or 0-3,9")
        lo, hi = int(m.group(1)), int(m.group(2) or m.group(1))
        if hi < lo or hi >= 2**63 or len(seeds) + hi - lo + 1 > MAX_SEEDS:
            raise StarGANError(
                f"bad seeds {text!r}: ranges go up (a-b with a <= b < 2**63), at most "
                f"{MAX_SEEDS} seeds"
            )
        seeds += [s for s in range(lo, hi + 1) if s not in seeds]
    if not seeds:
        raise StarGANError(f"no seeds in {text!r}: expected e.g. 0-7 or 1,5,9")
    return seeds


def load_model(
    path: Path, device: str = "cpu", fan_path: str | None = None, precision: str = "auto"
) -> StyleModel:
    """A v2 model folder, or a run / checkpoint folder (its running-average networks);
    ``precision``: G's arithmetic (:mod:`stargan.inference_precision`)."""
    if (path / "state.json").is_file() or (path / "checkpoints").is_dir():
        from stargan.export import style_model_from_checkpoint

        return style_model_from_checkpoint(path, check_device(device), fan_path, precision)
    return StyleModel.from_pretrained(path, check_device(device), fan_path, precision)


def sample_files(
    model: StyleModel,
    out: Path,
    inputs: list[Path],
    refs: list[Path],
    options: SampleOptions,
) -> tuple[int, list[Path]]:
    """Write the outputs listed in the module docstring; returns (images written, grids)."""
    if refs and options.interpolate:
        raise StarGANError("--interpolate is latent-guided (seeds); leave out --ref")
    if options.paste_back and not options.align:
        raise StarGANError("--paste-back needs --align")
    if options.align:
        opencv()  # a missing OpenCV is one error, not one per photo
    if options.interpolate and len(options.seeds) < 2:
        raise StarGANError("--interpolate needs two seeds, e.g. --seeds 0,1")
    chosen = [model.domain_index(d) for d in options.domains]  # unknown: did-you-mean
    sources = _sources(model, inputs, options)  # errors before anything is written
    references = _references(model, refs, chosen, options.align) if refs else None
    ensure_writable(out)
    if references is not None:
        return _reference(model, out, sources, references, options.batch_size)
    domains = chosen or list(range(len(model.domains)))
    written, grids = _latent(model, out, sources, domains, options)
    if options.interpolate:
        grids += _interpolation(model, out, sources, domains, options)
    return written, grids


# ---------------------------------------------------------------- inputs
def _sources(model: StyleModel, inputs: list[Path], options: SampleOptions) -> Images:
    if inputs:
        return _read(model, inputs, align=options.align, keep_photos=options.paste_back)
    if options.align:
        raise StarGANError("--align needs photos: give them with --inputs")
    dataset = model.meta.get("dataset")
    if dataset not in builtin.BUILTIN:
        raise StarGANError(
            "give source images with --inputs IMAGES/FOLDERS (this model was not trained "
            "on built-in faces, so there are no default sources)"
        )
    seed = int(model.meta.get("data_seed", 0))
    pixels = faces.render_batch(seed, "test", range(BUILTIN_SOURCES), model.image_size)
    return Images([f"test-{i:04d}" for i in range(BUILTIN_SOURCES)], pixels)


def _read(
    model: StyleModel,
    paths: list[Path],
    domain: int | None = None,
    align: bool = False,
    keep_photos: bool = False,
) -> Images:
    """Images of files and folders, cropped and resized as the model's preprocessing; with
    ``align``, each photo's largest face in CelebA-HQ's layout first (photos without a
    face are skipped with a note, unless none has one)."""
    files = find_images(paths)
    if not files:
        raise StarGANError("no images found in " + ", ".join(map(str, paths)))
    check_unique_stems(files)
    names, pixels, photos, transforms = [], [], [], []
    for f in files:
        photo = load_rgb(f)
        if not align:
            image = center_crop_resize(photo, model.image_size, model.crop, model.resize_filter)
        else:
            try:
                face = _aligned(model, photo, f)
            except NoFaceError as err:
                if len(files) == 1:
                    raise
                click.echo(f"skipped: {err}", err=True)
                continue
            image = face.image
            photos.append(photo)
            transforms.append(face.M)
        names.append(f.stem)
        pixels.append(np.asarray(image))
    if not names:
        raise StarGANError("no face found in any of " + ", ".join(map(str, paths)))
    return Images(
        names,
        np.stack(pixels),
        None if domain is None else [domain] * len(names),
        photos if keep_photos else None,
        transforms if keep_photos else None,
    )


def _aligned(model: StyleModel, photo: Image.Image, path: Path) -> AlignedFace:
    note = lambda text: click.echo(text, err=True)  # noqa: E731
    size, crop, resize_filter = model.image_size, model.crop, model.resize_filter
    return align_photo(photo, str(path), size, crop, resize_filter, frame=CELEBA_HQ, note=note)[0]


def _references(model: StyleModel, refs: list[Path], chosen: list[int], align: bool) -> Images:
    """Reference images with their domains: a folder's subfolders are named by domain
    (only ``chosen`` ones kept, if any); loose images are of the one ``chosen`` domain."""
    parts: list[Images] = []
    for path in refs:
        if not path.exists():
            raise StarGANError(f"--ref {path} does not exist")
        subfolders = sorted(p for p in path.iterdir() if p.is_dir()) if path.is_dir() else []
        if not subfolders:
            if len(chosen) != 1:
                raise StarGANError(
                    f"--ref {path}: say which domain these references show with one "
                    f"--domain (or give a folder with one subfolder per domain)"
                )
            parts.append(_read(model, [path], chosen[0], align))
            continue
        for folder in subfolders:
            d = model.domain_index(folder.name)
            if not chosen or d in chosen:
                part = _read(model, [folder], d, align)
                part.names = [f"{folder.name}-{n}" for n in part.names]
                parts.append(part)
    if not parts:
        raise StarGANError("no references of the chosen domains in " + ", ".join(map(str, refs)))
    names = [n for p in parts for n in p.names]
    if len(set(names)) != len(names):
        raise StarGANError("two references have the same domain and file name; rename one")
    domains = [d for p in parts for d in p.domains or ()]
    return Images(names, np.concatenate([p.pixels for p in parts]), domains)


# ---------------------------------------------------------------- outputs
def _chunks(model: StyleModel, sources: Images, batch_size: int):
    """(names, x [n, 3, S, S] in [-1, 1], masks) of ``batch_size`` sources at a time."""
    for start in range(0, len(sources.names), batch_size):
        x = model.preprocess(sources.pixels[start : start + batch_size])
        yield sources.names[start : start + batch_size], x, model.masks(x)


def _latent(
    model: StyleModel, out: Path, sources: Images, domains: list[int], options: SampleOptions
) -> tuple[int, list[Path]]:
    z = synthesis.latents(options.seeds, model.latent_dim).to(model.device)
    centres = model.mean_styles(domains) if options.psi != 1.0 else None
    rows, written = [], 0
    for names, x, masks in _chunks(model, sources, options.batch_size):
        cells, cols = synthesis.latent_grid(
            model.run_g, model.F, x, len(model.domains), z, options.psi, masks,
            domains=domains, centres=centres,
        )  # fmt: skip
        cells = cells.view(len(names), cols, *cells.shape[1:])
        for i, name in enumerate(names):
            for j, d in enumerate(domains):
                for k, seed in enumerate(options.seeds):
                    cell = cells[i, 1 + j * len(options.seeds) + k]
                    path = out / "latent" / model.domains[d] / f"{name}_seed{seed}.png"
                    _save_output(model, cell, path, sources, name)
                    written += 1
        rows.append(cells)
    return written, [_save_grid(rows, out / "latent_grid.png")]


def _interpolation(
    model: StyleModel, out: Path, sources: Images, domains: list[int], options: SampleOptions
) -> list[Path]:
    grids = []
    for d in domains:
        s = model.latent_styles(d, seeds=options.seeds[:2], psi=options.psi)  # [2, style_dim]
        rows = []
        for names, x, masks in _chunks(model, sources, options.batch_size):
            cells, cols = synthesis.interpolation_grid(
                model.run_g, s[0], s[1], x, options.steps, masks
            )
            rows.append(cells.view(len(names), cols, *cells.shape[1:]))
        grids.append(_save_grid(rows, out / f"interpolation_{model.domains[d]}.png"))
    return grids


def _reference(
    model: StyleModel, out: Path, sources: Images, refs: Images, batch_size: int
) -> tuple[int, list[Path]]:
    x_ref = model.preprocess(refs.pixels)
    y_ref = torch.tensor(refs.domains, device=model.device)
    rows, written = [], 0
    for names, x, masks in _chunks(model, sources, batch_size):
        cells, cols = synthesis.reference_grid(model.run_g, model.E, x, x_ref, y_ref, masks)
        cells = cells.view(1 + len(names), cols, *cells.shape[1:])
        for i, name in enumerate(names):
            for j, ref in enumerate(refs.names):
                path = out / "reference" / f"{name}_{ref}.png"
                _save_output(model, cells[1 + i, 1 + j], path, sources, name)
                written += 1
        rows.append(cells if not rows else cells[1:])  # the references' row once, on top
    return written, [_save_grid(rows, out / "reference_grid.png")]


def _save(cell: torch.Tensor, path: Path) -> None:
    save_png(cell.permute(1, 2, 0).cpu().numpy(), path)  # uint8 [3, S, S] -> HWC


def _save_output(
    model: StyleModel, cell: torch.Tensor, path: Path, sources: Images, name: str
) -> None:
    """One output: the model-size face, or (--paste-back) the source photo with it."""
    if sources.photos is None or sources.transforms is None:
        _save(cell, path)
        return
    i = sources.names.index(name)
    face = Image.fromarray(cell.permute(1, 2, 0).cpu().numpy())
    photo = paste_back(sources.photos[i], face, sources.transforms[i], model.crop, CELEBA_HQ)
    save_png(np.asarray(photo), path)


def _save_grid(rows: list[torch.Tensor], path: Path) -> Path:
    cells = torch.cat(rows)  # [rows, cols, 3, S, S]
    save_png(make_grid(cells.flatten(0, 1), nrow=cells.size(1)), path)
    return path
