"""``stargan cyclegan ...``: the pairwise CycleGAN baseline of the StarGAN paper's Table 3
(train, export, translate, count parameters). Registered on the main group in cli.py;
user errors are StarGANErrors, printed there as one line with exit code 2."""

from __future__ import annotations

from pathlib import Path

import click

from stargan.cyclegan_config import CYCLEGAN_PRESETS, get_cycle_preset
from stargan.errors import StarGANError


@click.group(context_settings={"help_option_names": ["-h", "--help"], "show_default": True})
def cyclegan() -> None:
    """The pairwise baseline: one CycleGAN per pair of domains (k(k-1) generators for k
    domains), trained at the budget of one StarGAN and evaluated as one (docs/cyclegan.md).

    \b
    Examples:
      stargan cyclegan train --preset cyclegan-faces-expr
      stargan cyclegan train --preset cyclegan-ckplus --data ../shared/data/ck_plus_48
      stargan cyclegan export runs/00001-cyclegan-ckplus -o ck-cyclegan
      stargan cyclegan translate ck-cyclegan face.png --from anger --to happy -o out
      stargan eval ck-cyclegan --metrics classification,params
      stargan cyclegan params
    """


# ---------------------------------------------------------------------- train
@cyclegan.command("train")
@click.option(
    "--preset",
    type=click.Choice(sorted(CYCLEGAN_PRESETS)),
    default="cyclegan-faces-expr",
    help="Starting configuration.",
)
@click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override a config value, e.g. --set train.batch_size=8 (repeatable).",
)
@click.option("--data", "data_path", default=None, metavar="[NAME=]PATH", help="Dataset folder.")
@click.option(
    "--budget-iters",
    type=click.IntRange(1),
    default=None,
    help="Total iterations over all pairs, split evenly (one StarGAN run's budget).",
)
@click.option("--pair-iters", type=click.IntRange(1), default=None, help="Iterations per pair.")
@click.option("--on-bad-image", type=click.Choice(["error", "skip"]), default=None)
@click.option("--outdir", type=click.Path(file_okay=False), default="runs")
@click.option(
    "--resume", default=None, metavar="latest|RUN", help="Continue the newest or a named run."
)
@click.option("--dry-run", is_flag=True, help="Resolve the config and the pairs, check the data.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def train_cmd(
    preset: str,
    overrides: tuple[str, ...],
    data_path: str | None,
    budget_iters: int | None,
    pair_iters: int | None,
    on_bad_image: str | None,
    outdir: str,
    resume: str | None,
    dry_run: bool,
    quiet: bool,
) -> None:
    """Train one CycleGAN for every pair of a categorical dataset's domains, one pair after
    another, into one run folder (runs/NNNNN-NAME/pairs/...); Ctrl-C checkpoints.

    \b
    Examples:
      stargan cyclegan train --preset cyclegan-tiny
      stargan cyclegan train --preset cyclegan-ckplus --data ../shared/data/ck_plus_48
      stargan cyclegan train --preset cyclegan-faces-expr --budget-iters 7000
      stargan cyclegan train --preset cyclegan-ckplus --pair-iters 500 --dry-run
      stargan cyclegan train --resume latest
    """
    from stargan.train.cyclegan_run import train_pairs

    sets = list(overrides) + _budget_sets(budget_iters, pair_iters)
    sets += _data_sets(get_cycle_preset(preset), data_path, on_bad_image)
    if dry_run:
        _dry_run(get_cycle_preset(preset), sets, quiet)
        return
    cfg = None if resume else get_cycle_preset(preset)
    run_dir = train_pairs(cfg, Path(outdir), resume, sets, progress=not quiet)
    click.echo(f"run folder: {run_dir}")


def _budget_sets(budget_iters: int | None, pair_iters: int | None) -> list[str]:
    if budget_iters and pair_iters:
        raise StarGANError("give --budget-iters (total over all pairs) or --pair-iters, not both")
    if budget_iters:
        return [f"train.budget_iters={budget_iters}", "train.pair_iters=0"]
    if pair_iters:
        return [f"train.pair_iters={pair_iters}", "train.budget_iters=0"]
    return []


def _data_sets(cfg, data_path: str | None, on_bad_image: str | None) -> list[str]:
    from stargan.data import named_paths

    out = []
    if data_path:
        out += [f"data.path={p}" for p in named_paths([cfg.data.label], [data_path]).values()]
    if on_bad_image:
        out.append(f"data.on_bad_image={on_bad_image}")
    return out


def _dry_run(cfg, sets: list[str], quiet: bool) -> None:
    from stargan.data import summarize
    from stargan.data.report import balance_report
    from stargan.train.cyclegan_run import plan_pairs, prepare_cycle_config

    cfg, spec = prepare_cycle_config(cfg, sets)
    click.echo(cfg.to_json())
    click.echo(plan_pairs(cfg, spec).describe(cfg))
    for split in ("train", "test"):
        summary = summarize(cfg.data, cfg.model.image_size, split, progress=not quiet)
        click.echo(balance_report(f"{cfg.data.label} {split}", summary))


# ---------------------------------------------------------------------- export
@cyclegan.command("export")
@click.argument("run", type=click.Path())
@click.option("-o", "--out", type=click.Path(file_okay=False), required=True)
@click.option("--no-discriminator", is_flag=True, help="Leave the discriminators out.")
def export_cmd(run: str, out: str, no_discriminator: bool) -> None:
    """Write a pairwise model folder (config.json, one safetensors per generator) from
    each pair's latest checkpoint of a run.

    \b
    Example:
      stargan cyclegan export runs/00001-cyclegan-ckplus -o ck-cyclegan
    """
    from stargan.cyclegan import export_pairs

    path, unfinished = export_pairs(Path(run), Path(out), not no_discriminator)
    if unfinished:
        click.echo(f"note: {len(unfinished)} pair(s) not finished: {', '.join(unfinished)}")
    click.echo(f"model folder: {path}")


# ---------------------------------------------------------------------- translate
@cyclegan.command("translate")
@click.argument("model", type=click.Path())
@click.argument("inputs", nargs=-1, required=True, type=click.Path())
@click.option("--from", "source", required=True, help="The inputs' own domain.")
@click.option("--to", "targets", required=True, help="Target domain(s), comma-separated, or all.")
@click.option("-o", "--out", type=click.Path(file_okay=False), required=True)
@click.option("--device", default="cpu", help="cpu, cuda or cuda:N.")
def translate_cmd(
    model: str, inputs: tuple[str, ...], source: str, targets: str, out: str, device: str
) -> None:
    """Translate images of domain --from to each --to domain with G_{from -> to};
    writes OUT/<name>-<domain>.png.

    \b
    Examples:
      stargan cyclegan translate ck-cyclegan face.png --from anger --to happy -o out
      stargan cyclegan translate ck-cyclegan faces/ --from neutral --to all -o out
    """
    from stargan.cyclegan import PairwiseModel
    from stargan.images import find_images, load_rgb, save_png
    from stargan.outputs import check_device, check_unique_stems, ensure_writable

    pairs = PairwiseModel.from_pretrained(Path(model), check_device(device))
    names = pairs.spec.names
    chosen = [n.strip() for n in targets.split(",") if n.strip()]
    if targets == "all":
        chosen = [n for n in names if n != source]
    for name in (source, *chosen):
        pairs.spec.index(name)  # unknown names: an error with close matches
    files = find_images([Path(p) for p in inputs], skip=Path(out))
    if not files:
        raise StarGANError(f"no images in {', '.join(inputs)}")
    check_unique_stems(files)
    ensure_writable(Path(out))
    import numpy as np  # here: the CLI starts without numpy

    images = [load_rgb(f) for f in files]
    for name in chosen:
        for f, y in zip(files, pairs.translate(images, name, source), strict=True):
            save_png(np.asarray(y), Path(out) / f"{f.stem}-{name}.png")
    click.echo(f"{len(files)} image(s) x {len(chosen)} domain(s) -> {out}")


# ---------------------------------------------------------------------- params
@cyclegan.command("params")
@click.option(
    "--preset",
    "presets",
    multiple=True,
    type=click.Choice(sorted(CYCLEGAN_PRESETS)),
    help="Presets to count (default: all).",
)
def params_cmd(presets: tuple[str, ...]) -> None:
    """Parameters of a preset's whole pairwise set (k(k-1) generators and discriminators)
    against the StarGAN it is compared with (its G and D for the same k domains); a
    Markdown table. Counted on the meta device: nothing is allocated or downloaded.

    \b
    Example:
      stargan cyclegan params --preset cyclegan-ckplus
    """
    click.echo(
        "| preset | px | domains | CycleGAN networks | one G / one D | CycleGAN set "
        "(G + D) | StarGAN preset | StarGAN G + D | ratio |"
    )
    click.echo("|---|---|---|---|---|---|---|---|---|")
    for name in presets or tuple(CYCLEGAN_PRESETS):
        click.echo(_params_row(name))


def _params_row(name: str) -> str:
    from stargan.cyclegan import pairwise_parameters, stargan_parameters
    from stargan.data import dataset_spec

    cfg = get_cycle_preset(name)
    k = dataset_spec(cfg.data).dim
    ours, star = pairwise_parameters(cfg.model, k), stargan_parameters(cfg.compare_to, k)
    return (
        f"| {name} | {cfg.model.image_size} | {k} | {ours['generators']} G + "
        f"{ours['generators']} D | {ours['G_each']:,} / {ours['D_each']:,} | "
        f"{ours['G']:,} + {ours['D']:,} = {ours['total']:,} | {cfg.compare_to} | "
        f"{star['G']:,} + {star['D']:,} = {star['total']:,} | "
        f"{ours['total'] / star['total']:.1f}x |"
    )
