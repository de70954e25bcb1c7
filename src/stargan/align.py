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

Tightly cropped faces (the face fills the photo: cropped-face datasets, selfies) are found by
a retry on the padded photo, and much of their model input lies past the photo's edges, made
up by warp_to_frame; ``made_up_share`` says how much, and callers warn past MADE_UP_WARN.
``benchmarks/align_tight.py`` measures both on 300 such crops.

Coordinates are continuous, as in Pillow's transforms: pixel (i, j) covers [i, i+1) x
[j, j+1), so its centre is (i + 0.5, j + 0.5). Matrices are 2x3 affine ``[A | t]``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import cache
from typing import Any

import numpy as np
from PIL import Image, ImageFilter

from stargan.errors import StarGANError
from stargan.images import center_crop_resize

FRAME_SIZE = (178, 218)  # (width, height) of an img_align_celeba image

# Eye centres (image-left eye, image-right eye) in the 178x218 frame as this module's detector
# finds them in img_align_celeba images: the mean over the 2,565 of the 3,000 train-partition
# images of ../shared/data/celeba_subset where it found a face and both eyes (std 2.3 px in x,
# 1.3 px in y), measured by `python benchmarks/align_compare.py --fit-template --n-template 3000`.
# Measuring with the detector that aligns users' photos cancels its own bias (a Haar eye box is
# not centred exactly on the pupil). CelebA's own list_landmarks_align_celeba.txt (not in
# ../shared) agrees within a couple of pixels: its first rows average (70.5, 111.5), (107.2, 110.2).
TEMPLATE_EYES = ((68.4, 111.8), (107.3, 111.9))

# Eye centres in CelebA-HQ's 1024x1024 aligned images (Karras et al. 2018; what StarGAN v2's
# CelebA-HQ models learn from), found the same way: the median over 55 of the 56 CelebA-HQ
# images of ../shared/data/stargan_v2_representative/celeba_hq where the detector found a
# face and both eyes (std 9-13 px in x, 5.5 px in y; eye distance 253 px, 0.25 of the side).
TEMPLATE_EYES_HQ = ((376.9, 488.3), (632.7, 488.3))


@dataclass(frozen=True)
class Frame:
    """An aligned layout that models learn from: its size (width, height) and where the
    eyes sit in it. Photos are warped into it, then centre-cropped and resized as a model's
    training images were."""

    title: str  # the dataset whose layout it is, as users know it
    size: tuple[int, int]
    eyes: tuple[tuple[float, float], tuple[float, float]]


CELEBA = Frame("CelebA", FRAME_SIZE, TEMPLATE_EYES)  # img_align_celeba: StarGAN v1 models
CELEBA_HQ = Frame("CelebA-HQ", (1024, 1024), TEMPLATE_EYES_HQ)  # StarGAN v2's CelebA-HQ models

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
BLUR_SIGMA = 0.04  # warp_to_frame's "blur": sigma, as a share of the photo's side in the frame
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
@dataclass(frozen=True)
class _Search:
    """How the face cascades are run: one search finds faces with ``cascades[0]``, or with
    the next cascade where it finds none."""

    cascades: tuple[str, ...]
    scale_factor: float  # detectMultiScale's step between window sizes
    min_neighbours: int  # windows that must agree on a face whose eyes are found
    sure_neighbours: int  # ... and on one whose eyes are not (SURE_NEIGHBOURS)
    min_side: float = 0.0  # smallest face side in photo pixels (MIN_FACE at least)


PLAIN = _Search(("haarcascade_frontalface_alt2.xml",), 1.1, 5, SURE_NEIGHBOURS)
# The retry on a padded photo (see detect_faces). Only a face cut by the photo's edges can be
# missed upright yet found padded, and such a face fills most of the photo: the retry looks only
# for faces at least TIGHT_MIN_SIDE of the photo's shorter side (real ones on the benchmark were
# >= 0.75, false ones mostly < 0.5), which is what lets it take finer steps, a second cascade and
# fewer agreeing windows. Of 58 tight crops that the plain search missed it finds 52 (2 of them
# off by over 15 px); the plain search, padded, finds 38. On 600 other crops: 97.3% found, against
# 96.3% needing SURE_NEIGHBOURS windows for a face without eyes, and 78.3% before the retry.
# The price: in 43 AFHQ animal photos it finds 11 "faces" more than the plain search's 3.
TIGHT = _Search(
    ("haarcascade_frontalface_alt2.xml", "haarcascade_frontalface_default.xml"), 1.05, 3, 5
)
TIGHT_MIN_SIDE = 0.5
PAD_SHARE = 0.25  # the retry pads each side by this share of the photo's longer side


def detect_faces(photo: Image.Image, max_side: int = DETECT_MAX_SIDE) -> list[Face]:
    """Faces in an RGB photo, largest first; [] when none is found. The photo is searched
    upright, then turned by each further angle of SEARCH_ANGLES until a search finds a face
    with both eyes; failing that, the first search that found any face is returned. A photo
    where no face is found at all is searched again padded on every side (``_padded``) for
    one face filling most of it: a tightly cropped face touches the edges, and the cascade
    finds a face only with some margin around it."""
    gray = np.asarray(photo.convert("L"))  # [H, W] uint8
    faces = _search(gray, PLAIN, max_side)
    if faces:
        return faces
    h, w = gray.shape
    pad = round(PAD_SHARE * max(w, h))
    tight = replace(TIGHT, min_side=TIGHT_MIN_SIDE * min(w, h))
    back = np.array([[1.0, 0.0, -pad], [0.0, 1.0, -pad]])  # padded -> photo

    def inside(f: Face) -> bool:  # centred in the photo, not in the made-up margin
        x, y, bw, bh = f.box
        return 0 <= x + bw / 2 - pad < w and 0 <= y + bh / 2 - pad < h

    return [_moved(f, back) for f in _search(_padded(gray, pad), tight, max_side, inside)]


def _search(
    gray: np.ndarray, search: _Search, max_side: int, keep: Callable[[Face], bool] | None = None
) -> list[Face]:
    """detect_faces' search of ``gray`` over SEARCH_ANGLES: faces that ``keep`` accepts."""
    first: list[Face] = []
    for angle in SEARCH_ANGLES:
        faces = [f for f in _detect_turned(gray, angle, search, max_side) if not keep or keep(f)]
        if any(f.eyes_found for f in faces):
            return sorted(faces, key=lambda f: -f.area)
        first = first or faces
    return sorted(first, key=lambda f: -f.area)


def _padded(gray: np.ndarray, pad: int) -> np.ndarray:
    """``gray`` with ``pad`` pixels more on every side: its edge rows and columns repeated,
    then blurred (sigma 5% of the photo's longer side) so that the repeated streaks look like
    no face's edges. Of 58 tight crops the plain search missed, it found 38 in this padding,
    36 in a blurred mirror, 34 in unblurred edges, 33 in a mirror and 32 in flat grey (and
    at most 40 with twice the padding, which costs more)."""
    cv2 = opencv()
    h, w = gray.shape
    out = cv2.copyMakeBorder(gray, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
    blurred = cv2.GaussianBlur(out, (0, 0), 0.05 * max(w, h))
    blurred[pad : pad + h, pad : pad + w] = gray
    return blurred


def _detect_turned(gray: np.ndarray, angle: float, search: _Search, max_side: int) -> list[Face]:
    """Faces found in ``gray`` turned by ``angle`` degrees (counter-clockwise), in the
    coordinates of ``gray``; a face's box is then the bounding box of its turned box."""
    if angle == 0:
        return _detect_upright(gray, search, max_side)
    cv2 = opencv()
    h, w = gray.shape
    c, s = abs(np.cos(np.deg2rad(angle))), abs(np.sin(np.deg2rad(angle)))
    size = (int(np.ceil(w * c + h * s)), int(np.ceil(w * s + h * c)))  # the whole photo
    R = _turn(angle, (w / 2, h / 2), (size[0] / 2, size[1] / 2))
    turned = cv2.warpAffine(
        gray, _to_cv(R), size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )
    back = invert(R)
    return [_moved(f, back) for f in _detect_upright(turned, search, max_side)]


def _detect_upright(gray: np.ndarray, search: _Search, max_side: int) -> list[Face]:
    """Frontal faces (searched at most max_side large), each with its eyes when the eye
    cascade finds them; a face with no eyes found needs ``search.sure_neighbours`` agreeing
    windows."""
    cv2 = opencv()
    h, w = gray.shape
    scale = min(1.0, max_side / max(h, w))
    size = (max(round(w * scale), 1), max(round(h * scale), 1))
    small = gray if scale == 1.0 else cv2.resize(gray, size, interpolation=cv2.INTER_AREA)
    sx, sy = size[0] / w, size[1] / h
    side = max(MIN_FACE, round(search.min_side * scale))
    if side > min(size):
        return []
    for name in search.cascades:
        rects, neighbours = _cascade(name).detectMultiScale2(
            small,
            scaleFactor=search.scale_factor,
            minNeighbors=search.min_neighbours,
            minSize=(side, side),
        )
        faces = []
        for (x, y, bw, bh), n in zip(rects, np.ravel(neighbours), strict=True):
            box = (float(x / sx), float(y / sy), float(bw / sx), float(bh / sy))
            eyes = _find_eyes(gray, box)
            if eyes or n >= search.sure_neighbours:
                faces.append(Face(box, eyes or _box_eyes(box), float(n), eyes is not None))
        if faces:
            return faces
    return []


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


def frame_transform(face: Face, frame: Frame = CELEBA) -> np.ndarray:
    """Photo -> aligned frame: the face's eyes onto the frame's (TEMPLATE_EYES for CelebA)."""
    return similarity(face.eyes, frame.eyes)


def invert(M: np.ndarray) -> np.ndarray:
    A_inv = np.linalg.inv(M[:, :2])
    return np.hstack([A_inv, -A_inv @ M[:, 2:]])


def compose(M2: np.ndarray, M1: np.ndarray) -> np.ndarray:
    """M2 after M1."""
    return np.hstack([M2[:, :2] @ M1[:, :2], M2[:, :2] @ M1[:, 2:] + M2[:, 2:]])


def apply(M: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Points [N, 2] through M."""
    return np.asarray(points, dtype=np.float64) @ M[:, :2].T + M[:, 2]


def crop_square(crop: int, frame: Frame = CELEBA) -> tuple[int, int, int]:
    """(left, top, side) of the square that ``images.center_crop_resize(frame, size, crop)``
    takes from the frame (178x218 for CelebA): the model sees only this square."""
    w, h = frame.size
    side = min(crop or min(w, h), w, h)
    return (w - side) // 2, (h - side) // 2, side


def model_transform(M: np.ndarray, crop: int, size: int, frame: Frame = CELEBA) -> np.ndarray:
    """Photo -> model input pixels (size x size): the alignment, then crop and resize."""
    left, top, side = crop_square(crop, frame)
    k = size / side
    return compose(np.array([[k, 0.0, -left * k], [0.0, k, -top * k]]), M)


def made_up_share(
    photo_size: tuple[int, int], M: np.ndarray, crop: int, frame: Frame = CELEBA
) -> float:
    """The share (0 to 1) of the model's input, ``crop_square(crop)`` of the frame of M
    (photo -> frame), that lies outside a photo of ``photo_size`` (width, height): what
    warp_to_frame makes up. The model's input size does not matter: resizing keeps shares."""
    left, top, side = crop_square(crop, frame)
    square = np.array([[left, top], [left + side, top], [left + side, top + side]])
    square = np.vstack([square, [[left, top + side]]]).astype(np.float64)
    quad = apply(invert(M), square)  # the model's input in the photo: a convex quadrilateral
    inside = _area(_clip(quad, photo_size)) / _area(quad)
    return float(min(max(1.0 - inside, 0.0), 1.0))


def _clip(polygon: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """The convex ``polygon`` [N, 2] cut to the rectangle [0, width] x [0, height]
    (Sutherland-Hodgman: against each side in turn)."""
    for axis, bound, sign in ((0, 0.0, 1), (0, size[0], -1), (1, 0.0, 1), (1, size[1], -1)):
        if len(polygon) == 0:
            break
        d = sign * (polygon[:, axis] - bound)  # >= 0: on the rectangle's side
        out = []
        for i in range(len(polygon)):
            j = (i + 1) % len(polygon)
            if d[i] >= 0:
                out.append(polygon[i])
            if d[i] * d[j] < 0:  # the edge crosses the side
                out.append(polygon[i] + (polygon[j] - polygon[i]) * d[i] / (d[i] - d[j]))
        polygon = np.array(out).reshape(-1, 2)
    return polygon


def _area(polygon: np.ndarray) -> float:
    """Area of a simple polygon [N, 2] (shoelace)."""
    x, y = polygon.T if len(polygon) else (np.zeros(0), np.zeros(0))
    return float(abs(x @ np.roll(y, -1) - y @ np.roll(x, -1)) / 2)


# ---------------------------------------------------------------------- warping
# Callers warn when more of the model's input than this is made up. For scale: a photo cut just
# above the head and at the chin makes up 21% of it, one cut at the hairline and the chin 59%.
MADE_UP_WARN = 0.25
FILLS = ("edge", "blur", "mirror")  # warp_to_frame's ways to fill past the photo


def warp_to_frame(
    photo: Image.Image, M: np.ndarray, fill: str = "edge", frame: Frame = CELEBA
) -> Image.Image:
    """The aligned frame (178x218 for CelebA) of ``photo`` under M (photo -> frame),
    bicubic. Where the frame reaches past the photo its pixels are made up
    (``made_up_share`` says how much of the model's input): "edge" repeats the edge pixels,
    as img_align_celeba does (so do the images CelebA models learn from), "blur" blurs
    those streaks, "mirror" reflects the photo at its edges (around a tight crop: more
    faces). A CelebA model tolerates "edge" best: on 294 tight crops its output over the
    photo's own pixels moved 5.4 levels (of 255) from its output with the true
    surroundings, against 5.5 with "blur" and 6.5 with "mirror" (``python
    benchmarks/align_tight.py --model``)."""
    if fill not in FILLS:
        raise StarGANError(f"unknown fill {fill!r}: one of {', '.join(FILLS)}")
    w, h = frame.size
    corners = apply(invert(M), np.array([[0, 0], [w, 0], [0, h], [w, h]]))
    x0, y0 = np.floor(corners.min(0)).astype(int) - 2
    x1, y1 = np.ceil(corners.max(0)).astype(int) + 2
    k = min(1.0, float(np.sqrt(abs(np.linalg.det(M[:, :2])))))  # frame px per photo px
    region, R = _region(photo, (int(x0), int(y0), int(x1), int(y1)), k, fill)
    return _affine(region, invert(compose(M, invert(R))), frame.size)


def _region(
    photo: Image.Image, box: tuple[int, int, int, int], k: float, fill: str = "edge"
) -> tuple[Image.Image, np.ndarray]:
    """The photo's pixels in ``box`` (x0, y0, x1, y1, which may reach outside: it is filled
    there as warp_to_frame's ``fill`` says), shrunk by ``k`` <= 1 with Pillow's antialiasing
    resize (an affine warp alone would alias), and R, the map photo -> region. Shrinking
    before padding also keeps memory to about the frame's size, however large the photo."""
    x0, y0, x1, y1 = box
    cx0, cy0 = min(max(x0, 0), photo.width - 1), min(max(y0, 0), photo.height - 1)
    cx1, cy1 = max(min(x1, photo.width), cx0 + 1), max(min(y1, photo.height), cy0 + 1)
    size = (max(round((cx1 - cx0) * k), 1), max(round((cy1 - cy0) * k), 1))
    inside = photo.resize(size, Image.BICUBIC, box=(cx0, cy0, cx1, cy1), reducing_gap=None)
    kx, ky = size[0] / (cx1 - cx0), size[1] / (cy1 - cy0)
    left, top = int(np.ceil((cx0 - x0) * kx)), int(np.ceil((cy0 - y0) * ky))
    pad = ((top, int(np.ceil((y1 - cy1) * ky))), (left, int(np.ceil((x1 - cx1) * kx))), (0, 0))
    R = np.array([[kx, 0.0, left - cx0 * kx], [0.0, ky, top - cy0 * ky]])
    pixels = np.asarray(inside)  # [h, w, 3]
    # "symmetric" repeats the edge pixel once (no kink at the edge), and past a pad wider than
    # the photo numpy mirrors again: the pattern tiles whatever the size
    region = Image.fromarray(np.pad(pixels, pad, mode="symmetric" if fill == "mirror" else "edge"))
    if fill == "blur":
        made_up = Image.new("L", region.size, 255)
        made_up.paste(0, (left, top, left + size[0], top + size[1]))
        blurred = region.filter(ImageFilter.GaussianBlur(BLUR_SIGMA * max(size)))
        region = Image.composite(blurred, region, made_up)
    return region, R


def _affine(im: Image.Image, out_to_in: np.ndarray, size: tuple[int, int]) -> Image.Image:
    """Pillow's affine warp; ``out_to_in`` maps output coordinates to input ones."""
    return im.transform(size, Image.AFFINE, tuple(out_to_in.ravel()), resample=Image.BICUBIC)


def paste_back(
    photo: Image.Image, face: Image.Image, M: np.ndarray, crop: int, frame: Frame = CELEBA
) -> Image.Image:
    """``photo`` with a translated model-size face (from the frame of M, preprocessed with
    ``crop``) warped back and blended in through a feathered mask: no seam at its border."""
    size = face.width
    to_model = model_transform(M, crop, size, frame)
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


# ---------------------------------------------------------------------- photos to model inputs
@dataclass(frozen=True)
class AlignedFace:
    """One face of a photo as a model input."""

    index: int  # the face's rank in the photo (0: the largest)
    image: Image.Image  # size x size: the aligned frame, centre-cropped and resized
    M: np.ndarray  # photo -> frame (paste_back's transform)
    made_up: float  # the share of the model input outside the photo (made_up_share)


def align_photo(
    photo: Image.Image,
    name: str,
    size: int,
    crop: int,
    resize_filter: str,
    *,
    frame: Frame = CELEBA,
    all_faces: bool = False,
    note: Callable[[str], None] | None = None,
    every_face_hint: str = "",
) -> list[AlignedFace]:
    """The largest face of ``photo`` (every face with ``all_faces``) warped into ``frame``
    and prepared as a model's training images were (``crop``, ``size``, ``resize_filter``).
    ``note`` (if given) hears when a photo has several faces and when much of a face's
    model input lies outside the photo (made up by warp_to_frame); ``every_face_hint``
    ends the first note (how to ask for every face). No face: NoFaceError naming ``name``."""
    faces = detect_faces(photo)
    if not faces:
        raise NoFaceError(
            f"no face found in {name} (try without --align, or a larger, frontal photo)"
        )
    if len(faces) > 1 and not all_faces:
        if note:
            note(f"note: {len(faces)} faces found in {name}; using the largest{every_face_hint}")
        faces = faces[:1]
    out = []
    for i, face in enumerate(faces):
        M = frame_transform(face, frame)
        share = made_up_share(photo.size, M, crop, frame)
        if note and share > MADE_UP_WARN:
            which = "" if len(faces) == 1 else f" (face {i})"
            note(
                f"warning: {share:.0%} of the model's input for {name}{which} lies outside "
                "the photo and is made up (a photo with more room around the face does better)"
            )
        aligned = warp_to_frame(photo, M, frame=frame)
        image = center_crop_resize(aligned, size, crop, resize_filter)
        out.append(AlignedFace(i, image, M, share))
    return out
