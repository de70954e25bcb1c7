"""Make a bundled model folder (src/stargan/bundled/NAME) from a trained CelebA model.

    stargan train --preset celeba-subset-v1 --data ../shared/data/celeba_20k --outdir runs
    stargan export runs/00001-celeba-subset-v1 -o celeba-fp32
    stargan eval celeba-fp32 --data ../shared/data/celeba_20k --classifier judge64 \\
        --metrics classification,reconstruction -o eval-celeba
    python benchmarks/bundle_model.py celeba-fp32 --data ../shared/data/celeba_20k \\
        --run runs/00001-celeba-subset-v1 --eval eval-celeba -o src/stargan/bundled/celeba

What it writes: the weights in float16 (refused unless the outputs keep at least --min-psnr dB
against float32's on the sample faces, every single-attribute change), config.json with the
machine's data path replaced by the path as given, ``samples/``: the first --samples images of
the official test partition (never trained on) with their provenance in samples/README.md,
and card.md, the model card, filled from the run's log and the evaluation's metrics.jsonl.
It prints a table: weight bytes, float16-vs-float32 PSNR, and the scores it put in the card.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

import torch
from PIL import Image
from safetensors.torch import load_file, save_file

sys.path.insert(0, str(Path(__file__).resolve().parent))
import stargan  # noqa: E402
from _report import print_report  # noqa: E402
from stargan.data.dataset import to_uint8  # noqa: E402
from stargan.evaluate.image_metrics import psnr  # noqa: E402

WEIGHTS = ("model.safetensors", "discriminator.safetensors")
REAL_ERROR = "judge's error on real test images"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("model", type=Path, help="the exported float32 model folder")
    ap.add_argument("--data", required=True, help="the CelebA folder, as the card should name it")
    ap.add_argument("--run", type=Path, required=True, help="the training run folder")
    ap.add_argument("--eval", type=Path, required=True, help="stargan eval's output folder")
    ap.add_argument(
        "--eval-also",
        action="append",
        default=[],
        metavar="NAME=DIR",
        help="another data set's stargan eval folder, for the card (repeatable)",
    )
    ap.add_argument("-o", "--out", type=Path, required=True)
    ap.add_argument("--samples", type=int, default=8)
    ap.add_argument("--min-psnr", type=float, default=40.0)
    ap.add_argument("--commit", default="", help="the commit that trained it (default: HEAD)")
    ap.add_argument("--note", default="", help="a sentence for the card's training paragraph")
    args = ap.parse_args()

    if args.out.exists():
        shutil.rmtree(args.out)
    shutil.copytree(args.model, args.out)
    sample_files = copy_samples(Path(args.data), args.out / "samples", args.samples)
    sizes = halve_weights(args.out)
    fp16_psnr = output_psnr(args.model, args.out, sample_files)
    if fp16_psnr < args.min_psnr:
        shutil.rmtree(args.out)
        sys.exit(f"float16 outputs are {fp16_psnr:.1f} dB from float32's (< {args.min_psnr})")
    scrub_config(args.out / "config.json", args.data)
    scores = read_scores(args.eval)
    also = {name: read_scores(Path(d)) for name, _, d in (a.partition("=") for a in args.eval_also)}
    facts = run_facts(args.run) | ({"commit": args.commit} if args.commit else {})
    write_card(args.out / "card.md", args, scores, facts, fp16_psnr, also)
    rows = [(name, f"{size / 2**20:.2f} MB") for name, size in sizes.items()]
    rows.append(("float16 vs float32 outputs (worst PSNR)", f"{fp16_psnr:.1f} dB"))
    rows += [(k, str(v)) for k, v in scores.items() if not isinstance(v, dict)]
    print_report(rows, {"bytes": sum(sizes.values()), "fp16_psnr_db": fp16_psnr})


def copy_samples(data: Path, out: Path, n: int) -> list[Path]:
    """The first ``n`` images (by file name) of the official test partition."""
    partition = (data / "list_eval_partition.txt").read_text().split("\n")
    names = sorted(ln.split()[0] for ln in partition if ln.strip().endswith(" 2"))[:n]
    out.mkdir(parents=True)
    for name in names:
        shutil.copyfile(data / "img_align_celeba" / name, out / name)
    (out / "README.md").write_text(
        "CelebA test-partition faces, never seen in training\n\n"
        f"{', '.join(names)}: CelebA (Liu et al., ICCV 2015, CUHK MMLab), img_align_celeba,\n"
        "official partition 2 (test); for non-commercial research use, as CelebA's terms say.\n",
        encoding="utf-8",
    )
    return [out / name for name in names]


def halve_weights(folder: Path) -> dict[str, int]:
    sizes = {}
    for name in WEIGHTS:
        path = folder / name
        if path.exists():
            state = {
                k: v.half() if v.is_floating_point() else v for k, v in load_file(path).items()
            }
            save_file(state, path)
            sizes[name] = path.stat().st_size
    return sizes


@torch.no_grad()
def output_psnr(fp32_dir: Path, fp16_dir: Path, photos: list[Path]) -> float:
    """The lowest PSNR between the two folders' outputs over every single-domain change."""
    full, half = stargan.load(fp32_dir), stargan.load(fp16_dir)
    x = full.preprocess([Image.open(p).convert("RGB") for p in photos])
    worst = float("inf")
    for (_, y32), (_, y16) in zip(full.all_domains(x), half.all_domains(x), strict=True):
        worst = min(worst, float(psnr(to_uint8(y32), to_uint8(y16)).min()))
    return worst


def scrub_config(path: Path, data: str) -> None:
    """The training machine's data path -> the path as given; the export's source path off."""
    config = json.loads(path.read_text())
    for source in config.get("sources", []):
        source.get("data", {})["path"] = data
    config.pop("source", None)
    path.write_text(json.dumps(config, indent=2) + "\n")


def read_scores(eval_dir: Path) -> dict:
    scores: dict = {}
    for line in (eval_dir / "metrics.jsonl").read_text().splitlines():
        record = json.loads(line)
        summary = record["summary"]
        if record["metric"] == "classification":
            scores["target accuracy"] = f"{summary['target_acc']:.1%}"
            scores["other attributes kept"] = f"{summary['kept']:.1%}"
            scores["judge's error on real test images"] = f"{summary['real_error']:.1%}"
            scores["n"] = record["n"]
            bars = record["tables"][0]
            scores["per attribute"] = {
                row[0]: dict(zip(bars["columns"][1:], row[1:], strict=True)) for row in bars["rows"]
            }
        elif record["metric"] == "reconstruction":
            scores["cycle reconstruction PSNR"] = f"{summary['rec_psnr']:.2f} dB"
        elif record["metric"] == "fid":
            scores["FID"] = (
                f"{summary['fid_mean']:.1f} (mean over {summary['tasks']} tasks; real test "
                f"images against the same training images: {summary['fid_real_floor']:.1f})"
            )
            scores["fid tasks"] = record["tables"][0]["rows"]
    return scores


def run_facts(run: Path) -> dict:
    rows = [json.loads(ln) for ln in (run / "stats.jsonl").read_text().splitlines() if ln]
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
    ).stdout.strip()
    config = json.loads((run / "config.json").read_text())
    return {
        "iterations": rows[-1]["step"],
        "minutes": rows[-1]["time_s"] / 60,
        "preset": config["name"],
        "commit": commit or "unknown",
        "images": json.loads((run / "data_summary.json").read_text()),
        "config": config,
    }


CARD_COLUMNS = (
    "target accuracy",
    "others kept",
    "classifier on real",
    "classifier on real images of the target",
)


def attribute_table(per: dict[str, dict]) -> str:
    """The card's per-attribute rows from `stargan eval`'s bars, read by column name (an
    eval from before a column existed leaves it blank)."""

    def cell(value) -> str:
        return "–" if value is None else f"{value:.1%}"

    return "\n".join(
        "| " + " | ".join([name, *(cell(row.get(col)) for col in CARD_COLUMNS)]) + " |"
        for name, row in per.items()
    )


def write_card(
    path: Path,
    args: argparse.Namespace,
    scores: dict,
    facts: dict,
    fp16: float,
    also: dict[str, dict] | None = None,
) -> None:
    table = attribute_table(scores.get("per attribute", {}))
    counts = next(iter(facts["images"].values()))
    image_size = facts["config"]["model"]["image_size"]
    text = CARD.format(
        size=image_size,
        preset=facts["preset"],
        data=args.data,
        iterations=facts["iterations"],
        minutes=facts["minutes"],
        commit=facts["commit"],
        images=counts.get("images", "?"),
        counts=", ".join(f"{k} {v:,}" for k, v in counts.items() if k != "images"),
        table=table,
        fp16=fp16,
        condition=f"model.g_condition={facts['config']['model']['g_condition']}",
        note=f" {args.note}" if args.note else "",
        **{
            k.replace(" ", "_").replace("'", ""): v
            for k, v in scores.items()
            if k not in ("per attribute", "fid tasks")
        },
    )
    extra = _fid_section(scores) + _also_section(also or {})
    head, sep, tail = text.partition("\n## Use\n")
    path.write_text(head + extra + sep + tail, encoding="utf-8")


def _fid_section(scores: dict) -> str:
    if "fid tasks" not in scores:
        return (
            "\nFID per task: not measured for this version (`stargan eval celeba --data "
            "PATH --metrics fid`,\nabout 27 minutes on a 2-core CPU).\n"
        )
    rows = "\n".join(
        f"| {task} | {n_fake} | {n_real} | {fid:.1f} |"
        for task, n_fake, n_real, fid in scores["fid tasks"]
    )
    return (
        f"\nFID per task (StarGAN v2's protocol: translations against real training images of\n"
        f"the target attribute value, Inception pool features): **{scores['FID']}**.\n\n"
        "| task | translations | real images | FID |\n|---|--:|--:|--:|\n" + rows + "\n"
    )


def _also_section(also: dict[str, dict]) -> str:
    lines = [
        f"- {name} ({s['n']} test images): target accuracy {s['target accuracy']}, other "
        f"attributes kept {s['other attributes kept']}, reconstruction "
        f"{s.get('cycle reconstruction PSNR', 'not measured')} (judge's error on its real "
        f"images {s[REAL_ERROR]})"
        for name, s in also.items()
    ]
    if not lines:
        return ""
    return (
        "\nThe same judge on other CelebA test images (never trained on):\n\n"
        + "\n".join(lines)
        + "\n"
    )


CARD = """\
# StarGAN v1 on real CelebA faces, {size} px: hair colour (black, blond, brown), sex, age

## What it is

A StarGAN (Choi et al., CVPR 2018) generator with the quality recipe of docs/quality.md
(attention mask, resize up-sampling, running-average weights, a D_cls made robust to specks,
G told the change c_trg - c_org rather than the target: {condition}), trained with this
toolkit on this toolkit's 2-core CPU:

    stargan train --preset {preset} --data {data}

{iterations:,} iterations, {minutes:.0f} minutes of training, commit {commit}.{note}
Weights stored in float16 (outputs {fp16:.1f} dB PSNR from float32's at the worst of the sample
faces' changes); they load as float32.

## Data

CelebA (Liu et al., ICCV 2015): the ../shared/data/celeba_20k subset, 20,000 aligned and
cropped images of 4,000 celebrities, official partitions; trained on the {images:,} train and
validation images ({counts}), centre-cropped to 178 px and resized to {size}. CelebA's
labels are binary and were made by human annotators: Black_Hair, Blond_Hair and Brown_Hair
are the hair colour as seen (a face may have none of them: grey, red, covered, bald), Male is
the annotated sex, Young a perceived age group. The model changes what a classifier trained
on these labels reads, not a person's identity, sex or age.

## Scores

On the {n} test-partition images (never trained on), every single-attribute change, judged by
a ResNet-18 trained on the training split (`stargan classifier train`), whose own error on the
real test images is {judges_error_on_real_test_images}:

- target attribute accuracy: **{target_accuracy}**
- other attributes kept: {other_attributes_kept}
- cycle reconstruction PSNR (x -> target -> back): {cycle_reconstruction_PSNR}

| changed attribute | target accuracy | others kept | judge on real | judge on real of the target |
|---|--:|--:|--:|--:|
{table}

## Use

    stargan translate celeba photo.jpg --align --to Blond_Hair=1 -o out
    stargan serve                    # the page, with this model and real sample faces

Photos should show one frontal face; `--align` finds it and aligns it as CelebA is aligned,
`--paste-back` puts the translated face back into the photo.

## Limits

- {size} px: the output is a small, soft face; paste-back into a large photo shows it.
- CelebA is skewed: mostly young, light-skinned celebrities, posed, lit and made up;
  older faces, darker skin, children, glasses, hats, profile views and heavy occlusion
  are rarer in training and translate worse.
- What fails: blond and young are the weak targets (see the table); large changes
  (sex, age) can leave smears or colour patches around the mouth and eyes; the
  reconstruction is far from exact.
- The sample faces (samples/) are CelebA test images; CelebA is for non-commercial
  research use, and so is this model.
"""


if __name__ == "__main__":
    main()
