"""Uploaded photos: bytes from the network -> one RGB image, or an ``UploadError`` that says
what was wrong and which HTTP status it gets.

Pillow is asked to read only the formats below (``Image.open(formats=...)``), so a file is an
image because Pillow decodes it, never because of its name or declared type, and plugins that
shell out (EPS runs Ghostscript) or that few people need are never reached from the network.
"""

from __future__ import annotations

import contextlib
import ctypes
import io

from PIL import Image, ImageOps, UnidentifiedImageError

from stargan.errors import StarGANError
from stargan.images import MAX_PIXELS, to_rgb

# Pillow's JPEG opener also returns "MPO" images (phone JPEGs with extra preview frames).
FORMATS = ("PNG", "JPEG", "WEBP", "BMP", "GIF", "TIFF")
FORMAT_NAMES = "PNG, JPEG, WebP, BMP, GIF or TIFF"
MAX_UPLOAD_BYTES = 10 * 1024 * 1024
# Big JPEGs are decoded at a reduced scale (a DCT trick of the decoder: 1/2, 1/4 or 1/8) while
# staying at least this large, ample for face detection (align.DETECT_MAX_SIDE) and for any
# model size: a 48 MP phone photo then costs ~1/16 of its full decode in time and memory.
JPEG_DRAFT_SIDE = 2048


class UploadError(StarGANError):
    """A request the server refuses; ``status`` is its HTTP status code."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


# Formats without reduced-size decoding are decoded whole: a small PNG can declare 63 MP and
# cost a gigabyte. The model's input is 32-256 px and face detection works on <= 1024 px, so
# these formats get a lower cap than JPEG (decoded at reduced size whatever its size).
MAX_UNDRAFTED_PIXELS = 16_000_000


def decode_image(
    data: bytes, max_pixels: int = MAX_PIXELS, max_undrafted: int = MAX_UNDRAFTED_PIXELS
) -> Image.Image:
    """An uploaded file's bytes -> an upright 8-bit RGB image (EXIF orientation applied).
    Empty, unknown, over-large (decompression bombs; more than ``max_pixels``, or than
    ``max_undrafted`` for formats other than JPEG) and corrupt files raise UploadError."""
    if not data:
        raise UploadError(400, "the uploaded file is empty")
    try:
        # Pillow's own guard raises DecompressionBombError in open() past 2x its
        # MAX_IMAGE_PIXELS; below that, max_pixels (smaller by default) refuses first.
        with Image.open(io.BytesIO(data), formats=FORMATS) as im:
            if im.width * im.height > max_pixels:  # header only: nothing decoded yet
                raise UploadError(413, _too_many_pixels(im.width, im.height, max_pixels))
            undrafted = im.format not in ("JPEG", "MPO")
            if undrafted and im.width * im.height > min(max_undrafted, max_pixels):
                text = _too_many_pixels(im.width, im.height, min(max_undrafted, max_pixels))
                raise UploadError(413, f"{text} for {im.format} (JPEG: {max_pixels / 1e6:g} MP)")
            if im.format in ("JPEG", "MPO"):
                im.draft("RGB", (JPEG_DRAFT_SIDE, JPEG_DRAFT_SIDE))
            im.load()
            return to_rgb(ImageOps.exif_transpose(im))
    except UploadError:
        raise
    except Image.DecompressionBombError as err:  # Pillow's limit, not ours: quote ours
        raise UploadError(413, f"image too large: at most {max_pixels / 1e6:g} MP") from err
    except UnidentifiedImageError as err:
        raise UploadError(
            415, f"the file is not an image this server reads ({FORMAT_NAMES} expected)"
        ) from err
    except MemoryError as err:
        raise UploadError(413, "image too large to decode") from err
    except Exception as err:
        # Pillow's decoders raise a zoo of exception types on damaged or crafted files
        # (OSError "truncated", SyntaxError, ValueError, EOFError, struct.error, ...): all of
        # them mean "this file cannot be read", and none may take the server down.
        raise UploadError(400, f"the image is truncated or corrupt ({_short(err)})") from err


def release_memory() -> None:
    """Hand freed heap memory back to the system after a large decode (glibc's malloc_trim;
    elsewhere nothing): without it a server that once decoded big images stays big."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def _too_many_pixels(width: int, height: int, max_pixels: int) -> str:
    return (
        f"image too large: {width}x{height} pixels ({width * height / 1e6:.1f} MP); "
        f"at most {max_pixels / 1e6:g} MP"
    )


def _short(err: Exception) -> str:
    text = str(err) or type(err).__name__
    return text if len(text) <= 120 else text[:117] + "..."
