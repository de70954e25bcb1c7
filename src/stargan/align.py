"""Face alignment for users' own photos: find faces, warp each into the layout of CelebA's
``img_align_celeba`` (178x218, eyes level at fixed places), and paste a translated face back.

    photo --detect_faces--> [Face] --frame_transform--> M (2x3, photo -> frame)
          --warp_to_frame--> 178x218 aligned frame --center_crop_resize--> model input
    model output --paste_back--> the photo with the translated face feathered in

The detector is OpenCV's Haar cascades (frontal face, then eyes inside it): their models ship
inside the opencv-python-headless wheel, so nothing is downloaded at run time. OpenCV is
imported only here, lazily, so ``stargan`` runs without it unless ``--align`` is asked for.
OpenCV 5 dropped the cascades, hence ``opencv-python-headless<5`` in the ``align`` extra.

``benchmarks/align_compare.py`` measures it against mediapipe 0.10.14's face detection and
face mesh: mediapipe finds a few more faces (100% against 93.5-100%) and is 10-20x faster,
with about the same eye precision (2.1 px against 2.1-2.8 px on known transforms), but it is
no dependency: it pulls jax, scipy, matplotlib and a non-headless OpenCV (about 700 MB), caps
protobuf below 5 and has no wheels past Python 3.12.

Coordinates are continuous, as in Pillow's transforms: pixel (i, j) covers [i, i+1) x
[j, j+1), so its centre is (i + 0.5, j + 0.5). Matrices are 2x3 affine ``[A | t]``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np
from PIL import Image, ImageFilter

from stargan.errors import StarGANError

FRAME_SIZE = (178, 218)  # (width, height) of an img_align_celeba image

# Eye centres (image-left eye, image-right eye) in the 178x218 frame as this module's detector
# finds them in img_align_celeba images: the mean over the 2,565 of the 3,000 train-partition
# images of ../shared/data/celeba_subset where it found a face and both eyes (std 2.3 px in x,
# 1.3 px in y), measured by `python benchmarks/align_compare.py --fit-template --n-template 3000`.
# Measuring with the detector that aligns users' photos cancels its own bias (a Haar eye box is
# not centred exactly on the pupil). CelebA's own list_landmarks_align_celeba.txt (not in
# ../shared) agrees within a couple of pixels: its first rows average (70.5, 111.5), (107.2, 110.2).
TEMPLATE_EYES = ((68.4, 111.8), (107.3, 111.9))

# Where the eyes sit inside a Haar face box, as fractions (x of the width, y of the height),
# measured on the same images in the same run. Used when the eye cascade does not find both
# eyes inside a face (closed eyes, glasses, small faces): the box alone then sets position and
# scale, and the face is assumed upright.
BOX_EYES = ((0.299, 0.388), (0.681, 0.389))

# The frontal cascade finds faces rolled by up to about +-15 degrees (of 100 CelebA test faces:
# 97% upright, 86% rolled 15 degrees, 10% rolled 25), so a photo where no face with eyes is
# found upright is searched again, turned by each other angle.
SEARCH_ANGLES = (0.0, 18.0, -18.0)
# A face whose eyes the eye cascade does not find is kept only when this many detection windows
# agreed on it: on the benchmark images false faces had at most 9, and 94% of real ones more.
SURE_NEIGHBOURS = 10
DETECT_MAX_SIDE = 800  # photos are searched at most this large: a face needs >= 3% of the side
MIN_FACE = 24  # pixels at the search scale (the cascade's own window is 20x20)
EYE_ROI_WIDTH = 160  # face boxes are rescaled to this width before the eye search
FEATHER = 0.16  # paste-back blend zone at each edge, as a fraction of the face crop's side

Point = tuple[float, float]
Eyes = tuple[Point, Point]  # (image-left eye, image-right eye) centres


class NoFaceError(StarGANError):
    """No face was found in a photo."""


@dataclass(frozen=True)
class Face:
    """One detected face in photo pixels."""

    box: tuple[float, float, float, float]  # x, y, width, height
    eyes: Eyes
    score: float  # detection windows that agreed on this face (higher is surer)
    eyes_found: bool  # False: eyes estimated from the box (BOX_EYES)

    @property
    def area(self) -> float:
        return self.box[2] * self.box[3]


# ---------------------------------------------------------------------- detection
def detect_faces(photo: Image.Image, max_side: int = DETECT_MAX_SIDE) -> list[Face]:
    """Faces in an RGB photo, largest first; [] when none is found. The photo is searched
    upright, then turned by each further angle of SEARCH_ANGLES until a search finds a face
    with both eyes; failing that, the first search that found any face is returned."""
    gray = np.asarray(photo.convert("L"))  # [H, W] uint8
    first: list[Face] = []
    for angle in SEARCH_ANGLES:
        faces = _detect_turned(gray, angle, max_side)
        if any(f.eyes_found for f in faces):
            return sorted(faces, key=lambda f: -f.area)
        first = first or faces
    return sorted(first, key=lambda f: -f.area)


def _detect_turned(gray: np.ndarray, angle: float, max_side: int) -> list[Face]:
    """Faces found in ``gray`` turned by ``angle`` degrees (counter-clockwise), in the
    coordinates of ``gray``; a face's box is then the bounding box of its turned box."""
    if angle == 0:
        return _detect_upright(gray, max_side)
    cv2 = opencv()
    h, w = gray.shape
    c, s = abs(np.cos(np.deg2rad(angle))), abs(np.sin(np.deg2rad(angle)))
    size = (int(np.ceil(w * c + h * s)), int(np.ceil(w * s + h * c)))  # the whole photo
    R = _turn(angle, (w / 2, h / 2), (size[0] / 2, size[1] / 2))
    turned = cv2.warpAffine(
        gray, _to_cv(R), size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )
    back = invert(R)
    return [_moved(f, back) for f in _detect_upright(turned, max_side)]


def _detect_upright(gray: np.ndarray, max_side: int) -> list[Face]:
    """Frontal faces (searched at most max_side large), each with its eyes when the eye
    cascade finds them; a face with no eyes found needs SURE_NEIGHBOURS agreeing windows."""
    cv2 = opencv()
    h, w = gray.shape
    scale = min(1.0, max_side / max(h, w))
    size = (max(round(w * scale), 1), max(round(h * scale), 1))
    small = gray if scale == 1.0 else cv2.resize(gray, size, interpolation=cv2.INTER_AREA)
    sx, sy = size[0] / w, size[1] / h
    rects, neighbours = _cascade("haarcascade_frontalface_alt2.xml").detectMultiScale2(
        small, scaleFactor=1.1, minNeighbors=5, minSize=(MIN_FACE, MIN_FACE)
    )
    faces = []
    for (x, y, bw, bh), n in zip(rects, np.ravel(neighbours), strict=True):
        box = (float(x / sx), float(y / sy), float(bw / sx), float(bh / sy))
        eyes = _find_eyes(gray, box)
        if eyes or n >= SURE_NEIGHBOURS:
            faces.append(Face(box, eyes or _box_eyes(box), float(n), eyes is not None))
    return faces


def _find_eyes(gray: np.ndarray, box: tuple[float, float, float, float]) -> Eyes | None:
    """Eye centres from the eye cascade in the upper part of a face box: in each half the
    one nearest where BOX_EYES expects it. None unless both halves have one and the pair is
    plausible (the eyes of found faces are 0.38 box widths apart, +-0.05, and nearly level)."""
    cv2 = opencv()
    x, y, w, h = box
    x0, y0 = max(int(x), 0), max(int(y + 0.15 * h), 0)
    roi = gray[y0 : int(y + 0.6 * h), x0 : int(x + w)]
    if roi.size == 0:
        return None
    s = EYE_ROI_WIDTH / w
    roi = cv2.resize(roi, None, fx=s, fy=s, interpolation=cv2.INTER_AREA)
    found = _cascade("haarcascade_eye.xml").detectMultiScale(
        roi, scaleFactor=1.05, minNeighbors=3, minSize=(19, 19), maxSize=(64, 64)
    )
    centres = [
        (float(x0 + (ex + ew / 2) / s), float(y0 + (ey + eh / 2) / s)) for ex, ey, ew, eh in found
    ]
    expected = _box_eyes(box)
    mid = x + w / 2
    halves = ([c for c in centres if c[0] < mid], [c for c in centres if c[0] >= mid])
    if not all(halves):
        return None
    left, right = (
        min(half, key=lambda c, e=e: (c[0] - e[0]) ** 2 + (c[1] - e[1]) ** 2)
        for half, e in zip(halves, expected, strict=True)
    )
    dx, dy = right[0] - left[0], right[1] - left[1]
    if not (0.25 * w <= dx <= 0.55 * w and abs(dy) <= 0.3 * dx):  # not a plausible pair
        return None
    return left, right


def _box_eyes(box: tuple[float, float, float, float]) -> Eyes:
    x, y, w, h = box
    (lx, ly), (rx, ry) = BOX_EYES
    return (x + lx * w, y + ly * h), (x + rx * w, y + ry * h)


def _moved(face: Face, M: np.ndarray) -> Face:
    """``face`` in the coordinates M maps to; the box becomes the moved box's bounding box."""
    x, y, w, h = face.box
    corners = apply(M, np.array([[x, y], [x + w, y], [x, y + h], [x + w, y + h]]))
    (x0, y0), (x1, y1) = corners.min(0).tolist(), corners.max(0).tolist()
    left, right = (tuple(map(float, p)) for p in apply(M, np.array(face.eyes)))
    return Face((x0, y0, x1 - x0, y1 - y0), (left, right), face.score, face.eyes_found)


def _turn(angle: float, centre: Point, to: Point) -> np.ndarray:
    """Rotation by ``angle`` degrees, counter-clockwise as seen (y points down), taking
    ``centre`` to ``to``."""
    a = complex(np.cos(np.deg2rad(angle)), -np.sin(np.deg2rad(angle)))
    b = complex(*to) - a * complex(*centre)
    return np.array([[a.real, -a.imag, b.real], [a.imag, a.real, b.imag]])


def _to_cv(M: np.ndarray) -> np.ndarray:
    """M in OpenCV's pixel convention (pixel centres on integers, not at + 0.5)."""
    return np.hstack([M[:, :2], M[:, 2:] + (M[:, :2] @ [[0.5], [0.5]]) - 0.5])


def opencv() -> Any:
    """The cv2 module, or a StarGANError naming the extra that brings it."""
    try:
        import cv2
    except ImportError as err:
        raise StarGANError(
            "face alignment needs OpenCV, which is not installed: pip install 'stargan[align]'"
        ) from err
    if not hasattr(cv2, "CascadeClassifier"):  # OpenCV 5 dropped the Haar cascades
        raise StarGANError(
            f"OpenCV {cv2.__version__} has no Haar cascades; pip install 'stargan[align]' "
            "(opencv-python-headless 4.x)"
        )
    return cv2


@cache
def _cascade(name: str) -> Any:
    cv2 = opencv()
    cascade = cv2.CascadeClassifier(cv2.data.haarcascades + name)
    if cascade.empty():
        raise StarGANError(f"OpenCV's {name} is missing or unreadable: reinstall stargan[align]")
    return cascade


# ---------------------------------------------------------------------- geometry
def similarity(src: Eyes, dst: Eyes) -> np.ndarray:
    """The 2x3 similarity (rotation, uniform scale, shift) mapping two points onto two."""
    (p1, p2), (q1, q2) = (complex(*a) for a in src), (complex(*b) for b in dst)
    if p1 == p2:
        raise StarGANError("the two eye positions coincide: cannot align")
    a = (q2 - q1) / (p2 - p1)  # x -> a x + b in the complex plane
    b = q1 - a * p1
    return np.array([[a.real, -a.imag, b.real], [a.imag, a.real, b.imag]])


def frame_transform(face: Face) -> np.ndarray:
    """Photo -> aligned frame: the face's eyes onto TEMPLATE_EYES."""
    return similarity(face.eyes, TEMPLATE_EYES)


def invert(M: np.ndarray) -> np.ndarray:
    A_inv = np.linalg.inv(M[:, :2])
    return np.hstack([A_inv, -A_inv @ M[:, 2:]])


def compose(M2: np.ndarray, M1: np.ndarray) -> np.ndarray:
    """M2 after M1."""
    return np.hstack([M2[:, :2] @ M1[:, :2], M2[:, :2] @ M1[:, 2:] + M2[:, 2:]])


def apply(M: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Points [N, 2] through M."""
    return np.asarray(points, dtype=np.float64) @ M[:, :2].T + M[:, 2]


def crop_square(crop: int) -> tuple[int, int, int]:
    """(left, top, side) of the square that ``images.center_crop_resize(frame, size, crop)``
    takes from a 178x218 frame: the model sees only this square."""
    w, h = FRAME_SIZE
    side = min(crop or min(w, h), w, h)
    return (w - side) // 2, (h - side) // 2, side


def model_transform(M: np.ndarray, crop: int, size: int) -> np.ndarray:
    """Photo -> model input pixels (size x size): the alignment, then crop and resize."""
    left, top, side = crop_square(crop)
    k = size / side
    return compose(np.array([[k, 0.0, -left * k], [0.0, k, -top * k]]), M)


# ---------------------------------------------------------------------- warping
def warp_to_frame(photo: Image.Image, M: np.ndarray) -> Image.Image:
    """The 178x218 aligned frame of ``photo`` under M (photo -> frame), bicubic. Where the
    frame reaches past the photo the edge pixels are repeated (img_align_celeba does too)."""
    w, h = FRAME_SIZE
    corners = apply(invert(M), np.array([[0, 0], [w, 0], [0, h], [w, h]]))
    x0, y0 = np.floor(corners.min(0)).astype(int) - 2
    x1, y1 = np.ceil(corners.max(0)).astype(int) + 2
    k = min(1.0, float(np.sqrt(abs(np.linalg.det(M[:, :2])))))  # frame px per photo px
    region, R = _region(photo, (int(x0), int(y0), int(x1), int(y1)), k)
    return _affine(region, invert(compose(M, invert(R))), FRAME_SIZE)


def _region(
    photo: Image.Image, box: tuple[int, int, int, int], k: float
) -> tuple[Image.Image, np.ndarray]:
    """The photo's pixels in ``box`` (x0, y0, x1, y1, which may reach outside: the edge is
    repeated there), shrunk by ``k`` <= 1 with Pillow's antialiasing resize (an affine warp
    alone would alias), and R, the map photo -> region. Shrinking before padding also keeps
    memory to about the frame's size, however large the photo."""
    x0, y0, x1, y1 = box
    cx0, cy0 = min(max(x0, 0), photo.width - 1), min(max(y0, 0), photo.height - 1)
    cx1, cy1 = max(min(x1, photo.width), cx0 + 1), max(min(y1, photo.height), cy0 + 1)
    size = (max(round((cx1 - cx0) * k), 1), max(round((cy1 - cy0) * k), 1))
    inside = photo.resize(size, Image.BICUBIC, box=(cx0, cy0, cx1, cy1), reducing_gap=None)
    kx, ky = size[0] / (cx1 - cx0), size[1] / (cy1 - cy0)
    left, top = int(np.ceil((cx0 - x0) * kx)), int(np.ceil((cy0 - y0) * ky))
    pad = ((top, int(np.ceil((y1 - cy1) * ky))), (left, int(np.ceil((x1 - cx1) * kx))), (0, 0))
    R = np.array([[kx, 0.0, left - cx0 * kx], [0.0, ky, top - cy0 * ky]])
    return Image.fromarray(np.pad(np.asarray(inside), pad, mode="edge")), R


def _affine(im: Image.Image, out_to_in: np.ndarray, size: tuple[int, int]) -> Image.Image:
    """Pillow's affine warp; ``out_to_in`` maps output coordinates to input ones."""
    return im.transform(size, Image.AFFINE, tuple(out_to_in.ravel()), resample=Image.BICUBIC)


def paste_back(photo: Image.Image, face: Image.Image, M: np.ndarray, crop: int) -> Image.Image:
    """``photo`` with a translated model-size face (from the frame of M, preprocessed with
    ``crop``) warped back and blended in through a feathered mask: no seam at its border."""
    size = face.width
    to_model = model_transform(M, crop, size)
    corners = apply(invert(to_model), np.array([[0, 0], [size, 0], [0, size], [size, size]]))
    x0, y0 = np.maximum(np.floor(corners.min(0)).astype(int), 0)
    x1, y1 = np.minimum(np.ceil(corners.max(0)).astype(int), photo.size)
    if x1 <= x0 or y1 <= y0:
        return photo.copy()
    box = (int(x1 - x0), int(y1 - y0))
    region_to_model = compose(to_model, np.array([[1.0, 0.0, x0], [0.0, 1.0, y0]]))
    warped = np.asarray(_affine(face, region_to_model, box), dtype=np.float32)
    mask = np.asarray(_affine(feather_mask(size), region_to_model, box), dtype=np.float32)
    out = np.asarray(photo).copy()
    region = out[y0:y1, x0:x1].astype(np.float32)
    alpha = mask[..., None] / 255.0  # [h, w, 1]
    out[y0:y1, x0:x1] = np.rint(region + alpha * (warped - region)).astype(np.uint8)
    return Image.fromarray(out)


def feather_mask(size: int) -> Image.Image:
    """An 8-bit mask of a size x size square: 0 at the border, rising smoothly to 255 at
    FEATHER of the side inside it (a blurred inset square, so the corners are rounded too)."""
    inset = max(round(FEATHER * size / 2), 1)
    mask = Image.new("L", (size, size), 0)
    mask.paste(255, (inset, inset, size - inset, size - inset))
    return mask.filter(ImageFilter.GaussianBlur(inset / 3))  # 3 sigma: ~0 at the border
