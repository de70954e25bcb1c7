"""Image I/O and grids (Pillow + numpy; no torchvision)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from stargan.atomic import atomic_path
from stargan.config import check_resize_filter
from stargan.errors import StarGANError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff", ".gif"}
MAX_PIXELS = 64_000_000  # refuse decompression bombs long before they exhaust memory
# config.RESIZE_FILTERS as Pillow filters. Pillow widens the filter's support by the
# scale when shrinking (antialiasing), as torchvision's Resize of a PIL image does: it
# calls this same Image.resize, so "bilinear" gives the official loaders' pixels.
PIL_FILTERS = {"bicubic": Image.BICUBIC, "bilinear": Image.BILINEAR}


def make_grid(images: torch.Tensor, nrow: int, padding: int = 2) -> np.ndarray:
    """uint8 images [N, 3, H, W] -> one uint8 HWC array with ``nrow`` images per row."""
    n, _, h, w = images.shape
    rows = (n + nrow - 1) // nrow
    grid = np.full(
        (rows * (h + padding) + padding, nrow * (w + padding) + padding, 3), 255, np.uint8
    )
    hwc = images.permute(0, 2, 3, 1).cpu().numpy()
    for i in range(n):
        r, c = divmod(i, nrow)
        y, x = padding + r * (h + padding), padding + c * (w + padding)
        grid[y : y + h, x : x + w] = hwc[i]
    return grid


def save_png(array: np.ndarray, path: Path) -> None:
    with atomic_path(path) as tmp:
        Image.fromarray(array).save(tmp, format="PNG")


def load_rgb(path: Path) -> Image.Image:
    """Open an image file as RGB; a clear StarGANError for anything unreadable."""
    try:
        with Image.open(path) as im:
            if im.width * im.height > MAX_PIXELS:
                raise StarGANError(f"{path}: image too large ({im.width}x{im.height})")
            im.load()
            return to_rgb(ImageOps.exif_transpose(im))  # phone photos: upright as shown
    except FileNotFoundError as err:
        raise StarGANError(f"{path}: no such file") from err
    except Image.DecompressionBombError as err:
        raise StarGANError(f"{path}: image too large (decompression bomb guard)") from err
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise StarGANError(f"{path}: not a readable image ({err})") from err


def to_rgb(im: Image.Image) -> Image.Image:
    """Grayscale, palette, RGBA (onto white), CMYK and 16-bit images -> 8-bit RGB."""
    if im.mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(im, dtype=np.float64)
        im = Image.fromarray((arr / max(arr.max(), 1.0) * 255).astype(np.uint8))
    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        im = im.convert("RGBA")
        background = Image.new("RGBA", im.size, (255, 255, 255, 255))
        im = Image.alpha_composite(background, im)
    return im.convert("RGB")


def center_crop_resize(
    im: Image.Image, size: int, crop: int = 0, resize_filter: str = "bicubic"
) -> Image.Image:
    """Centre-crop to ``crop`` (0: the largest centred square), then resize to ``size``
    with ``resize_filter`` (one of config.RESIZE_FILTERS)."""
    resample = PIL_FILTERS[check_resize_filter(resize_filter, "resize_filter")]
    side = crop or min(im.size)
    side = min(side, *im.size)
    left, top = (im.width - side) // 2, (im.height - side) // 2
    im = im.crop((left, top, left + side, top + side))
    if im.size != (size, size):
        im = im.resize((size, size), resample, reducing_gap=None)
    return im


def pil_to_uint8_tensor(im: Image.Image) -> torch.Tensor:
    """PIL RGB -> uint8 [3, H, W]."""
    return torch.from_numpy(np.asarray(im, dtype=np.uint8).copy()).permute(2, 0, 1)


def find_images(inputs: list[Path], skip: Path | None = None) -> list[Path]:
    """Files given directly, plus image files inside given folders (sorted, recursive);
    files under the folder ``skip`` (the output folder, when it lies inside an input
    folder) are left out of the folder walks."""
    skip_dir = skip.resolve() if skip is not None else None
    found: list[Path] = []
    for p in inputs:
        if p.is_dir():
            found += sorted(
                f
                for f in p.rglob("*")
                if f.suffix.lower() in IMAGE_SUFFIXES and not _is_under(f, skip_dir)
            )
        else:
            found.append(p)
    return found


def _is_under(path: Path, folder: Path | None) -> bool:
    return folder is not None and path.resolve().is_relative_to(folder)
