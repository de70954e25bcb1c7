"""Face alignment quality: stargan.align's Haar detector vs mediapipe's, on real faces.

    python benchmarks/align_compare.py --n 200
    python benchmarks/align_compare.py --fit-template        # re-measure align.py's constants

Needs ../shared/data. The mediapipe rows run where mediapipe imports. It is no dependency of
stargan (0.10.14 pulls jax, scipy, matplotlib and a non-headless OpenCV, about 700 MB, caps
protobuf below 5 and has no wheels past Python 3.12), so compare in a scratch venv:

    python3 -m venv /tmp/mpvenv
    /tmp/mpvenv/bin/pip install mediapipe==0.10.14 torch safetensors click tqdm \
        "opencv-contrib-python<5"     # mediapipe pulls OpenCV 5, which has no Haar cascades
    PYTHONPATH=src /tmp/mpvenv/bin/python benchmarks/align_compare.py

Every detector aligns with its own eye template: the mean eye centres it finds on CelebA
train-partition images (stargan.align ships Haar's as TEMPLATE_EYES). The sets:

- identity: CelebA test-partition img_align_celeba images, already aligned, so the ideal
  alignment is the identity. "eye err" is the mean distance, in pixels of the 178x218 frame,
  between where the alignment sends the template eye points and where they should be; "IoU"
  compares the model's 178x178 crop square with where the alignment puts it. Neither can
  reach 0 px / 1.0: CelebA aligned on five landmarks, so its eyes scatter about 2 px around
  their mean, which an eyes-only alignment moves to the mean (a perfect eye finder scores
  about 2 px and 0.88 here).
- warped: the same images rotated (+-20 deg), scaled (x1.2-3) and shifted on a 512 px canvas
  by a known T; errors as above for the alignment composed with T.
- celeba_hq: the 1024 px CelebA-HQ portraits (one person each). No ground truth, so "eye err"
  is consistency: each portrait is warped again by a known T (+-15 deg, x0.5-1) and the
  alignment of the copy is compared with the original's; "multi" counts portraits where more
  than one face was reported (false positives).

"detected": images with at least one face; "eyes": faces whose eyes were found by the
detector itself (Haar falls back to the face box otherwise); "ms": detection and warp per image.
"""

from __future__ import annotations

import argparse
import math
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from _report import print_report
from stargan import align

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
CELEBA = DATA / "celeba_subset"
HQ = DATA / "stargan_v2_representative" / "celeba_hq"

# (box x, y, w, h; eyes; eyes found by the detector itself), largest face first
Detection = tuple[tuple[float, float, float, float], align.Eyes, bool]
Detector = Callable[[Image.Image], list[Detection]]


# ---------------------------------------------------------------------- detectors
def haar() -> Detector:
    return lambda im: [(f.box, f.eyes, f.eyes_found) for f in align.detect_faces(im)]


def mediapipe_detection() -> Detector:
    """mediapipe's legacy face detection (BlazeFace short range): 6 keypoints, 0 and 1 the
    eyes."""
    import mediapipe as mp

    model = mp.solutions.face_detection.FaceDetection(model_selection=0)

    def detect(im: Image.Image) -> list[Detection]:
        found = model.process(np.asarray(im)).detections or []
        out = []
        for d in found:
            b, k = d.location_data.relative_bounding_box, d.location_data.relative_keypoints
            box = (b.xmin * im.width, b.ymin * im.height, b.width * im.width, b.height * im.height)
            eyes = sorted((p.x * im.width, p.y * im.height) for p in k[:2])
            out.append((box, (eyes[0], eyes[1]), True))
        return sorted(out, key=lambda d: -d[0][2] * d[0][3])

    return detect


def mediapipe_mesh() -> Detector:
    """mediapipe's legacy face mesh with iris landmarks: eyes are the iris centres."""
    import mediapipe as mp

    model = mp.solutions.face_mesh.FaceMesh(
        static_image_mode=True, max_num_faces=5, refine_landmarks=True
    )

    def detect(im: Image.Image) -> list[Detection]:
        out = []
        for face in model.process(np.asarray(im)).multi_face_landmarks or []:
            pts = np.array([(p.x * im.width, p.y * im.height) for p in face.landmark])
            (x0, y0), (x1, y1) = pts.min(0), pts.max(0)
            eyes = sorted(tuple(map(float, pts[i])) for i in (468, 473))
            out.append(((x0, y0, x1 - x0, y1 - y0), (eyes[0], eyes[1]), True))
        return sorted(out, key=lambda d: -d[0][2] * d[0][3])

    return detect


DETECTORS = {"haar": haar, "mediapipe": mediapipe_detection, "mediapipe-mesh": mediapipe_mesh}


# ---------------------------------------------------------------------- data
def celeba(partition: str, n: int) -> list[Path]:
    rows = (CELEBA / "list_eval_partition.txt").read_text().split("\n")
    names = sorted(r.split()[0] for r in rows if r.strip() and r.split()[1] == partition)
    return [CELEBA / "img_align_celeba" / name for name in names[:n]]


def random_similarity(rng: random.Random, degrees: float, scale: tuple, shift: float, at: tuple):
    """A 2x3 similarity: rotate by +-degrees and scale about ``at``, then shift by +-shift."""
    angle, s = math.radians(rng.uniform(-degrees, degrees)), rng.uniform(*scale)
    a = s * complex(math.cos(angle), math.sin(angle))
    b = complex(*at) * (1 - a) + complex(rng.uniform(-shift, shift), rng.uniform(-shift, shift))
    return np.array([[a.real, -a.imag, b.real], [a.imag, a.real, b.imag]])


def warped(im: Image.Image, T: np.ndarray, size: tuple[int, int]) -> Image.Image:
    fill = tuple(int(v) for v in np.asarray(im).reshape(-1, 3).mean(0))
    inv = tuple(align.invert(T).ravel())
    return im.transform(size, Image.AFFINE, inv, resample=Image.BICUBIC, fillcolor=fill)


# ---------------------------------------------------------------------- metrics
def quad_iou(E: np.ndarray) -> float:
    """IoU of the model's crop square in the frame and its image under E (rasterized x2)."""
    left, top, side = align.crop_square(178)
    square = np.array([[left, top], [left + side, top], [left + side, top + side]])
    square = np.vstack([square, [[left, top + side]]])
    masks = []
    for quad in (square, align.apply(E, square)):
        im = Image.new("1", (2 * 400, 2 * 400), 0)
        ImageDraw.Draw(im).polygon([tuple(2 * (p + 100)) for p in quad], fill=1)
        masks.append(np.asarray(im))
    return float((masks[0] & masks[1]).sum() / max((masks[0] | masks[1]).sum(), 1))


def eye_error(E: np.ndarray) -> float:
    """Mean distance (frame pixels) between the template eyes and their image under E."""
    q = np.array(align.TEMPLATE_EYES)
    return float(np.linalg.norm(align.apply(E, q) - q, axis=1).mean())


def timed_align(detect: Detector, template: align.Eyes, im: Image.Image):
    """(photo -> frame matrix of the largest face or None, detections, seconds)."""
    start = time.perf_counter()
    found = detect(im)
    M = align.similarity(found[0][1], template) if found else None
    if M is not None:
        align.warp_to_frame(im, M)
    return M, found, time.perf_counter() - start


# ---------------------------------------------------------------------- runs
def fit_template(detect: Detector, paths: list[Path]) -> tuple[align.Eyes, dict]:
    """Mean eye centres (and, for the box fallback, eyes relative to the box) found on
    already-aligned images."""
    eyes, rel = [], []
    for p in paths:
        found = detect(Image.open(p).convert("RGB"))
        if found and found[0][2]:
            (x, y, w, h), e, _ = found[0]
            eyes.append(np.array(e))
            rel.append((np.array(e) - [x, y]) / [w, h])
    mean, std = np.mean(eyes, 0), np.std(eyes, 0)
    info = {"n": len(eyes), "of": len(paths), "std": std.round(2).tolist()}
    info["box_eyes"] = np.mean(rel, 0).round(3).tolist()
    return ((mean[0, 0], mean[0, 1]), (mean[1, 0], mean[1, 1])), info


def run_set(detect: Detector, template: align.Eyes, cases: list) -> dict:
    """cases: (image, its true photo -> frame matrix, or None where none is known)."""
    errs, ious, times, det, eyes, multi = [], [], [], 0, 0, 0
    for im, truth in cases:
        M, found, dt = timed_align(detect, template, im)
        times.append(dt)
        if M is None:
            continue
        det, eyes, multi = det + 1, eyes + found[0][2], multi + (len(found) > 1)
        if truth is not None:
            E = align.compose(M, align.invert(truth))  # frame -> frame; identity if perfect
            errs.append(eye_error(E))
            ious.append(quad_iou(E))
    n = len(cases)
    return {
        "detect_rate": det / n,
        "eyes_rate": eyes / max(det, 1),
        "eye_err_px": statistics.mean(errs) if errs else float("nan"),
        "eye_err_p90": float(np.percentile(errs, 90)) if errs else float("nan"),
        "iou": statistics.mean(ious) if ious else float("nan"),
        "multi_rate": multi / n,
        "ms": 1000 * statistics.median(times),
    }


def identity_cases(paths: list[Path]) -> list:
    return [(Image.open(p).convert("RGB"), np.eye(2, 3)) for p in paths]


def warped_cases(paths: list[Path], seed: int) -> list:
    """Each aligned image placed on a 512 px canvas by a known T: the truth is T^-1."""
    rng, cases = random.Random(seed), []
    for p in paths:
        T = random_similarity(rng, 20, (1.2, 3.0), 60, (89, 109))
        T[:, 2] += np.array([256, 256]) - np.array([89, 109])  # frame centre to canvas centre
        cases.append((warped(Image.open(p).convert("RGB"), T, (512, 512)), align.invert(T)))
    return cases


def hq_cases(detect: Detector, template: align.Eyes, paths: list[Path], seed: int) -> list:
    """A copy of each portrait warped by a known T; the truth is the detector's own
    alignment M0 of the original, moved by T (M0 T^-1): this measures consistency."""
    rng, cases = random.Random(seed), []
    for p in paths:
        im = Image.open(p).convert("RGB")
        M0, _, _ = timed_align(detect, template, im)
        T = random_similarity(rng, 15, (0.5, 1.0), 80, (im.width / 2, im.height / 2))
        truth = None if M0 is None else align.compose(M0, align.invert(T))
        cases.append((warped(im, T, im.size), truth))
    return cases


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=200, help="CelebA test images per set.")
    ap.add_argument("--n-template", type=int, default=500, help="Train images for templates.")
    ap.add_argument("--detectors", default="haar,mediapipe,mediapipe-mesh")
    ap.add_argument("--fit-template", action="store_true", help="Only print Haar's constants.")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    if not CELEBA.is_dir():
        sys.exit(f"needs {CELEBA} (the project's shared data)")
    if args.fit_template:
        template, info = fit_template(haar(), celeba("0", args.n_template))
        print({"TEMPLATE_EYES": np.round(template, 1).tolist(), **info})
        return
    rows, result = [], {"n": args.n}
    for name in args.detectors.split(","):
        try:
            detect = DETECTORS[name]()
        except ImportError:
            rows.append((name, "not installed: skipped"))
            continue
        template, _ = (
            (align.TEMPLATE_EYES, {})
            if name == "haar"
            else fit_template(detect, celeba("0", args.n_template))
        )
        test = celeba("2", args.n)
        sets = {
            "identity": identity_cases(test),
            "warped": warped_cases(test, args.seed),
            "celeba_hq": hq_cases(detect, template, sorted(HQ.rglob("*.jpg")), args.seed),
        }
        for set_name, cases in sets.items():
            r = run_set(detect, template, cases)
            rows.append((f"{set_name:<10} {name}", _format(r)))
            result.update({f"{name}_{set_name}_{k}": v for k, v in r.items()})
    print_report(rows, result)


def _format(r: dict) -> str:
    return (
        f"detected {r['detect_rate']:6.1%}  eyes {r['eyes_rate']:6.1%}  "
        f"eye err {r['eye_err_px']:5.2f} px (p90 {r['eye_err_p90']:5.2f})  "
        f"IoU {r['iou']:.3f}  multi {r['multi_rate']:5.1%}  {r['ms']:6.1f} ms"
    )


if __name__ == "__main__":
    main()
