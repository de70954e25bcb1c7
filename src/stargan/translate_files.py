"""``stargan translate``: files and folders in, PNGs (and an optional grid) out."""

from __future__ import annotations

import re
from pathlib import Path

import click
import torch
from tqdm import tqdm

from stargan.data.dataset import to_uint8
from stargan.errors import StarGANError
from stargan.images import (
    center_crop_resize,
    find_images,
    load_rgb,
    make_grid,
    pil_to_uint8_tensor,
    save_png,
)
from stargan.translate import Translator


def translate_files(
    model: Path,
    inputs: list[Path],
    out: Path,
    target: str | None,
    grid: bool,
    batch_size: int,
    device: str,
    progress: bool = True,
) -> tuple[int, int]:
    """Translate every readable input; returns (translated, failed). Unreadable inputs are
    reported one line each and skipped, the rest still processed."""
    tr = Translator.from_pretrained(model, device=_device(device))
    assignments = tr.spec.parse_assignments(target) if target else None
    _ensure_writable(out)
    paths = find_images(inputs)
    if not paths:
        raise StarGANError("no input images found in " + ", ".join(map(str, inputs)))
    stems: dict[str, Path] = {}
    for p in paths:  # outputs are named by stem: two inputs must not write the same file
        if stems.setdefault(p.stem, p) != p:
            raise StarGANError(
                f"two inputs would write the same outputs: {stems[p.stem]} "
                f"and {p}; translate them into separate -o folders"
            )
    failed, done, rows = 0, 0, []
    bar = tqdm(total=len(paths), disable=not progress, unit="img", desc="translate")
    for start in range(0, len(paths), batch_size):
        chunk, images = [], []
        for p in paths[start : start + batch_size]:
            try:
                images.append(center_crop_resize(load_rgb(p), tr.image_size, tr.crop))
                chunk.append(p)
            except StarGANError as err:
                click.echo(f"skipped: {err}", err=True)
                failed += 1
        bar.update(len(paths[start : start + batch_size]))
        if not chunk:
            continue
        x = tr.preprocess(images)
        outputs = _outputs(tr, x, assignments)
        for name, y in outputs:
            for p, img in zip(chunk, to_uint8(y).cpu(), strict=True):
                save_png(img.permute(1, 2, 0).numpy(), out / f"{p.stem}_{_slug(name)}.png")
        if grid:
            inputs_u8 = torch.stack([pil_to_uint8_tensor(im) for im in images])
            rows.append(torch.stack([inputs_u8] + [to_uint8(y).cpu() for _, y in outputs], 1))
        done += len(chunk)
    bar.close()
    if grid and rows:
        cells = torch.cat(rows).flatten(0, 1)
        save_png(make_grid(cells, nrow=cells.size(0) // done), out / "grid.png")
    return done, failed


def _outputs(
    tr: Translator, x: torch.Tensor, assignments: dict[str, float] | None
) -> list[tuple[str, torch.Tensor]]:
    with torch.no_grad():
        if assignments is None:
            return tr.all_domains(x)
        c_trg = tr.spec.apply(tr.estimate_labels(x), assignments)
        name = ",".join(f"{k}={int(v)}" for k, v in assignments.items())
        return [(name, tr.G(x, c_trg))]


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_=,.-]+", "-", text)


def _device(name: str) -> str:
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise StarGANError(f"--device {name}: CUDA is not available on this machine")
    return name


def _ensure_writable(out: Path) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as err:
        raise StarGANError(f"output folder {out} is not writable: {err.strerror}") from err
