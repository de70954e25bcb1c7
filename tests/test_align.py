"""Face alignment (stargan.align) and ``stargan translate --align``: template math, warps,
paste-back, detection on real CelebA faces, and the CLI."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from stargan import align
from stargan.cli import main
from stargan.errors import StarGANError
from stargan.images import center_crop_resize

CELEBA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "celeba_subset"
TIGHT_FACE = "182693.jpg"  # its tight crops are found only by detect_faces' padded retry
needs_cv2 = pytest.mark.skipif(
    importlib.util.find_spec("cv2") is None,
    reason="OpenCV not installed (pip install -e '.[dev]' brings it)",
)
needs_celeba = pytest.mark.skipif(
    not (CELEBA / "img_align_celeba").is_dir(),
    reason=f"real faces needed: {CELEBA} (the project's shared data) is absent",
)


def celeba(name: str) -> Image.Image:
    with Image.open(CELEBA / "img_align_celeba" / name) as im:
        return im.convert("RGB")


def eye_error(E: np.ndarray) -> float:
    """Mean distance (frame pixels) by which E (frame -> frame) moves the template eyes."""
    q = np.array(align.TEMPLATE_EYES)
    return float(np.linalg.norm(align.apply(E, q) - q, axis=1).mean())


def smooth_photo(w: int, h: int, seed: int = 0) -> Image.Image:
    """A random but smooth RGB image (bicubic warps of it are accurate)."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (h // 16 + 1, w // 16 + 1, 3), dtype=np.uint8)
    return Image.fromarray(small).resize((w, h), Image.BICUBIC)


def placed(im: Image.Image, degrees: float, scale: float, size: tuple[int, int]):
    """``im`` rotated, scaled and centred on a canvas of ``size``; returns (canvas, T) with
    T the 2x3 map from ``im``'s pixels to the canvas's."""
    c = (im.width / 2, im.height / 2)
    T = align._turn(degrees, c, (size[0] / 2, size[1] / 2))
    T[:, :2] *= scale
    T[:, 2] = np.array(size) / 2 - T[:, :2] @ c
    out_to_in = tuple(align.invert(T).ravel())
    return im.transform(size, Image.AFFINE, out_to_in, Image.BICUBIC, fillcolor=(120,) * 3), T


def tight_crop(name: str, side: float, size: int) -> tuple[Image.Image, np.ndarray]:
    """A square of ``side`` frame pixels around the face of an img_align_celeba image (its
    hairline and chin are about 114 apart), resized to ``size``; and T, the map frame -> crop."""
    k, (cx, cy) = size / side, (88.0, 122.0)
    T = np.array([[k, 0.0, (side / 2 - cx) * k], [0.0, k, (side / 2 - cy) * k]])
    out_to_in = tuple(align.invert(T).ravel())
    return celeba(name).transform((size, size), Image.AFFINE, out_to_in, Image.BICUBIC), T


# ---------------------------------------------------------------------- geometry
def test_template_eyes_map_to_the_identity() -> None:
    face = align.Face((0, 0, 178, 218), align.TEMPLATE_EYES, 1.0, True)
    np.testing.assert_allclose(align.frame_transform(face), np.eye(2, 3), atol=1e-12)


def test_similarity_maps_the_eyes_and_inverts() -> None:
    src = ((310.0, 402.5), (388.0, 371.0))
    M = align.similarity(src, align.TEMPLATE_EYES)
    np.testing.assert_allclose(align.apply(M, np.array(src)), align.TEMPLATE_EYES, atol=1e-9)
    A = M[:, :2]  # a similarity: orthogonal columns of equal length
    assert abs(A[:, 0] @ A[:, 1]) < 1e-12 and np.isclose(*np.linalg.norm(A, axis=0))
    pts = np.array([[0.0, 0.0], [178.0, 218.0], [55.5, 12.25]])
    round_trip = align.apply(align.compose(align.invert(M), M), pts)
    np.testing.assert_allclose(round_trip, pts, atol=1e-9)
    with pytest.raises(StarGANError, match="coincide"):
        align.similarity(((5, 5), (5, 5)), align.TEMPLATE_EYES)


@pytest.mark.parametrize(
    ("crop", "square"), [(178, (0, 20, 178)), (0, (0, 20, 178)), (128, (25, 45, 128))]
)
def test_crop_square_is_what_center_crop_resize_takes(crop: int, square: tuple) -> None:
    frame = smooth_photo(*align.FRAME_SIZE)
    assert align.crop_square(crop) == square
    left, top, side = square
    ours = frame.crop((left, top, left + side, top + side))
    theirs = center_crop_resize(frame, side, crop)
    assert np.array_equal(np.asarray(ours), np.asarray(theirs))


@pytest.mark.parametrize(
    ("size", "crop", "share"),
    [
        ((178, 218), 178, 0.0),  # the frame itself
        ((178, 109), 178, 0.5),  # the square is rows 20-198: 89 of its 178 lie past row 109
        ((89, 218), 178, 0.5),
        ((178, 109), 128, 0.5),  # rows 45-173: 64 of 128 past row 109
        ((10, 10), 178, 1.0),
    ],
)
def test_made_up_share_of_known_photos(size: tuple, crop: int, share: float) -> None:
    assert align.made_up_share(size, np.eye(2, 3), crop) == pytest.approx(share, abs=1e-9)


def test_made_up_share_counts_what_lies_outside_a_turned_face() -> None:
    """Against a count of the model input's pixels whose centre maps outside the photo."""
    M = align.similarity(((320.0, 70.0), (370.0, 100.0)), align.TEMPLATE_EYES)  # turned 31 deg
    left, top, side = align.crop_square(178)
    grid = np.stack(np.meshgrid(np.arange(side), np.arange(side)), -1).reshape(-1, 2) + 0.5
    at = align.apply(align.invert(M), grid + [left, top])  # [side^2, 2] in the photo
    outside = ((at < 0) | (at >= [400, 300])).any(1).mean()
    assert 0.2 < outside < 0.8  # the case cuts the square, far from either end
    assert align.made_up_share((400, 300), M, 178) == pytest.approx(outside, abs=0.005)


def test_warp_to_frame_of_an_aligned_image_is_the_image() -> None:
    frame = smooth_photo(*align.FRAME_SIZE, seed=1)
    out = align.warp_to_frame(frame, np.eye(2, 3))
    assert out.size == align.FRAME_SIZE
    diff = np.abs(np.asarray(out, np.int16) - np.asarray(frame, np.int16))
    assert diff.max() <= 1


def test_warp_to_frame_follows_the_transform_and_fills_past_the_photo() -> None:
    """A photo placed by T on a canvas warps back to the photo; far past the canvas the
    frame is made up from the canvas's own colours instead of going black."""
    frame = smooth_photo(*align.FRAME_SIZE, seed=2)
    canvas, T = placed(frame, 15, 1.7, (420, 460))
    back = np.asarray(align.warp_to_frame(canvas, align.invert(T)), np.int16)
    inner = np.abs(back - np.asarray(frame, np.int16))[10:-10, 10:-10]
    assert inner.mean() < 2.0
    small = Image.new("RGB", (20, 20), (200, 30, 30))  # the frame reaches far past this
    edge = np.asarray(align.warp_to_frame(small, np.array([[1.0, 0, 0], [0, 1.0, 0]])))
    assert (edge == [200, 30, 30]).all()


def test_warp_to_frame_fills_past_the_photo_as_asked() -> None:
    """The frame's rows past 109 lie below a short photo. "edge" (the default: CelebA models
    tolerate it best) repeats the last row there, "mirror" reflects the photo, "blur" blurs
    the repeated streaks; the photo's own pixels are the same in all three."""
    photo = smooth_photo(178, 109, seed=4)
    frames = {
        fill: np.asarray(align.warp_to_frame(photo, np.eye(2, 3), fill=fill), np.float64)
        for fill in align.FILLS
    }
    edge, mirror = frames["edge"], frames["mirror"]
    assert np.array_equal(np.asarray(align.warp_to_frame(photo, np.eye(2, 3))), edge)
    assert np.abs(edge[112:] - edge[108]).max() <= 1  # every row past the photo: its last
    assert np.abs(mirror[109:149] - mirror[108:68:-1]).max() <= 1  # row 109 + j: row 108 - j
    assert np.abs(mirror[112:] - mirror[108]).mean() > 10  # so: no streaks
    streaks = {k: np.abs(np.diff(f[150:], axis=1)).mean() for k, f in frames.items()}
    assert streaks["blur"] < 0.6 * streaks["edge"]  # sigma 7 px: about half the contrast
    for frame in frames.values():
        assert np.abs(frame[:106] - edge[:106]).max() <= 1
    with pytest.raises(StarGANError, match="unknown fill"):
        align.warp_to_frame(photo, np.eye(2, 3), fill="zeros")


def test_warp_to_frame_antialiases_a_large_face() -> None:
    """Shrinking noise 4x averages it (std 74 -> ~15); point sampling would keep ~59."""
    noise = np.random.default_rng(0).integers(0, 256, (872, 712, 3), dtype=np.uint8)
    out = align.warp_to_frame(Image.fromarray(noise), np.array([[0.25, 0, 0], [0, 0.25, 0]]))
    assert np.asarray(out, np.float64).std() < 25


def test_paste_back_round_trip_and_untouched_outside() -> None:
    photo = smooth_photo(600, 500, seed=3)
    M = align.similarity(((250.0, 220.0), (330.0, 205.0)), align.TEMPLATE_EYES)
    for crop, size in ((178, 178), (0, 64)):
        face = center_crop_resize(align.warp_to_frame(photo, M), size, crop)
        back = np.asarray(align.paste_back(photo, face, M, crop), np.int16)
        diff = np.abs(back - np.asarray(photo, np.int16))
        eyes_area = diff[190:240, 240:340]  # well inside the face crop
        assert eyes_area.mean() < (2.0 if size == 178 else 6.0), crop
        assert diff[:, :60].max() == 0 and diff[:, 540:].max() == 0  # far outside: unchanged


def test_paste_back_changes_the_inside_with_a_soft_border() -> None:
    photo = Image.new("RGB", (400, 400), (0, 0, 0))
    M = align.similarity(((170.0, 190.0), (230.0, 190.0)), align.TEMPLATE_EYES)
    white = Image.new("RGB", (128, 128), (255, 255, 255))
    out = np.asarray(align.paste_back(photo, white, M, 178))[..., 0]
    assert out[195, 200] == 255  # between the eyes: fully the pasted face
    assert out[:45].max() == 0 and out[:, :60].max() == 0  # outside: the photo
    row = out[195, 60:200]  # from outside to the middle: a ramp, not a step
    steps = np.diff(row.astype(int))
    assert (steps >= -1).all() and steps.max() < 60 and len(set(row.tolist())) > 10


def test_missing_opencv_names_the_extra(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "cv2", None)  # import cv2 -> ImportError
    with pytest.raises(StarGANError, match=r"pip install 'stargan\[align\]'"):
        align.detect_faces(Image.new("RGB", (64, 64)))


def test_cli_align_without_opencv_is_one_error(tiny_model, tmp_path, capsys, monkeypatch):
    for name in ("a.png", "b.png"):
        Image.new("RGB", (64, 64)).save(tmp_path / name)
    monkeypatch.setitem(sys.modules, "cv2", None)
    args = ["translate", tiny_model, tmp_path / "a.png", tmp_path / "b.png", "--align"]
    args += ["--to", "Male=1"]
    code, out, err = run_cli([*args, "-o", tmp_path / "o"], capsys, monkeypatch)
    assert code == 2 and out == "" and "skipped" not in err
    assert err.strip().startswith("error: face alignment needs OpenCV")


# ---------------------------------------------------------------------- detection
@needs_cv2
def test_blank_image_has_no_face() -> None:
    assert align.detect_faces(Image.new("RGB", (300, 300), (200, 200, 200))) == []


@needs_cv2
@needs_celeba
@pytest.mark.parametrize("name", ["182664.jpg", "182693.jpg", "182853.jpg"])
@pytest.mark.parametrize("degrees", [8.0, -22.0])  # -22: found only by the turned search
def test_alignment_recovers_a_known_transform(name: str, degrees: float) -> None:
    """An img_align_celeba image (already aligned: the truth is the identity) rotated,
    scaled x1.6 and moved onto a canvas aligns back to within a few pixels."""
    canvas, T = placed(celeba(name), degrees, 1.6, (400, 440))
    faces = align.detect_faces(canvas)
    assert len(faces) == 1 and faces[0].eyes_found
    E = align.compose(align.frame_transform(faces[0]), T)  # frame -> frame
    assert eye_error(E) < 4.0


@needs_cv2
@needs_celeba
def test_faces_are_sorted_largest_first() -> None:
    a, b = celeba("182664.jpg"), celeba("182693.jpg").resize((267, 327), Image.BICUBIC)
    photo = Image.new("RGB", (178 + 267, 327), (120, 120, 120))
    photo.paste(a, (0, 50))
    photo.paste(b, (178, 0))
    faces = align.detect_faces(photo)
    assert len(faces) == 2 and faces[0].area > faces[1].area
    assert faces[0].eyes[0][0] > 178 > faces[1].eyes[1][0]  # the larger is the right one


@needs_cv2
@needs_celeba
def test_a_tight_crop_is_found_by_the_padded_retry() -> None:
    """A face cut at the forehead and chin by the photo's edges: the plain search finds
    none, the retry on the padded photo finds it, in the right place."""
    crop, T = tight_crop(TIGHT_FACE, 90.0, 320)
    gray = np.asarray(crop.convert("L"))
    assert align._search(gray, align.PLAIN, align.DETECT_MAX_SIDE) == []
    faces = align.detect_faces(crop)
    assert len(faces) == 1
    assert eye_error(align.compose(align.frame_transform(faces[0]), T)) < 6.0


# ---------------------------------------------------------------------- CLI
def run_cli(args: list, capsys, monkeypatch) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "argv", ["stargan", *map(str, args)])
    with pytest.raises(SystemExit) as exit_info:
        main()
    out, err = capsys.readouterr()
    return exit_info.value.code, out, err


@pytest.fixture
def two_faces(tmp_path: Path) -> Path:
    photo = Image.new("RGB", (400, 260), (128, 128, 128))
    photo.paste(celeba("182664.jpg"), (10, 20))
    photo.paste(celeba("182693.jpg"), (212, 20))
    path = tmp_path / "two.jpg"
    photo.save(path, quality=95)
    return path


@needs_cv2
@needs_celeba
def test_cli_align_paste_back_writes_the_whole_photo(
    tiny_model, tmp_path, capsys, monkeypatch
) -> None:
    photo = Image.new("RGB", (500, 400), (90, 140, 60))
    photo.paste(celeba("182853.jpg").resize((222, 272), Image.BICUBIC), (140, 60))
    path = tmp_path / "photo.jpg"
    photo.save(path, quality=95)
    original = np.asarray(Image.open(path).convert("RGB"), np.int16)
    args = ["translate", tiny_model, path, "--align", "--paste-back", "--to", "Male=1"]
    code, out, _ = run_cli([*args, "-o", tmp_path / "o", "--quiet"], capsys, monkeypatch)
    assert code == 0 and "translated 1 image(s)" in out
    with Image.open(tmp_path / "o" / "photo_Male=1.png") as im:
        assert im.size == (500, 400)
        result = np.asarray(im.convert("RGB"), np.int16)
    diff = np.abs(result - original).max(-1)
    assert diff[:, :40].max() == 0 and diff[:, -40:].max() == 0  # far outside the face
    assert diff[150:250, 200:300].mean() > 10  # the face: the tiny model's output


@needs_cv2
@needs_celeba
def test_cli_faces_all_writes_one_output_per_face(
    tiny_model, two_faces, tmp_path, capsys, monkeypatch
) -> None:
    out_dir = tmp_path / "o"
    args = ["translate", tiny_model, two_faces, "--align", "--to", "Male=1", "-o", out_dir]
    code, out, err = run_cli([*args, "--quiet"], capsys, monkeypatch)  # default: largest
    assert code == 0 and "2 faces found in" in err and "--faces all" in err
    assert sorted(p.name for p in out_dir.iterdir()) == ["two_Male=1.png"]
    code, _, _ = run_cli([*args, "--faces", "all", "--grid", "--quiet"], capsys, monkeypatch)
    assert code == 0
    names = sorted(p.name for p in out_dir.iterdir())
    assert names == ["grid.png", "two-face0_Male=1.png", "two-face1_Male=1.png", "two_Male=1.png"]
    with Image.open(out_dir / "two-face0_Male=1.png") as im:
        assert im.size == (16, 16)


@needs_cv2
def test_cli_no_face_single_input_is_an_error(tiny_model, tmp_path, capsys, monkeypatch) -> None:
    blank = tmp_path / "blank.png"
    Image.new("RGB", (300, 300), (200, 200, 200)).save(blank)
    args = ["translate", tiny_model, blank, "--align", "--to", "Male=1", "-o", tmp_path / "o"]
    code, _, err = run_cli([*args, "--quiet"], capsys, monkeypatch)
    assert code == 2 and err.strip() == (
        f"error: no face found in {blank} (try without --align, or a larger, frontal photo)"
    )


@needs_cv2
@needs_celeba
def test_cli_no_face_among_many_is_skipped_and_counted(
    tiny_model, two_faces, tmp_path, capsys, monkeypatch
) -> None:
    blank = tmp_path / "blank.png"
    Image.new("RGB", (300, 300), (200, 200, 200)).save(blank)
    args = ["translate", tiny_model, blank, two_faces, "--align", "--to", "Male=1"]
    code, out, err = run_cli([*args, "-o", tmp_path / "o", "--quiet"], capsys, monkeypatch)
    assert code == 3 and "translated 1 image(s)" in out and "1 skipped" in out
    assert f"skipped: no face found in {blank}" in err
    assert (tmp_path / "o" / "two_Male=1.png").exists()


@needs_cv2
@needs_celeba
def test_cli_warns_when_most_of_the_input_is_made_up(
    tiny_model, tmp_path, capsys, monkeypatch
) -> None:
    tight, roomy = tmp_path / "tight.jpg", tmp_path / "roomy.jpg"
    tight_crop(TIGHT_FACE, 100.0, 300)[0].save(tight, quality=95)
    celeba(TIGHT_FACE).save(roomy, quality=95)  # the whole aligned image: nothing made up
    args = ["translate", tiny_model, tight, roomy, "--align", "--to", "Male=1"]
    code, out, err = run_cli([*args, "-o", tmp_path / "o", "--quiet"], capsys, monkeypatch)
    assert code == 0 and "translated 2 image(s)" in out
    warnings = [line for line in err.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and f"model's input for {tight} lies outside" in warnings[0]
    share = int(re.match(r"warning: (\d+)% ", warnings[0]).group(1))
    assert 100 * align.MADE_UP_WARN < share < 90  # (100 / 178)^2 of the square is the photo


@pytest.mark.parametrize("extra", [["--paste-back"], ["--faces", "all"]])
def test_cli_alignment_options_need_align(tiny_model, tmp_path, capsys, monkeypatch, extra):
    args = ["translate", tiny_model, tmp_path / "x.png", "--to", "Male=1", *extra]
    code, _, err = run_cli([*args, "-o", tmp_path / "o"], capsys, monkeypatch)
    assert code == 2 and err.strip() == "error: --paste-back and --faces need --align"
