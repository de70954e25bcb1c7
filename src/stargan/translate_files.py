"""``stargan translate``: files and folders in, PNGs (and an optional grid) out."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path

import click
import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from stargan.align import align_photo, opencv, paste_back
from stargan.data.dataset import to_uint8
from stargan.data.labels import parse_pairs
from stargan.errors import StarGANError
from stargan.images import (
    center_crop_resize,
    find_images,
    load_rgb,
    make_grid,
    pil_to_uint8_tensor,
    save_png,
)
from stargan.outputs import check_device, check_unique_stems, ensure_writable
from stargan.quantize import require_int8
from stargan.translate import Translator

# --int8 calibrates on the first this many model inputs (with the run's targets); the
# same inputs give the same int8 model, whatever --batch-size.
INT8_CALIBRATION_IMAGES = 16


@dataclass(frozen=True)
class Alignment:
    """``--align``: each face warped to CelebA's aligned layout before translation."""

    faces: str = "largest"  # "largest" or "all" (one output per face: NAME-face0_...)
    paste_back: bool = False  # write the whole photo with the translated face(s) blended in


@dataclass(frozen=True)
class Request:
    """What each input becomes: every target of ``targets`` (``--to``, one output each) or,
    with none, every single-domain change (``changes="single"``, ``--all-domains``) or
    every multi-attribute combination (``"multi"``, ``--all-combinations``, paper Fig. 4).
    ``source`` (``--from``): the inputs' own domains, else D_cls reads them; ``mask``
    (``--mask``): the dataset whose mask bit a joint model's G gets (paper Fig. 8)."""

    targets: tuple[str, ...] = ()
    changes: str = "single"
    source: str | None = None
    mask: str | None = None


@dataclass
class _Item:
    """One model input: a whole image, or one aligned face of a photo."""

    path: Path
    name: str  # output file stem
    image: Image.Image  # [size, size] model input, before preprocess's range conversion
    photo: Image.Image | None = None  # the original, kept for --paste-back
    M: np.ndarray | None = None  # photo -> aligned frame


def translate_files(
    model: Path,
    inputs: list[Path],
    out: Path,
    request: Request,
    grid: bool,
    batch_size: int,
    device: str,
    progress: bool = True,
    alignment: Alignment | None = None,
    int8: bool = False,
    log=lambda text: None,
    precision: str = "auto",
    strength: float = 1.0,
) -> tuple[int, int]:
    """Translate every readable input; returns (translated, failed). Unreadable inputs (and,
    with several inputs, photos where ``alignment`` finds no face) are reported one line each
    and skipped, the rest still processed. ``int8``: G runs in int8 (``_quantize``)."""
    if int8:
        require_int8(device, model)  # v1 folder, CPU, VNNI: one error before any loading
    tr = Translator.from_pretrained(model, device=check_device(device), precision=precision)
    tr.strength = strength  # a model that cannot take it: one error before any work
    targets = _checked(tr, request)  # unknown or mixed domains: one error before any work
    created = not out.exists()
    ensure_writable(out)
    try:
        done, failed = _translate_all(
            tr, inputs, out, (targets, request), grid, batch_size, progress, alignment, int8
        )
    finally:
        if created and out.is_dir() and not any(out.iterdir()):
            out.rmdir()  # a run that wrote nothing leaves no empty folder behind
    log(tr.describe())  # what the model is for, beside what it did (not before an error)
    if not int8:
        log(f"precision: {tr.precision.describe()}")
    return done, failed


def _checked(tr: Translator, request: Request) -> list[dict[str, float]]:
    """``request.targets`` parsed, and every name in the request checked against the model."""
    example = tr.layout.domain_names()[0]
    targets = [parse_pairs(text, example=example) for text in request.targets]
    parts = {tr.parse_target(t)[0] for t in targets}
    if request.source is not None:
        part, source = tr.parse_target(request.source)
        tr.layout.specs[part].apply(torch.zeros(1, tr.layout.specs[part].dim), source)
        if parts - {part}:
            raise StarGANError("--from must name domains of the dataset --to translates into")
    if request.mask is not None:
        if not targets:
            raise StarGANError("--mask needs --to (the label it goes with)")
        tr.layout.with_mask(torch.zeros(1, tr.layout.dim), request.mask)
    if len({_name(t, None) for t in targets}) < len(targets):
        raise StarGANError("the same --to is given twice")
    if not targets and not any(spec.changes(request.changes) for spec in tr.layout.specs):
        raise StarGANError(
            "--all-combinations needs multi-label attributes of at least two kinds "
            "(e.g. hair colour and sex); this model has none"
        )
    return targets


def _translate_all(
    tr: Translator,
    inputs: list[Path],
    out: Path,
    what: tuple[list[dict[str, float]], Request],
    grid: bool,
    batch_size: int,
    progress: bool,
    alignment: Alignment | None,
    int8: bool,
) -> tuple[int, int]:
    paths = find_images(inputs, skip=out)
    if not paths:
        raise StarGANError("no input images found in " + ", ".join(map(str, inputs)))
    check_unique_stems(paths)
    if alignment:
        opencv()  # a missing OpenCV is one error, not one per photo
    if int8:
        targets = what[0]
        _quantize(tr, paths, alignment, targets[0] if len(targets) == 1 else None)
    # --paste-back keeps each photo until its faces are back in it: one photo at a time
    step = 1 if alignment and alignment.paste_back else batch_size
    failed, done, rows = 0, 0, []
    single = len(paths) == 1  # one input: its error is the run's one-line error, no bar
    bar = tqdm(total=len(paths), disable=not progress or single, unit="img", desc="translate")
    for start in range(0, len(paths), step):
        items = []
        for p in paths[start : start + step]:
            try:
                items += _load(p, tr, alignment)
            except StarGANError as err:
                if single:
                    raise
                click.echo(f"skipped: {err}", err=True)
                failed += 1
        bar.update(len(paths[start : start + step]))
        if not items:
            continue
        outputs = _translate(tr, [it.image for it in items], what, batch_size)
        _write(items, outputs, out, tr.crop, bool(alignment and alignment.paste_back))
        if grid:
            inputs_u8 = torch.stack([pil_to_uint8_tensor(it.image) for it in items])
            rows.append(torch.stack([inputs_u8] + [to_uint8(y).cpu() for _, y in outputs], 1))
        done += len({it.path for it in items})
    bar.close()
    if grid and rows:
        cells = torch.cat(rows)  # [items, 1 + outputs, 3, S, S]
        save_png(make_grid(cells.flatten(0, 1), nrow=cells.size(1)), out / "grid.png")
    return done, failed


def _quantize(
    tr: Translator,
    paths: list[Path],
    alignment: Alignment | None,
    assignments: dict[str, float] | None,
) -> None:
    """``--int8``: G swapped for its int8 copy, calibrated on the first
    INT8_CALIBRATION_IMAGES model inputs with the run's targets (``assignments``, else every
    single-domain change). Unreadable inputs are skipped here; the main loop reports them."""
    images: list[Image.Image] = []
    for p in paths:
        if len(images) >= INT8_CALIBRATION_IMAGES:
            break
        try:
            images += [it.image for it in _load(p, tr, alignment, notes=False)]
        except StarGANError:
            continue
    if not images:
        return  # nothing readable: nothing will be translated
    images = images[:INT8_CALIBRATION_IMAGES]
    start = time.perf_counter()
    tr.quantize(images, assignments)
    seconds = time.perf_counter() - start
    click.echo(f"int8: G calibrated on {len(images)} input(s) in {seconds:.1f} s", err=True)


def _load(p: Path, tr: Translator, alignment: Alignment | None, notes: bool = True) -> list[_Item]:
    """The model inputs of one file: the image itself, or its aligned face(s); ``notes``:
    say when a photo has several faces, and when much of a face's model input lies outside
    the photo (made up by warp_to_frame)."""
    photo = load_rgb(p)
    if alignment is None:
        image = center_crop_resize(photo, tr.image_size, tr.crop, tr.resize_filter)
        return [_Item(p, p.stem, image)]
    every = alignment.faces == "all"
    faces = align_photo(
        photo, str(p), tr.image_size, tr.crop, tr.resize_filter, all_faces=every,
        note=(lambda text: click.echo(text, err=True)) if notes else None,
        every_face_hint=" (--faces all for every one)",
    )  # fmt: skip
    keep = photo if alignment.paste_back else None
    return [
        _Item(p, f"{p.stem}-face{f.index}" if every else p.stem, f.image, keep, f.M) for f in faces
    ]


def _translate(
    tr: Translator,
    images: list[Image.Image],
    what: tuple[list[dict[str, float]], Request],
    batch_size: int,
) -> list[tuple[str, torch.Tensor]]:
    """Every output of ``images``, translated batch_size at a time: [(name, [N, 3, S, S])]."""
    parts = [
        _outputs(tr, tr.preprocess(images[i : i + batch_size]), *what)
        for i in range(0, len(images), batch_size)
    ]
    return [
        (name, torch.cat([part[k][1] for part in parts])) for k, (name, _) in enumerate(parts[0])
    ]


def _write(
    items: list[_Item], outputs: list[tuple[str, torch.Tensor]], out: Path, crop: int, paste: bool
) -> None:
    """One PNG per item and output; with ``paste``, one per photo and output instead."""
    for name, y in outputs:
        arrays = to_uint8(y).permute(0, 2, 3, 1).cpu().numpy()  # [N, S, S, 3]
        if not paste:
            for it, arr in zip(items, arrays, strict=True):
                save_png(arr, out / f"{it.name}_{_slug(name)}.png")
            continue
        photo = items[0].photo  # one photo at a time when pasting
        for it, arr in zip(items, arrays, strict=True):
            photo = paste_back(photo, Image.fromarray(arr), it.M, crop)
        save_png(np.asarray(photo), out / f"{items[0].path.stem}_{_slug(name)}.png")


def _outputs(
    tr: Translator, x: torch.Tensor, targets: list[dict[str, float]], request: Request
) -> list[tuple[str, torch.Tensor]]:
    with torch.no_grad():
        c_org = None if request.source is None else tr.source_labels(x, request.source)
        if not targets:
            return tr.all_domains(x, c_org, request.changes)
        return [
            (_name(target, request.mask), tr.apply(x, target, c_org, request.mask))
            for target in targets
        ]


def _name(target: dict[str, float], mask: str | None) -> str:
    name = ",".join(f"{k}={int(v)}" for k, v in target.items())
    return name if mask is None else f"{name},mask={mask}"


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_=,.+-]+", "-", text)
