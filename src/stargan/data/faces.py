"""Deterministic procedural faces: StarGAN's built-in, download-free dataset.

Every image is drawn from a :class:`FaceParams` vector, so the ideal translation of any image is
known exactly: change the labelled factors (hair colour, sex, age, expression), keep every latent
factor (identity, style, pose, scene, noise) and render again. :func:`counterfactual` does that
change; scoring code can compare a generator's output against ``render(counterfactual(...))``.

Design rules that keep the counterfactual meaningful:

* Every visual feature is a pure function of (labelled attributes, latent uniforms). Hair style
  and facial hair depend on ``male``; wrinkles, grey strands and duller skin on ``young``; the
  hair colour recolours hair (and brows/beard) only; the expression moves mouth, brows and eyes.
* Pixel noise comes from ``np.random.default_rng(params.noise_seed)``, so a counterfactual has the
  very same noise as its source.
* Antialiasing: shapes are drawn with PIL at 4x the target size, then box-filtered down.

Coordinates: shapes are written in *face units* (origin at the head centre, y pointing down,
1.0 = head half-height) and mapped to pixels by :class:`_Frame`, which applies pose and scale.
"""

from __future__ import annotations

import bisect
import colorsys
import dataclasses
import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

__all__ = [
    "ATTR_NAMES",
    "EXPRESSIONS",
    "HAIR_COLOURS",
    "HAIR_GROUP",
    "SPLITS",
    "FaceParams",
    "attr_vector",
    "counterfactual",
    "expression_index",
    "params_for",
    "render",
    "render_batch",
    "sample_params",
]

ATTR_NAMES: tuple[str, ...] = ("Black_Hair", "Blond_Hair", "Brown_Hair", "Male", "Young")
HAIR_GROUP: tuple[str, ...] = ("Black_Hair", "Blond_Hair", "Brown_Hair")  # mutually exclusive
EXPRESSIONS: tuple[str, ...] = (
    "angry",
    "contemptuous",
    "disgusted",
    "fearful",
    "happy",
    "neutral",
    "sad",
    "surprised",
)
# red and grey are drawn but unlabelled: their hair group is all zeros, as in CelebA.
HAIR_COLOURS: tuple[str, ...] = ("black", "blond", "brown", "red", "grey")
SPLITS = {"train": 0, "test": 1}

_MIN_SIZE, _MAX_SIZE = 16, 256
_SUPERSAMPLE = 4  # draw at 4x, then box-filter down: cheap, good antialiasing
_P_YOUNG, _P_MALE = 0.65, 0.5
# Hair colour given age (HAIR_COLOURS order). Grey is likelier when old; the marginals come out
# near black 0.30, brown 0.30, blond 0.20, red 0.10, grey 0.10.
_HAIR_P_YOUNG = (0.32, 0.22, 0.32, 0.10, 0.04)
_HAIR_P_OLD = (0.27, 0.16, 0.27, 0.10, 0.20)
# Cumulative bounds for inverse-CDF sampling with bisect (the last bound, 1.0, is implied).
_HAIR_CUM_YOUNG = tuple(itertools.accumulate(_HAIR_P_YOUNG))[:-1]
_HAIR_CUM_OLD = tuple(itertools.accumulate(_HAIR_P_OLD))[:-1]
_HAIR_LABEL = {"black": "Black_Hair", "blond": "Blond_Hair", "brown": "Brown_Hair"}
_LABEL_HAIR = {label: colour for colour, label in _HAIR_LABEL.items()}

Colour = tuple[int, int, int, int]
_HAIR_RGB = {
    "black": (32, 27, 25),
    "blond": (226, 192, 118),
    "brown": (112, 70, 40),
    "red": (178, 70, 32),
    "grey": (176, 176, 174),
}
_GREY_STRANDS = (214, 214, 212)
# Colour ramps a latent uniform walks along: light to dark skin; brown, hazel, green, blue eyes.
_SKIN_RAMP = (
    (255, 226, 200),
    (242, 196, 160),
    (226, 172, 132),
    (196, 134, 96),
    (146, 92, 60),
    (98, 62, 42),
)
_IRIS_RAMP = (
    (70, 42, 24),
    (104, 66, 34),
    (120, 104, 50),
    (70, 110, 70),
    (60, 100, 150),
    (110, 124, 134),
)
_LIP_RED = (178, 62, 72)
_MOUTH_DARK: Colour = (62, 20, 26, 255)
_TEETH: Colour = (238, 234, 224, 255)
_EYE_WHITE = (240, 238, 232)
_LASH: Colour = (38, 28, 28, 255)


def _const(a: np.ndarray) -> np.ndarray:
    """Read-only module constant: shared templates must never be edited in place."""
    a.flags.writeable = False
    return a


def _unit_circle(n: int) -> np.ndarray:
    a = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return _const(np.stack([np.cos(a), np.sin(a)], axis=1))


# 28 vertices: at 128 px the largest ellipse deviates from a true one by < 1/4 output pixel.
_CIRCLE = _unit_circle(28)

# Layout in face units.
_HEAD_Y = 0.49  # head centre, fraction of image height
_HEAD_R = 0.30  # head half-height, fraction of image size (before the scale latent)
_EYE_Y = -0.02
_BROW_Y = -0.27
_NOSE_Y = 0.30
_MOUTH_Y = 0.56
_CHIN = 1.08


@dataclass(frozen=True)
class FaceParams:
    """Everything that decides one face image.

    The first four fields are the labelled factors a translator may change. All other float
    fields are latent uniforms in [0, 1) (identity, style, pose, scene) that :func:`render` maps
    to geometry and colour; ``noise_seed`` seeds the pixel noise. A translation keeps them all.
    """

    # labelled factors
    hair_colour: str
    male: bool
    young: bool
    expression: str
    # identity
    face_width: float
    jaw: float
    skin_tone: float
    eye_colour: float
    eye_spacing: float
    nose_size: float
    mouth_width: float
    brow_weight: float
    # style
    hair_style: float
    hair_volume: float
    hair_fringe: float
    hair_shade: float
    facial_hair: float
    age_amount: float
    clothes_colour: float
    neckline: float
    # scene and pose
    bg_hue: float
    bg_spread: float
    bg_value: float
    bg_angle: float
    pose_dx: float
    pose_dy: float
    pose_roll: float
    scale: float
    light_angle: float
    light_strength: float
    noise_level: float
    noise_seed: int

    def __post_init__(self) -> None:
        """Reject unknown labels here, so a bad value fails where it was made, not at render."""
        if self.hair_colour not in HAIR_COLOURS:
            raise ValueError(f"hair_colour {self.hair_colour!r} not in {HAIR_COLOURS}")
        if self.expression not in EXPRESSIONS:
            raise ValueError(f"expression {self.expression!r} not in {EXPRESSIONS}")


# Latent float fields in declaration order; sample_params draws them in this order.
_LATENT_FIELDS: tuple[str, ...] = tuple(
    f.name for f in dataclasses.fields(FaceParams) if f.type in ("float", float)
)


# ---------------------------------------------------------------------------------------------
# Sampling and labels


def sample_params(rng: np.random.Generator) -> FaceParams:
    """Draw one face. Attributes are independent except grey hair, which is likelier when old."""
    # One vectorised draw for everything: rng calls dominate the cost of a sample.
    u = rng.random(4 + len(_LATENT_FIELDS)).tolist()
    young, male = u[0] < _P_YOUNG, u[1] < _P_MALE
    hair = HAIR_COLOURS[bisect.bisect_right(_HAIR_CUM_YOUNG if young else _HAIR_CUM_OLD, u[2])]
    expression = EXPRESSIONS[int(u[3] * len(EXPRESSIONS))]
    noise_seed = int(rng.integers(0, 2**62))
    latents = dict(zip(_LATENT_FIELDS, u[4:], strict=True))
    return FaceParams(hair, male, young, expression, **latents, noise_seed=noise_seed)


def _split_id(split: str) -> int:
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; valid splits: {sorted(SPLITS)}")
    return SPLITS[split]


def params_for(seed: int, split: str, index: int) -> FaceParams:
    """The face at ``index`` of ``split``: a pure function of its arguments, so any image of the
    dataset can be re-made (or translated ideally) without storing anything."""
    split_id = _split_id(split)
    if seed < 0 or index < 0:
        raise ValueError(f"seed and index must be >= 0, got seed={seed}, index={index}")
    return sample_params(np.random.default_rng([seed, split_id, index]))


def attr_vector(params: FaceParams) -> np.ndarray:
    """float32 [5] 0/1 labels in ATTR_NAMES order; red and grey hair leave the hair group 0."""
    on = {_HAIR_LABEL.get(params.hair_colour), "Male" if params.male else None}
    if params.young:
        on.add("Young")
    return np.array([name in on for name in ATTR_NAMES], dtype=np.float32)


def expression_index(params: FaceParams) -> int:
    """Index of the expression in EXPRESSIONS."""
    return EXPRESSIONS.index(params.expression)


def _target_hair(current: str, hair_bits: np.ndarray) -> str:
    on = [name for name, bit in zip(HAIR_GROUP, hair_bits, strict=True) if bit]
    if len(on) > 1:
        raise ValueError(f"at most one of {HAIR_GROUP} may be set, got {on}")
    if on:
        return _LABEL_HAIR[on[0]]
    if current in _HAIR_LABEL:
        raise ValueError(
            f"target hair group is all zero but the hair is {current!r}: "
            "there is no labelled colour to translate to"
        )
    return current  # red/grey already carry the all-zero label


def _target_expression(expression: str | int) -> str:
    if isinstance(expression, str):
        if expression not in EXPRESSIONS:
            raise ValueError(f"expression {expression!r} not in {EXPRESSIONS}")
        return expression
    index = int(expression)
    if index != expression or not 0 <= index < len(EXPRESSIONS):
        raise ValueError(f"expression index must be an int in [0, {len(EXPRESSIONS)}), got {index}")
    return EXPRESSIONS[index]


def counterfactual(
    params: FaceParams,
    attrs: np.ndarray | Sequence[float] | None = None,
    expression: str | int | None = None,
) -> FaceParams:
    """The ideal translation of ``params``: labelled factors set to the targets, latents kept.

    ``attrs`` is a 0/1 vector in ATTR_NAMES order with at most one hair colour set. An all-zero
    hair group is only valid for hair that is already unlabelled (red or grey).
    """
    changes: dict[str, object] = {}
    if attrs is not None:
        target = np.asarray(attrs, dtype=np.float64).reshape(-1)
        if target.shape != (len(ATTR_NAMES),):
            raise ValueError(f"attrs must have {len(ATTR_NAMES)} values {ATTR_NAMES}")
        if not np.all((target == 0) | (target == 1)):
            raise ValueError(f"attrs must be 0/1, got {target.tolist()}")
        bits = target.astype(bool)
        changes["hair_colour"] = _target_hair(params.hair_colour, bits[: len(HAIR_GROUP)])
        changes["male"] = bool(bits[ATTR_NAMES.index("Male")])
        changes["young"] = bool(bits[ATTR_NAMES.index("Young")])
    if expression is not None:
        changes["expression"] = _target_expression(expression)
    return dataclasses.replace(params, **changes)


# ---------------------------------------------------------------------------------------------
# Derived look: every visual decision in one place, from (labels, latents)


@dataclass(frozen=True)
class _Expr:
    """Brow/eye geometry of one expression (face units; negative dy = up)."""

    brow_inner: float
    brow_outer: float
    brow_arch: float
    brow_left: float  # extra raise of the left brow (contempt)
    eye_open: float
    eye_left: float  # extra narrowing of the left eye


_EXPRS = {
    "neutral": _Expr(0.0, 0.0, 0.04, 0.0, 1.0, 0.0),
    "happy": _Expr(-0.02, -0.02, 0.06, 0.0, 0.62, 0.0),
    "sad": _Expr(-0.13, 0.07, 0.0, 0.0, 0.8, 0.0),
    "angry": _Expr(0.14, -0.06, 0.0, 0.0, 0.5, 0.0),
    "surprised": _Expr(-0.15, -0.12, 0.10, 0.0, 1.55, 0.0),
    "fearful": _Expr(-0.16, -0.03, -0.02, 0.0, 1.45, 0.0),
    "disgusted": _Expr(0.08, 0.03, 0.0, 0.0, 0.55, 0.0),
    "contemptuous": _Expr(0.0, 0.0, 0.04, -0.1, 0.9, 0.3),
}


@dataclass(frozen=True)
class _Look:
    """Resolved geometry, styles and colours of one face."""

    w: float  # head half-width
    jaw: float  # jaw taper
    eye_sep: float
    nose: float
    mouth_w: float
    brow_w: float
    hair_top: float  # hair thickness above the head
    hair_style: str
    fringe: str
    part_x: float
    facial_hair: str
    age: float  # 0 when young
    expr: _Expr
    skin: Colour
    skin_dark: Colour
    skin_line: Colour
    lip: Colour
    hair: Colour
    hair_back: Colour  # hair behind the head, in shadow
    hair_light: Colour
    brow: Colour
    beard: Colour
    stubble: Colour
    iris: Colour
    eye_white: Colour
    clothes: Colour
    bg: tuple[tuple[int, int, int], tuple[int, int, int]]


def _u8(c: float) -> int:
    return 0 if c <= 0 else (255 if c >= 255 else int(c + 0.5))


def _rgba(rgb: Sequence[float]) -> Colour:
    return (_u8(rgb[0]), _u8(rgb[1]), _u8(rgb[2]), 255)


def _mix(a: Sequence[float], b: Sequence[float], t: float) -> tuple[float, float, float]:
    return (a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t, a[2] + (b[2] - a[2]) * t)


def _ramp(table: Sequence[Sequence[float]], u: float) -> tuple[float, float, float]:
    pos = u * (len(table) - 1)
    i = min(int(pos), len(table) - 2)
    return _mix(table[i], table[i + 1], pos - i)


def _hsv(h: float, s: float, v: float) -> tuple[float, float, float]:
    r, g, b = colorsys.hsv_to_rgb(h % 1.0, s, v)
    return (255 * r, 255 * g, 255 * b)


# Style choices: (upper bound of the latent uniform, style), first match wins. Hair style
# depends on sex as in CelebA: men mostly short (some medium), women mostly long.
_MALE_HAIR = ((0.82, "short"), (1.0, "medium"))
_FEMALE_HAIR = ((0.55, "long"), (0.8, "shoulder"), (1.0, "bob"))
_MALE_FRINGE = ((0.55, "part"), (0.8, "swept"), (1.0, "straight"))
_FEMALE_FRINGE = ((0.45, "part"), (0.75, "bangs"), (1.0, "swept"))
# About 40% of men are clean-shaven; women never get facial hair.
_FACIAL_HAIR = (
    (0.4, "none"),
    (0.58, "stubble"),
    (0.72, "moustache"),
    (0.84, "goatee"),
    (1.0, "beard"),
)


def _pick(choices: tuple[tuple[float, str], ...], u: float) -> str:
    return next((name for bound, name in choices if u < bound), choices[-1][1])


def _skin(p: FaceParams, age: float) -> tuple[float, float, float]:
    skin = _ramp(_SKIN_RAMP, p.skin_tone)
    if age:  # older skin: a little greyer and duller
        grey = sum(skin) / 3
        skin = _mix(skin, (grey, grey, grey), 0.25 * age)
        skin = tuple(c * (1 - 0.08 * age) for c in skin)
    return skin


def _hair_rgb(p: FaceParams, age: float) -> tuple[float, float, float]:
    """Hair colour with a per-person shade (a latent); age mixes in grey strands."""
    shade = 0.85 + 0.3 * p.hair_shade
    base = tuple(c * shade for c in _HAIR_RGB[p.hair_colour])
    return _mix(base, _GREY_STRANDS, 0.15 + 0.25 * age) if age else base


def _scene_colours(p: FaceParams) -> tuple[Colour, tuple]:
    saturation = 0.25 + 0.45 * ((p.clothes_colour * 7) % 1)  # decorrelated from the hue
    clothes = _hsv(p.clothes_colour, saturation, 0.3 + 0.5 * p.neckline)
    value = 0.55 + 0.4 * p.bg_value
    bg1 = _hsv(p.bg_hue, 0.12 + 0.3 * p.bg_spread, value)
    bg2 = _hsv(p.bg_hue + 0.05 + 0.25 * p.bg_spread, 0.2 + 0.3 * p.bg_value, value * 0.75)
    bg = (tuple(int(c) for c in bg1), tuple(int(c) for c in bg2))
    return _rgba(clothes), bg


def _derive(p: FaceParams) -> _Look:
    """Map (labels, latents) to a concrete look. Pure: the counterfactual relies on it."""
    age = 0.0 if p.young else 0.4 + 0.6 * p.age_amount
    skin = _skin(p, age)
    hair = _hair_rgb(p, age)
    clothes, bg = _scene_colours(p)
    lip = _mix(skin, _LIP_RED, (0.45 if p.male else 0.6) - 0.15 * age)
    return _Look(
        w=0.74 + 0.1 * p.face_width + (0.04 if p.male else 0.0),
        jaw=0.16 + 0.18 * p.jaw - (0.08 if p.male else 0.0),
        eye_sep=0.30 + 0.06 * p.eye_spacing,
        nose=0.85 + 0.3 * p.nose_size + (0.1 if p.male else 0.0),
        mouth_w=0.29 + 0.07 * p.mouth_width,
        brow_w=(0.1 if p.male else 0.075) * (0.85 + 0.3 * p.brow_weight),
        hair_top=(0.06 if p.male else 0.1) + 0.16 * p.hair_volume,
        hair_style=_pick(_MALE_HAIR if p.male else _FEMALE_HAIR, p.hair_style),
        fringe=_pick(_MALE_FRINGE if p.male else _FEMALE_FRINGE, p.hair_fringe),
        part_x=0.55 * (p.hair_fringe * 3 % 1 - 0.5),
        facial_hair=_pick(_FACIAL_HAIR, p.facial_hair) if p.male else "none",
        age=age,
        expr=_EXPRS[p.expression],
        skin=_rgba(skin),
        skin_dark=_rgba(tuple(c * 0.8 for c in skin)),
        skin_line=_rgba(_mix(skin, (60, 30, 25), 0.3 + 0.2 * age)),
        lip=_rgba(lip),
        hair=_rgba(hair),
        hair_back=_rgba(tuple(c * 0.8 for c in hair)),
        hair_light=_rgba(_mix(hair, (255, 250, 235), 0.22)),
        brow=_rgba(_mix(hair, (40, 28, 22), 0.45)),
        beard=_rgba(_mix(hair, (30, 22, 18), 0.15)),
        stubble=_rgba(_mix(skin, _mix(hair, (30, 22, 18), 0.5), 0.38)),
        iris=_rgba(_ramp(_IRIS_RAMP, p.eye_colour)),
        eye_white=_rgba(_mix(_EYE_WHITE, skin, 0.12 + 0.15 * age)),
        clothes=clothes,
        bg=bg,
    )


# ---------------------------------------------------------------------------------------------
# Drawing primitives


class _Sketch:
    """Collects shapes in face units, then draws them with one transform.

    Transforming every point of a face in a single matrix product (instead of one per shape)
    keeps the per-shape Python/numpy overhead low; the renderer feeds training, so it counts.
    """

    def __init__(self) -> None:
        self._pts: list[np.ndarray | None] = []  # None: an ellipse, filled in by draw()
        self._ops: list[tuple[int, Colour, float]] = []  # (points, fill, line width; 0 = polygon)
        self._ellipses: list[tuple[float, float, float, float]] = []
        self._ellipse_slots: list[int] = []

    def poly(self, pts: np.ndarray, fill: Colour) -> None:
        self._pts.append(pts)
        self._ops.append((len(pts), fill, 0.0))

    def line(self, pts: np.ndarray, fill: Colour, width: float) -> None:
        self._pts.append(pts)
        self._ops.append((len(pts), fill, width))

    def ellipse(self, cx: float, cy: float, rx: float, ry: float, fill: Colour) -> None:
        """Axis-aligned in face units (so it turns with the head); built in one batch later."""
        self._ellipse_slots.append(len(self._pts))
        self._ellipses.append((cx, cy, rx, ry))
        self._pts.append(None)
        self._ops.append((len(_CIRCLE), fill, 0.0))

    def draw(self, draw: ImageDraw.ImageDraw, frame: _Frame) -> None:
        """Map all points to pixels at once and issue the PIL calls in order (back to front)."""
        if not self._pts:
            return
        if self._ellipses:
            e = np.array(self._ellipses)  # [m, 4]: cx, cy, rx, ry
            polys = _CIRCLE * e[:, None, 2:] + e[:, None, :2]  # [m, n, 2]
            for slot, poly in zip(self._ellipse_slots, polys, strict=True):
                self._pts[slot] = poly
        flat = (np.concatenate(self._pts) @ frame.m.T + frame.origin).ravel().tolist()
        i = 0
        for n, fill, width in self._ops:
            xy, i = flat[i : i + 2 * n], i + 2 * n
            if width == 0.0:
                draw.polygon(xy, fill=fill)
            else:
                px = max(1, int(width * frame.k + 0.5))
                draw.line(xy, fill=fill, width=px, joint="curve" if n > 2 else None)


@dataclass(frozen=True)
class _Frame:
    """Face units -> pixels: ``pixel = m @ point + origin``; ``k`` pixels per face unit."""

    m: np.ndarray  # [2, 2] scale and roll
    origin: tuple[float, float]
    k: float


def _frames(p: FaceParams, size_px: int) -> tuple[_Frame, _Frame]:
    """Head frame (rolled) and body frame (unrolled: the head tilts, the shoulders stay level)."""
    ox, oy, k = _head_frame(p, size_px)
    roll = math.radians((p.pose_roll - 0.5) * 16.0)
    c, s = math.cos(roll), math.sin(roll)
    head = _Frame(k * np.array([[c, -s], [s, c]]), (ox, oy), k)
    body = _Frame(k * np.eye(2), (ox, oy), k)
    return head, body


def _head_frame(p: FaceParams, size_px: float) -> tuple[float, float, float]:
    """Head centre (pixels) and pixels per face unit; pose jitter is a few % of the size."""
    ox = size_px * (0.5 + (p.pose_dx - 0.5) * 0.06)
    oy = size_px * (_HEAD_Y + (p.pose_dy - 0.5) * 0.05)
    k = size_px * _HEAD_R * (0.93 + 0.12 * p.scale)
    return ox, oy, k


def _arc(
    cx: float, cy: float, rx: float, ry: float, a0: float, a1: float, n: int = 20
) -> np.ndarray:
    """Points on an ellipse from angle a0 to a1 (degrees; -90 is the top, y points down)."""
    a = np.arange(n) * math.radians((a1 - a0) / (n - 1)) + math.radians(a0)
    out = np.empty((n, 2))
    out[:, 0] = np.cos(a) * rx + cx
    out[:, 1] = np.sin(a) * ry + cy
    return out


def _pts(*xy: tuple[float, float]) -> np.ndarray:
    return np.array(xy, dtype=np.float64)


def _mirror(pts: np.ndarray) -> np.ndarray:
    """Left-right mirror, reversed so a right-side path continues as the left side."""
    return (pts * (-1.0, 1.0))[::-1]


# ---------------------------------------------------------------------------------------------
# Face parts (face units)


_OUTLINE_UNIT = _unit_circle(48)
_OUTLINE_COS = _const(_OUTLINE_UNIT[:, 0])
_OUTLINE_Y = _const(_OUTLINE_UNIT[:, 1] * np.where(_OUTLINE_UNIT[:, 1] > 0, _CHIN, 1.0))
_OUTLINE_JAW = _const(np.clip(_OUTLINE_UNIT[:, 1], 0, None) ** 1.5)


def _face_outline(look: _Look) -> np.ndarray:
    """Head ellipse whose lower half narrows toward the chin (the jaw)."""
    out = np.empty((len(_OUTLINE_COS), 2))
    out[:, 0] = look.w * _OUTLINE_COS * (1 - look.jaw * _OUTLINE_JAW)
    out[:, 1] = _OUTLINE_Y
    return out


def _draw_body(pen: _Sketch, look: _Look, p: FaceParams) -> None:
    sh = 1.1 if p.male else 1.0
    neck = 0.4 if p.male else 0.33
    pen.poly(
        _pts(
            (-2.2, 3.0), (-1.75 * sh, 1.62), (-1.0 * sh, 1.3), (-0.45, 1.24),
            (0.45, 1.24), (1.0 * sh, 1.3), (1.75 * sh, 1.62), (2.2, 3.0),
        ),
        look.clothes,
    )  # fmt: skip
    depth = 1.35 + 0.35 * p.neckline  # V or scoop neckline, by a latent
    pen.poly(_pts((-neck, 0.3), (neck, 0.3), (neck, 1.24), (0.0, depth), (-neck, 1.24)), look.skin)
    pen.ellipse(0.0, 0.86, neck + 0.05, 0.22, look.skin_dark)  # shadow under the jaw


def _draw_ears(pen: _Sketch, look: _Look) -> None:
    for side in (-1, 1):
        pen.ellipse(side * look.w * 0.97, 0.02, 0.12, 0.21, look.skin_dark)
        pen.ellipse(side * look.w * 0.99, 0.02, 0.07, 0.14, look.skin)


_HAIRLINE_T = _const(np.linspace(1.0, -1.0, 11))


def _hairline(look: _Look, x_right: float, y0: float) -> np.ndarray:
    """Lower edge of the fringe, right to left; shape chosen by the fringe latent."""
    x = _HAIRLINE_T * x_right
    if look.fringe == "part":
        y = y0 - 0.24 * np.exp(-(((x - look.part_x) / 0.22) ** 2)) - 0.05 * (x / x_right) ** 2
    elif look.fringe == "bangs":
        y = np.full_like(x, -0.44) + 0.035 * (np.arange(11) % 2)
    elif look.fringe == "swept":
        y = y0 + 0.14 - 0.22 * (x + x_right) / (2 * x_right)
    else:
        y = y0 - 0.06 * (x / x_right) ** 2
    return np.stack([x, y], axis=1)


def _short_hair(look: _Look) -> tuple[list[np.ndarray], list[np.ndarray]]:
    w, top = look.w, 1 + look.hair_top
    y0 = -0.6 - 0.14 * look.age  # the hairline recedes with age
    right = _pts((w + 0.03, -0.14), (w - 0.0, 0.1), (w - 0.07, 0.1), (w - 0.09, -0.25))
    front = np.concatenate(
        [
            _arc(0, -0.02, w + 0.05, top, -168, -12),
            right,
            _pts((w - 0.17, y0 + 0.1)),
            _hairline(look, w - 0.26, y0),
            _mirror(np.concatenate([right, _pts((w - 0.17, y0 + 0.1))])),
        ]
    )
    return [], [front]


def _medium_hair(look: _Look) -> tuple[list[np.ndarray], list[np.ndarray]]:
    w, top = look.w, 1 + look.hair_top
    y0 = -0.52 - 0.1 * look.age
    back = _arc(0, -0.02, w + 0.1, top + 0.04, 20, -200)
    right = _pts((w + 0.12, 0.1), (w + 0.04, 0.36), (w - 0.05, 0.3), (w - 0.1, -0.1))
    front = np.concatenate(
        [
            _arc(0, -0.02, w + 0.1, top, -180, 0),
            right,
            _pts((w - 0.17, y0 + 0.08)),
            _hairline(look, w - 0.26, y0),
            _mirror(np.concatenate([right, _pts((w - 0.17, y0 + 0.08))])),
        ]
    )
    return [back], [front]


def _curtained_hair(
    look: _Look, length: float, spread: float
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Long, shoulder-length and bob styles: a back mass plus side curtains framing the face."""
    w, top = look.w, 1 + look.hair_top
    rb = _pts((w + spread + 0.04, 0.55), (w + spread, length), (w - 0.05, length + 0.1))
    back = np.concatenate([_arc(0, -0.04, w + spread, top + 0.04, 0, -180), rb * (-1, 1), rb[::-1]])
    curtain_end = min(length - 0.08, 1.3)
    right = _pts(
        (w + 0.1 + spread * 0.3, 0.45), (w + 0.04, curtain_end), (w - 0.1, curtain_end - 0.12),
        (w - 0.1, 0.5), (w - 0.09, 0.1), (w - 0.13, -0.3),
    )  # fmt: skip
    front = np.concatenate(
        [
            _arc(0, -0.02, w + 0.09, top, -180, 0),
            right,
            _hairline(look, w - 0.2, -0.52),
            _mirror(right),
        ]
    )
    return [back], [front]


def _hair_shapes(look: _Look) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """(behind-head polygons, in-front polygons) of the hair style."""
    if look.hair_style == "short":
        return _short_hair(look)
    if look.hair_style == "medium":
        return _medium_hair(look)
    length, spread = {"long": (1.75, 0.26), "shoulder": (1.05, 0.22), "bob": (0.5, 0.28)}[
        look.hair_style
    ]
    return _curtained_hair(look, length, spread)


def _draw_hair_front(pen: _Sketch, look: _Look, front: list[np.ndarray], p: FaceParams) -> None:
    for poly in front:
        pen.poly(poly, look.hair)
    top = 1 + look.hair_top
    pen.line(_arc(0, -0.02, look.w - 0.12, top - 0.1, -125, -70, 8), look.hair_light, 0.05)
    if look.age:  # grey strands through the crown, more with age
        grey = _rgba(_mix(look.hair[:3], _GREY_STRANDS, 0.7))
        n = 2 + int(4 * look.age)
        for i in range(n):
            a0 = -160 + 130 * ((i + 0.5) / n) + 10 * math.sin(p.noise_seed % 97 + i)
            r = top - 0.05 - 0.1 * ((i * 0.37 + p.age_amount) % 1)
            pen.line(_arc(0, -0.02, look.w * r / top, r, a0, a0 + 18, 5), grey, 0.025)


def _draw_facial_hair(pen: _Sketch, look: _Look, outline: np.ndarray) -> None:
    """Stubble/beard/goatee under the mouth; the moustache is drawn later, over the mouth."""
    kind = look.facial_hair
    if kind in ("stubble", "beard"):
        lower = outline[(outline[:, 1] > 0.1)]
        lower = lower[np.argsort(np.arctan2(lower[:, 1], lower[:, 0]))]  # right -> chin -> left
        grow = 1.0 if kind == "stubble" else 1.07
        inner = _pts((-0.55, 0.2), (-0.3, 0.4), (0.0, 0.42), (0.3, 0.4), (0.55, 0.2))
        colour = look.stubble if kind == "stubble" else look.beard
        pen.poly(np.concatenate([lower * (grow, grow), inner]), colour)
    if kind == "goatee":
        pen.ellipse(0.0, 0.86, 0.22, 0.22, look.beard)


def _draw_moustache(pen: _Sketch, look: _Look) -> None:
    if look.facial_hair not in ("moustache", "goatee", "beard"):
        return
    m, y = look.mouth_w, _MOUTH_Y
    pen.poly(
        _pts(
            (-m - 0.04, y + 0.02), (-m * 0.6, y - 0.13), (0.0, y - 0.11), (m * 0.6, y - 0.13),
            (m + 0.04, y + 0.02), (m * 0.5, y - 0.05), (0.0, y - 0.045), (-m * 0.5, y - 0.05),
        ),
        look.beard,
    )  # fmt: skip


def _draw_wrinkles(pen: _Sketch, look: _Look) -> None:
    """Age cues: forehead lines, crow's feet, nasolabial folds, under-eye lines."""
    if not look.age:
        return
    c, lw = look.skin_line, 0.018 + 0.012 * look.age
    for i in range(1 + int(round(2 * look.age))):
        y = -0.52 + 0.08 * i
        pen.line(_arc(0, y + 0.35, 0.34, 0.35, -125, -55, 7), c, lw)
    for side in (-1, 1):
        x0 = side * (look.eye_sep + 0.17)
        for dy in (-0.05, 0.0, 0.05):
            pen.line(_pts((x0, _EYE_Y + dy * 0.6), (x0 + side * 0.1, _EYE_Y + dy * 1.6)), c, lw)
        pen.line(
            _pts((side * 0.15, 0.27), (side * 0.27, 0.42), (side * (look.mouth_w + 0.06), 0.62)),
            c,
            lw * 1.2,
        )
        ex = side * look.eye_sep
        pen.line(_arc(ex, _EYE_Y + 0.02, 0.12, 0.1, 30, 150, 6), c, lw * 0.8)


def _draw_eyes(pen: _Sketch, look: _Look) -> None:
    e = look.expr
    for side in (-1, 1):
        opening = e.eye_open - (e.eye_left if side < 0 else 0.0)
        cx, ry = side * look.eye_sep, 0.085 * opening
        pen.ellipse(cx, _EYE_Y, 0.15, ry, look.eye_white)
        iris = min(0.072, ry * 0.98)
        pen.ellipse(cx, _EYE_Y, 0.072, iris, look.iris)
        pen.ellipse(cx, _EYE_Y, 0.032, min(0.032, ry * 0.9), _LASH)
        pen.line(_arc(cx, _EYE_Y, 0.155, ry + 0.01, -180, 0, 9), _LASH, 0.03)


def _draw_brows(pen: _Sketch, look: _Look) -> None:
    e = look.expr
    for side in (-1, 1):
        lift = e.brow_left if side < 0 else 0.0
        sep = look.eye_sep
        pts = _pts(
            (side * 0.09, _BROW_Y + e.brow_inner + lift),
            (side * sep, _BROW_Y - 0.04 - e.brow_arch + (e.brow_inner + e.brow_outer) / 2 + lift),
            (side * (sep + 0.2), _BROW_Y + 0.03 + e.brow_outer + lift),
        )
        pen.line(pts, look.brow, look.brow_w)


def _draw_nose(pen: _Sketch, look: _Look, disgusted: bool) -> None:
    n = look.nose
    pen.line(_pts((-0.03, 0.0), (-0.07 * n, 0.24), (-0.04, _NOSE_Y)), look.skin_dark, 0.03)
    flare = 1.4 if disgusted else 1.0
    for side in (-1, 1):
        pen.ellipse(side * 0.065 * n, _NOSE_Y, 0.04 * n * flare, 0.022 * flare, look.skin_line)
    if disgusted:  # wrinkled nose bridge
        for y in (0.02, 0.09, 0.16):
            pen.line(_pts((-0.09, y), (0.0, y - 0.02), (0.09, y)), look.skin_line, 0.025)


# ---------------------------------------------------------------------------------------------
# Mouths. t runs over [-1, 1] from the left corner to the right; y offsets are from _MOUTH_Y.

_T = _const(np.linspace(-1.0, 1.0, 15))


@dataclass(frozen=True)
class _Mouth:
    width: float  # relative to the face's mouth width
    upper: Callable[[np.ndarray], np.ndarray]  # upper edge (closed mouths: the lip seam)
    gap: Callable[[np.ndarray], np.ndarray] | None  # opening height; None = closed
    teeth: str  # "upper", "lower" or "none"


_MOUTHS = {
    "neutral": _Mouth(1.0, lambda t: 0.0 * t, None, "none"),
    "happy": _Mouth(1.3, lambda t: -0.11 * t**2 + 0.01, lambda t: 0.22 * (1 - t**2), "upper"),
    "sad": _Mouth(0.92, lambda t: -0.07 + 0.2 * t**2, None, "none"),
    "angry": _Mouth(0.75, lambda t: 0.025 * t**2, None, "none"),
    "surprised": _Mouth(
        0.5, lambda t: -0.12 * np.sqrt(1 - t**2), lambda t: 0.34 * np.sqrt(1 - t**2), "none"
    ),
    "fearful": _Mouth(1.15, lambda t: -0.04 + 0.07 * t**2, lambda t: 0.15 * (1 - t**6), "lower"),
    "disgusted": _Mouth(
        1.0,
        lambda t: 0.04 * t**2 - 0.1 * np.exp(-(((t + 0.35) / 0.4) ** 2)),
        lambda t: 0.1 * (1 - t**2),
        "upper",
    ),
    "contemptuous": _Mouth(
        1.0, lambda t: 0.015 * t - 0.19 * np.clip(t, 0, None) ** 2, None, "none"
    ),
}


def _band(x: np.ndarray, top: np.ndarray, bottom: np.ndarray) -> np.ndarray:
    """Polygon between two curves over the same x: along ``top``, back along ``bottom``."""
    n = len(x)
    out = np.empty((2 * n, 2))
    out[:n, 0], out[:n, 1] = x, top
    out[n:, 0], out[n:, 1] = x[::-1], bottom[::-1]
    return out


def _draw_mouth(pen: _Sketch, look: _Look, expression: str) -> None:
    spec = _MOUTHS[expression]
    x = _T * look.mouth_w * spec.width
    up = _MOUTH_Y + spec.upper(_T)
    taper = 1 - 0.7 * _T**2
    if spec.gap is None:
        # Lips pressed tight (anger) show as a thin, dark line rather than a red band.
        lip_up, lip_lo, seam = (0.02, 0.025, 0.05) if expression == "angry" else (0.04, 0.05, 0.03)
        pen.poly(_band(x, up - lip_up * taper, up + lip_lo * taper), look.lip)
        pen.line(np.stack([x, up], 1), _MOUTH_DARK, seam)
        if expression == "contemptuous":  # dimple at the raised corner
            pen.line(_pts((x[-1] + 0.03, up[-1] - 0.05), (x[-1] + 0.05, up[-1] + 0.04)),
                     look.skin_line, 0.022)  # fmt: skip
        return
    lo = up + spec.gap(_T)
    pen.poly(_band(x, up - 0.04 * taper, lo + 0.05 * taper), look.lip)
    pen.poly(_band(x, up, lo), _MOUTH_DARK)
    if spec.teeth == "upper":
        pen.poly(_band(x, up, np.minimum(up + 0.06, lo)), _TEETH)
    elif spec.teeth == "lower":
        pen.poly(_band(x, np.maximum(lo - 0.05, up), lo), _TEETH)


# ---------------------------------------------------------------------------------------------
# Rendering


def _check_size(size: int) -> None:
    if isinstance(size, bool) or not isinstance(size, int | np.integer):
        raise ValueError(f"size must be an int in [{_MIN_SIZE}, {_MAX_SIZE}], got {size!r}")
    if not _MIN_SIZE <= size <= _MAX_SIZE:
        raise ValueError(f"size must be in [{_MIN_SIZE}, {_MAX_SIZE}], got {size}")


def _background(look: _Look, p: FaceParams, size: int) -> np.ndarray:
    """Two-colour linear gradient, float32 [size, size, 3]; smooth, so no supersampling."""
    a = p.bg_angle * 2 * np.pi
    ax = np.arange(size, dtype=np.float32) * (1 / (size - 1)) - 0.5
    t = np.clip(0.5 + (ax[None, :] * math.cos(a) + ax[:, None] * math.sin(a)) * 1.2, 0, 1)
    c1, c2 = (np.asarray(c, dtype=np.float32) for c in look.bg)
    return c1 + t[..., None] * (c2 - c1)


def _draw_person(layer: Image.Image, look: _Look, p: FaceParams) -> None:
    """Everything but the background, back to front, on a transparent layer."""
    head_frame, body_frame = _frames(p, layer.size[0])
    back, front = _hair_shapes(look)
    body, head = _Sketch(), _Sketch()
    _draw_body(body, look, p)
    for poly in back:
        head.poly(poly, look.hair_back)
    _draw_ears(head, look)
    outline = _face_outline(look)
    head.poly(outline, look.skin)
    _draw_facial_hair(head, look, outline)
    _draw_wrinkles(head, look)
    _draw_nose(head, look, p.expression == "disgusted")
    _draw_eyes(head, look)
    _draw_brows(head, look)
    _draw_mouth(head, look, p.expression)
    _draw_moustache(head, look)
    _draw_hair_front(head, look, front, p)
    draw = ImageDraw.Draw(layer)
    body.draw(draw, body_frame)
    head.draw(draw, head_frame)


def _light(p: FaceParams, size: int) -> np.ndarray:
    """Gain [size, size, 1] on the person: directional light plus a falloff toward the rim."""
    ox, oy, k = _head_frame(p, size)
    ax = np.arange(size, dtype=np.float32) + 0.5
    dx, dy = (ax - ox) / k, (ax - oy) / k
    a = p.light_angle * 2 * np.pi
    strength = 0.05 + 0.2 * p.light_strength
    lin = np.clip(dx[None, :] * math.cos(a) + dy[:, None] * math.sin(a), -1.5, 1.5)
    rim = np.minimum(dx[None, :] ** 2 + (dy[:, None] * 0.8) ** 2, 2.0)
    return (1.0 + strength * lin - 0.08 * rim)[..., None]


def render(params: FaceParams, size: int = 64) -> np.ndarray:
    """Render one face: uint8 [size, size, 3]. Deterministic in (params, size)."""
    _check_size(size)
    look = _derive(params)
    # Premultiplied layer: every shape is opaque and the empty layer is (0, 0, 0, 0), so a box
    # filter gives premultiplied colour plus antialiased coverage to composite at 1x.
    layer = Image.new("RGBa", (size * _SUPERSAMPLE,) * 2, (0, 0, 0, 0))
    _draw_person(layer, look, params)
    small = np.asarray(layer.reduce(_SUPERSAMPLE), dtype=np.float32)  # [size, size, 4]
    rgb = small[..., :3] * _light(params, size)
    rgb += (1 - small[..., 3:] * (1 / 255)) * _background(look, params, size)
    sigma = 1.0 + 5.0 * params.noise_level  # in 0..255 units
    noise = np.random.default_rng(params.noise_seed).standard_normal(rgb.shape, np.float32)
    rgb += sigma * noise + 0.5  # + 0.5: round, not truncate, in the cast below
    return np.clip(rgb, 0, 255, out=rgb).astype(np.uint8)


def render_batch(seed: int, split: str, indices: Sequence[int], size: int = 64) -> np.ndarray:
    """Render faces ``indices`` of ``split``: uint8 [N, size, size, 3]."""
    _split_id(split)
    _check_size(size)
    out = np.empty((len(indices), size, size, 3), dtype=np.uint8)
    for row, index in enumerate(indices):
        out[row] = render(params_for(seed, split, int(index)), size)
    return out
