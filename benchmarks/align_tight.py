"""Face alignment of tight face crops (the face fills the photo, as in most cropped-face
datasets and phone selfies): how often a face is found, how much of the model's input is made
up past the photo's edges, how the made-up part is filled, and the time per photo.

    python benchmarks/align_tight.py                  # 300 crops, this checkout's stargan.align
    python benchmarks/align_tight.py --before         # the same crops, align.py at git HEAD
    python benchmarks/align_tight.py --model /path/to/celeba-model-folder   # + the fills' effect

Needs ../shared/data. The crops: CelebA-HQ portraits (stargan_v2_representative/celeba_hq,
1024 px, placed through their own alignment) and then CelebA test-partition images
(celeba_20k, already aligned). In the aligned 178x218 frame a face runs from its hairline
(y ~ 65) to its chin (y ~ 179), with the eyes 39 px apart; each crop is a square of 2.0-3.2
eye distances (2.9: hairline and chin touch the edges), centred on the face +-4 px, turned by
+-8 degrees, resized to 256-600 px and saved as a JPEG (quality 90). As the crop's placement
is known, so is the ideal alignment: "eye err" is the mean distance, in frame pixels, between
where the found alignment sends the template eye points and where they belong (CelebA-HQ:
where the portrait's own alignment puts them); "wrong" counts faces off by over 15 px.

Columns: "found" photos with a face; "eyes" faces whose eyes the eye cascade found; "made up"
the share of the model's input square (crop 178) outside the photo, median and 90th
percentile over found faces, and how many exceed align.MADE_UP_WARN; "ms" detection and warp
per photo (median, mean), OpenCV on one thread. The "afhq" row counts faces found in the 43
AFHQ animal photos, where none should be. The fill rows compare, on the found crops whose
source reaches past the crop, each of align.FILLS with the truth (the source's own pixels
warped the same way) over the made-up part: mean absolute difference in 8-bit levels; with
--model, also how far the model's output over the photo's own part moves from its output on
the truthful input (same labels: D_cls's estimate of the truthful input), in 8-bit levels.
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import math
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType

import numpy as np
from PIL import Image

from _report import print_report
from stargan import align
from stargan.images import center_crop_resize

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
CELEBA = DATA / "celeba_20k"
HQ = DATA / "stargan_v2_representative" / "celeba_hq"
AFHQ = DATA / "stargan_v2_representative" / "afhq"
CROP = 178  # the model's input square: crop_square(178) of the frame
EYE_DIST = align.TEMPLATE_EYES[1][0] - align.TEMPLATE_EYES[0][0]  # frame pixels
FACE_CENTRE = (88.0, 122.0)  # frame: midway between the hairline (~65) and the chin (~179)
WRONG_PX = 15.0


# ---------------------------------------------------------------------- crops
def celeba_test(n: int) -> list[Path]:
    rows = (CELEBA / "list_eval_partition.txt").read_text().split("\n")
    names = sorted(r.split()[0] for r in rows if r.strip() and r.split()[1] == "2")
    return [CELEBA / "img_align_celeba" / name for name in names[:n]]


def tight_crop(src: Image.Image, M0: np.ndarray, rng: random.Random):
    """A random tight square crop of ``src`` (M0: src -> frame) and T, the map src -> crop."""
    side = EYE_DIST * rng.uniform(2.0, 3.2)  # frame pixels
    turn = math.radians(rng.uniform(-8.0, 8.0))
    centre = (
        complex(*FACE_CENTRE) + complex(rng.uniform(-0.1, 0.1), rng.uniform(-0.1, 0.1)) * EYE_DIST
    )
    S = rng.randint(256, 600)
    a = side / S * complex(math.cos(turn), math.sin(turn))  # crop -> frame, complex form
    b = centre - a * complex(S / 2, S / 2)
    to_frame = np.array([[a.real, -a.imag, b.real], [a.imag, a.real, b.imag]])
    to_src = align.compose(align.invert(M0), to_frame)  # crop -> src
    k = 1.25 / math.sqrt(abs(np.linalg.det(to_src[:, :2])))  # crop px per src px, and some
    if k < 1:  # shrink with antialiasing first: the affine warp alone would alias
        small = src.resize((round(src.width * k), round(src.height * k)), Image.LANCZOS)
        R = np.array([[small.width / src.width, 0, 0], [0, small.height / src.height, 0]])
        to_small = tuple(align.compose(R, to_src).ravel())
        crop = small.transform((S, S), Image.AFFINE, to_small, Image.BICUBIC)
    else:
        crop = src.transform((S, S), Image.AFFINE, tuple(to_src.ravel()), Image.BICUBIC)
    buf = io.BytesIO()
    crop.save(buf, "JPEG", quality=90)
    return Image.open(buf).convert("RGB"), align.invert(to_src)


def make_cases(n: int, seed: int) -> list[tuple]:
    """(set name, source, M0: source -> frame, crop, T: source -> crop), n of them: up to
    n // 5 CelebA-HQ portraits, the rest CelebA."""
    rng = random.Random(seed)
    cases = []
    for p in sorted(HQ.rglob("*.jpg"))[: n // 5]:
        src = Image.open(p).convert("RGB")
        faces = align.detect_faces(src)  # the plain search finds every portrait
        M0 = align.frame_transform(faces[0])
        cases.append(("celeba_hq", src, M0, *tight_crop(src, M0, rng)))
    for p in celeba_test(n - len(cases)):
        src = Image.open(p).convert("RGB")
        cases.append(("celeba", src, np.eye(2, 3), *tight_crop(src, np.eye(2, 3), rng)))
    return cases


# ---------------------------------------------------------------------- runs
def committed_align(rev: str) -> ModuleType:
    """src/stargan/align.py as committed at ``rev``, imported as a module of its own."""
    source = subprocess.run(
        ["git", "show", f"{rev}:src/stargan/align.py"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    name = f"align_at_{rev.replace('~', '_').replace('^', '_')}"
    module = importlib.util.module_from_spec(importlib.util.spec_from_loader(name, loader=None))
    sys.modules[name] = module  # dataclasses look their module up
    exec(compile(source, f"{rev}:src/stargan/align.py", "exec"), module.__dict__)
    return module


def eye_error(E: np.ndarray) -> float:
    """Mean distance (frame pixels) by which E (frame -> frame) moves the template eyes."""
    q = np.array(align.TEMPLATE_EYES)
    return float(np.linalg.norm(align.apply(E, q) - q, axis=1).mean())


def run_case(under_test: ModuleType, case: tuple) -> dict:
    """Detection and warp of one crop, timed; its alignment's error and made-up share."""
    _, _, M0, crop, T = case
    start = time.perf_counter()
    faces = under_test.detect_faces(crop)
    M = under_test.frame_transform(faces[0]) if faces else None
    if M is not None:
        under_test.warp_to_frame(crop, M)
    out = {"s": time.perf_counter() - start, "found": M is not None, "M": M}
    if M is not None:
        out["eyes"] = faces[0].eyes_found
        out["err"] = eye_error(align.compose(M, align.compose(T, align.invert(M0))))
        out["made_up"] = align.made_up_share(crop.size, M, CROP)
    return out


def summary(results: list[dict]) -> dict:
    found = [r for r in results if r["found"]]
    errs = [r["err"] for r in found]
    shares = [r["made_up"] for r in found]
    seconds = [r["s"] for r in results]
    return {
        "n": len(results),
        "detect_rate": len(found) / max(len(results), 1),
        "eyes_rate": sum(r["eyes"] for r in found) / max(len(found), 1),
        "wrong": sum(e > WRONG_PX for e in errs),
        "eye_err_px": statistics.median(errs) if errs else math.nan,
        "eye_err_p90": float(np.percentile(errs, 90)) if errs else math.nan,
        "made_up_median": statistics.median(shares) if shares else math.nan,
        "made_up_p90": float(np.percentile(shares, 90)) if shares else math.nan,
        "warned": sum(s > align.MADE_UP_WARN for s in shares),
        "ms": 1000 * statistics.median(seconds),
        "ms_mean": 1000 * statistics.mean(seconds),
    }


def afhq_run(under_test: ModuleType) -> dict:
    """Faces found in the AFHQ animal photos (none are human) and the time per photo."""
    found, seconds = 0, []
    for p in sorted(AFHQ.rglob("*.jpg")):
        im = Image.open(p).convert("RGB")
        start = time.perf_counter()
        found += bool(under_test.detect_faces(im))
        seconds.append(time.perf_counter() - start)
    return {"n": len(seconds), "false_faces": found, "ms": 1000 * statistics.median(seconds)}


# ---------------------------------------------------------------------- fills
def inside_mask(size: tuple[int, int], M: np.ndarray) -> np.ndarray:
    """[218, 178] bool: frame pixels whose centre lies in a photo of ``size`` (M: photo ->
    frame)."""
    ones = Image.new("L", size, 255)
    out_to_in = tuple(align.invert(M).ravel())
    return np.asarray(ones.transform(align.FRAME_SIZE, Image.AFFINE, out_to_in, fillcolor=0)) > 0


def fill_errors(cases: list[tuple], results: list[dict], translator=None, target: str = ""):
    """Per fill: mean |filled - truth| over the made-up part of the model's input square (8-bit
    levels); with ``translator``, mean |G(filled) - G(truth)| over the photo's own part."""
    left, top, side = align.crop_square(CROP)
    square = (slice(top, top + side), slice(left, left + side))
    errs = {fill: [] for fill in align.FILLS}
    moved = {fill: [] for fill in align.FILLS}
    for (_, src, _, crop, T), r in zip(cases, results, strict=True):
        if not r["found"]:
            continue
        src_to_frame = align.compose(r["M"], T)
        in_crop = inside_mask(crop.size, r["M"])[square]
        made_up = ~in_crop & inside_mask(src.size, src_to_frame)[square]
        if made_up.sum() < 100:
            continue
        truth = align.warp_to_frame(src, src_to_frame, fill="edge").crop(
            (left, top, left + side, top + side)
        )
        frames = {f: align.warp_to_frame(crop, r["M"], fill=f) for f in align.FILLS}
        for fill, frame in frames.items():
            diff = np.abs(np.asarray(frame, np.float64)[square] - np.asarray(truth, np.float64))
            errs[fill].append(float(diff[made_up].mean()))
        if translator is not None:
            for fill, value in model_moves(translator, target, frames, truth, in_crop).items():
                moved[fill].append(value)
    return {f: statistics.mean(v) for f, v in errs.items() if v}, {
        f: statistics.mean(v) for f, v in moved.items() if v
    }


def model_moves(tr, target: str, frames: dict, truth: Image.Image, in_crop: np.ndarray) -> dict:
    """Per fill: mean |G(filled input) - G(truthful input)| over the photo's own part."""
    import torch

    size = tr.image_size
    x_true = tr.preprocess([center_crop_resize(truth, size, 0, tr.resize_filter)])
    c_org = tr.estimate_labels(x_true)
    c_trg = tr.target_labels(target, c_org, x_true)
    mask = np.asarray(Image.fromarray(in_crop).resize((size, size), Image.NEAREST))
    out = {}
    with torch.no_grad():
        y_true = tr.generate(x_true, c_trg, c_org)
        for fill, frame in frames.items():
            y = tr.generate(tr.preprocess([frame]), c_trg, c_org)
            diff = (y - y_true).abs()[0].mean(0).cpu().numpy() * 127.5  # [S, S], 8-bit levels
            out[fill] = float(diff[mask].mean())
    return out


# ---------------------------------------------------------------------- main
def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    ap.add_argument(
        "--n", type=int, default=300, help="tight crops (a fifth CelebA-HQ, at most 56)"
    )
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--before",
        nargs="?",
        const="HEAD",
        metavar="REV",
        help="test src/stargan/align.py as committed at REV (default HEAD), not this checkout's",
    )
    ap.add_argument("--model", type=Path, help="a CelebA model folder: also the fills' effect")
    ap.add_argument("--target", default="Blond_Hair=1", help="--model's translation")
    args = ap.parse_args()
    if not CELEBA.is_dir():
        sys.exit(f"needs {CELEBA} (the project's shared data)")
    align.opencv().setNumThreads(1)  # a time per photo that does not hang on the cores free
    under_test = committed_align(args.before) if args.before else align
    cases = make_cases(args.n, args.seed)
    results = [run_case(under_test, case) for case in cases]
    rows, result = [], {"n": args.n, "align": args.before or "checkout"}
    for name in ("celeba_hq", "celeba", "all"):
        picked = [r for c, r in zip(cases, results, strict=True) if name in ("all", c[0])]
        s = summary(picked)
        rows.append((f"{name} ({s['n']})", _format(s)))
        result.update({f"{name}_{k}": v for k, v in s.items() if k != "n"})
    a = afhq_run(under_test)
    rows.append((f"afhq ({a['n']})", f"false faces {a['false_faces']:3d}  {a['ms']:6.0f} ms"))
    result.update({f"afhq_{k}": v for k, v in a.items() if k != "n"})
    if not args.before:  # the committed warp has no fills to choose from: it repeats the edge
        translator = None
        if args.model:
            from stargan.translate import Translator

            translator = Translator.from_pretrained(args.model)
        errs, moved = fill_errors(cases, results, translator, args.target)
        for fill, err in errs.items():
            model = f"  model output moved {moved[fill]:5.2f}" if fill in moved else ""
            rows.append((f"fill {fill}", f"vs truth {err:5.1f} levels{model}"))
            result[f"fill_{fill}_err"] = err
            if fill in moved:
                result[f"fill_{fill}_model_moved"] = moved[fill]
    print_report(rows, result)


def _format(s: dict) -> str:
    return (
        f"found {s['detect_rate']:6.1%}  eyes {s['eyes_rate']:6.1%}  wrong {s['wrong']:2d}  "
        f"eye err {s['eye_err_px']:4.1f} px (p90 {s['eye_err_p90']:5.1f})  "
        f"made up {s['made_up_median']:4.0%} (p90 {s['made_up_p90']:4.0%}, "
        f"{s['warned']} over {align.MADE_UP_WARN:.0%})  "
        f"{s['ms']:5.0f} ms (mean {s['ms_mean']:5.0f})"
    )


if __name__ == "__main__":
    main()
