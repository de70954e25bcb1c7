"""The StarGAN v2 evaluation protocol (paper section 4 and appendix C), for v2 models.

For every (source, target) pair of domains, each test image of the source domain is
rendered ``K`` (10) times in the target domain: latent-guided with 10 random styles
F(z, y), and reference-guided with the styles of 10 random test images of the target
domain. From those outputs:

* ``diversity``: LPIPS between the 10 outputs of a source image, averaged (higher: more
  diverse), per pair and over pairs;
* ``fid``: FID of all the pair's outputs against real training images of the target
  domain, per pair and averaged over pairs (the paper's FID);
* ``classification``: the share of outputs a ResNet-18 trained on real images reads as
  the target domain;
* ``params`` and ``speed`` of the networks that synthesise (G, F, E; D if present).

Outputs are generated once per (mode, source, target) and shared by the metrics of one
``stargan eval`` call. Latents and references are seeded by ``--seed`` and the pair.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from stargan.data.dataset import to_model_range, to_uint8
from stargan.evaluate.metrics import EvalContext, Metric, subset
from stargan.images import make_grid, save_png

K = 10  # outputs per source image and pair (official num_outs_per_domain)
ALL = 10**9  # EvalSettings.n that takes every test image
MODES = ("latent", "reference")


def pairs(ctx: EvalContext) -> list[tuple[int, int]]:
    n = len(ctx.tr.domains)
    return [(s, t) for t in range(n) for s in range(n) if s != t]


def _sources(ctx: EvalContext, domain: int) -> torch.Tensor:
    x_u8, c = ctx.test_images(0)
    return x_u8[c.argmax(1) == domain]


def outputs(ctx: EvalContext, mode: str, src: int, trg: int) -> torch.Tensor:
    """uint8 [n_src, K, 3, S, S]: each source test image of ``src`` rendered K times in
    ``trg`` (latent- or reference-guided), computed once per eval."""
    return ctx.cached(("v2-outputs", mode, src, trg), lambda: _generate(ctx, mode, src, trg))


def _generate(ctx: EvalContext, mode: str, src: int, trg: int) -> torch.Tensor:
    model, settings = ctx.tr, ctx.settings
    x_src = _sources(ctx, src)
    n = len(x_src)
    gen = torch.Generator().manual_seed(settings.seed * 1_000_003 + src * 1_009 + trg)
    if mode == "latent":
        z = torch.randn(K, n, model.latent_dim, generator=gen)
    else:
        refs = _sources(ctx, trg)
        ref_rows = torch.randint(len(refs), (K, n), generator=gen)
    out = torch.empty(n, K, *x_src.shape[1:], dtype=torch.uint8)
    b = settings.batch_size
    for k in range(K):
        for start in range(0, n, b):
            rows = slice(start, min(start + b, n))
            x = to_model_range(x_src[rows]).to(model.device)
            if mode == "latent":
                s = model.latent_styles(trg, z=z[k, rows])
            else:
                s = model.reference_styles(to_model_range(refs[ref_rows[k, rows]]), trg)
            out[rows, k] = to_uint8(model.generate(x, s)).cpu()
    return out


def _each_pair(ctx: EvalContext, what: str):
    """(mode, source, target) over both modes and every pair, with a progress bar."""
    items = [(m, s, t) for m in MODES for s, t in pairs(ctx)]
    return tqdm(items, desc=what, unit="pair", disable=not ctx.settings.progress)


def _matrix(ctx: EvalContext, title: str, cells: dict, fmt: str) -> dict[str, Any]:
    names = list(ctx.tr.domains)
    return {
        "title": title,
        "kind": "matrix",
        "row_label": "source",
        "col_label": "target",
        "columns": names,
        "rows": [[a, *(cells.get((i, j)) for j in range(len(names)))] for i, a in enumerate(names)],
        "format": fmt,
    }


def _by_mode(ctx: EvalContext, name: str, title: str, measure, fmt: str) -> dict[str, Any]:
    """``measure(mode, src, trg)`` for every pair; per-mode means and matrices."""
    cells: dict[str, dict] = {m: {} for m in MODES}
    for mode, s, t in _each_pair(ctx, name):
        cells[mode][(s, t)] = measure(mode, s, t)
    summary = {}
    for mode in MODES:
        values = [v for v in cells[mode].values() if v is not None]
        summary[f"{name}_{mode}"] = float(np.mean(values)) if values else None
    tables = [_matrix(ctx, f"{title}, {m}-guided", cells[m], fmt) for m in MODES]
    return {"summary": summary, "tables": tables}


# ---------------------------------------------------------------- diversity
def run_diversity(ctx: EvalContext) -> dict[str, Any]:
    from stargan.evaluate.lpips import diversity_lpips, load_lpips

    lpips = ctx.cached("lpips", lambda: load_lpips(ctx.tr.device))

    def measure(mode: str, s: int, t: int) -> float | None:
        groups = outputs(ctx, mode, s, t)
        return diversity_lpips(list(groups), lpips) if len(groups) else None

    result = _by_mode(ctx, "lpips", "LPIPS diversity of 10 outputs per source", measure, "float")
    result["images"] = [_grid(ctx, mode) for mode in MODES]
    result["n"] = _n_sources(ctx)
    return result


def _diversity_applies(ctx: EvalContext) -> str | None:
    from stargan.evaluate.lpips import MIN_SIZE

    if ctx.tr.image_size < MIN_SIZE:
        return f"LPIPS needs images of at least {MIN_SIZE} px"
    return None


def _grid(ctx: EvalContext, mode: str) -> str:
    """The first source of each domain, its K outputs in each other domain."""
    rows = []
    for s, t in pairs(ctx):
        out = outputs(ctx, mode, s, t)
        if len(out):
            rows.append(torch.cat([_sources(ctx, s)[:1], out[0]]))
    from stargan.evaluate.classification import model_slug

    path = ctx.out_dir / "samples" / f"{model_slug(ctx.model_path)}-{mode}.png"
    save_png(make_grid(torch.cat(rows), K + 1), path)
    return ctx.relative(path)


def _n_sources(ctx: EvalContext) -> int:
    return len(ctx.test_images(0)[0])


# ---------------------------------------------------------------- fid
def run_fid(ctx: EvalContext) -> dict[str, Any]:
    from stargan.evaluate.fid import PROTOCOL, inception_features, load_inception
    from stargan.evaluate.translation_fid import fid_between

    inception = ctx.cached(
        "inception", lambda: load_inception(ctx.settings.inception, ctx.tr.device)
    )
    settings = ctx.settings
    train = ctx.dataset(0, "train")
    rows = subset(len(train), settings.fid_real, settings.seed)
    real_u8, real_c = train.batch(torch.from_numpy(rows))
    real = inception_features(real_u8, inception, settings.batch_size, settings.progress)
    real_domain = real_c.argmax(1).numpy()

    def measure(mode: str, s: int, t: int) -> float | None:
        fake_u8 = outputs(ctx, mode, s, t).flatten(0, 1)
        fake = inception_features(fake_u8, inception, settings.batch_size, progress=False)
        return fid_between(fake, real[real_domain == t])

    result = _by_mode(ctx, "fid", "FID against real images of the target", measure, "float")
    result["notes"] = [
        f"{K} outputs per source test image and pair; real: up to {settings.fid_real} "
        "training images. FID from few images is biased upward: compare at equal n."
    ]
    result["protocol"] = PROTOCOL
    result["n"] = _n_sources(ctx)
    return result


# ---------------------------------------------------------------- official FID
OFFICIAL_FID_PROTOCOL = (
    "official StarGAN v2 protocol (clovaai/stargan-v2 metrics/eval.py): torchvision's "
    "ImageNet Inception v3; real = every training image of the target domain; sources = "
    "every test image of the source domain, 10 outputs each"
)


def run_official_fid(ctx: EvalContext) -> dict[str, Any]:
    """The official v2 FID per (source, target) pair and mode; its own metric name and
    summary keys (``fid_official_*``), so it never shares a column with ``fid``."""
    from stargan.evaluate.fid import inception_features, load_inception
    from stargan.evaluate.translation_fid import fid_between

    settings = ctx.settings
    inception = ctx.cached(
        "inception-torchvision",
        lambda: load_inception(settings.inception_torchvision, ctx.tr.device, "torchvision"),
    )
    every = EvalContext(ctx.model_path, ctx.tr, ctx.data, replace(settings, n=ALL), ctx.out_dir)
    every._cache = {k: v for k, v in ctx._cache.items() if k[:1] == ("dataset",)}
    all_tests = len(ctx.test_images(0)[0]) == len(every.test_images(0)[0])
    train = every.dataset(0, "train")
    domain = np.asarray(train.labels).argmax(1)
    real = {
        t: inception_features(
            np.asarray(train.images)[domain == t], inception, settings.batch_size, settings.progress
        )
        for t in range(len(ctx.tr.domains))
    }

    def measure(mode: str, s: int, t: int) -> float | None:
        # the outputs the other metrics share when --n took every test image; else made
        # here and dropped after use (all of them at once would not fit in memory)
        made = outputs(ctx, mode, s, t) if all_tests else _generate(every, mode, s, t)
        fake = inception_features(made.flatten(0, 1), inception, settings.batch_size, False)
        return fid_between(fake, real[t])

    title = "FID, official StarGAN v2 protocol"
    result = _by_mode(every, "fid_official", title, measure, "float")
    reals = ", ".join(f"{ctx.tr.domains[t]} {len(f)}" for t, f in real.items())
    result["notes"] = [OFFICIAL_FID_PROTOCOL + f"; real images per domain: {reals}."]
    result["protocol"] = "stargan-v2-official"
    result["n"] = _n_sources(every)
    return result


# ---------------------------------------------------------------- classification
def run_classification(ctx: EvalContext) -> dict[str, Any]:
    from stargan.evaluate.classification import classifier_for

    clf = classifier_for(ctx, 0)

    def measure(mode: str, s: int, t: int) -> float | None:
        fake = outputs(ctx, mode, s, t).flatten(0, 1)
        if not len(fake):
            return None
        return float((clf.predict(to_model_range(fake)).argmax(1) == t).float().mean())

    result = _by_mode(ctx, "accuracy", "Outputs read as the target domain", measure, "percent")
    x_u8, c = ctx.test_images(0)
    real_right = clf.predict(to_model_range(x_u8)).argmax(1) == c.argmax(1)
    result["summary"]["real_accuracy"] = float(real_right.float().mean())
    result["n"] = len(x_u8)
    return result


# ---------------------------------------------------------------- params and speed
def run_params(ctx: EvalContext) -> dict[str, Any]:
    from stargan.evaluate.model_stats import params_record

    model = ctx.tr
    nets = {"G": model.G, "F": model.F, "E": model.E}
    if model.D is not None:
        nets["D"] = model.D
    return params_record(nets)


def run_speed(ctx: EvalContext) -> dict[str, Any]:
    from stargan.evaluate.model_stats import median_seconds, speed_note

    model, batch = ctx.tr, ctx.settings.batch_size
    size = model.image_size
    gen = torch.Generator().manual_seed(ctx.settings.seed)
    x = torch.rand(batch, 3, size, size, generator=gen).mul(2).sub(1).to(model.device)
    z = torch.randn(batch, model.latent_dim, generator=gen)

    def synthesise(n: int) -> None:
        model.generate(x[:n], model.latent_styles(0, z=z[:n]))

    batched = median_seconds(lambda: synthesise(batch))
    single = median_seconds(lambda: synthesise(1))
    summary = {
        "images_per_s": batch / batched,
        "ms_per_image_batched": 1000 * batched / batch,
        "ms_batch1": 1000 * single,
        "batch_size": batch,
        "threads": torch.get_num_threads(),
    }
    return {
        "n": None,
        "summary": summary,
        "notes": [speed_note(ctx) + "; latent-guided G(x, F(z, y))"],
    }


# The v2 version of each metric both families have, and what it measures where that differs
# from the v1 description.
STYLE_RUNS: dict[str, Callable[[EvalContext], dict[str, Any]]] = {
    "fid": run_fid,
    "classification": run_classification,
    "params": run_params,
    "speed": run_speed,
}
STYLE_ABOUT = {
    "fid": "FID of 10 latent- and reference-guided outputs per source, per (source, "
    "target) pair, against real target images (StarGAN v2 protocol)",
    "classification": "share of latent- and reference-guided outputs a ResNet-18 trained "
    "on real images reads as the target domain",
}


def with_v2(metric: Metric) -> Metric:
    """``metric`` with its StarGAN v2 behaviour attached, where the v2 protocol has one."""
    if metric.name not in STYLE_RUNS:
        return metric
    return replace(
        metric, run_v2=STYLE_RUNS[metric.name], about_v2=STYLE_ABOUT.get(metric.name, "")
    )


OFFICIAL_FID = Metric(
    "fid-v2-official",
    "FID by the official StarGAN v2 protocol (torchvision Inception; every training image "
    "of the target, every test image as a source; weights by --inception-torchvision PATH)",
    None,
    formats={"fid_official_latent": "float", "fid_official_reference": "float"},
    run_v2=run_official_fid,
)

DIVERSITY = Metric(
    "diversity",
    "LPIPS among 10 latent- and reference-guided outputs per source (StarGAN v2)",
    None,
    run_v2=run_diversity,
    applies_v2=_diversity_applies,
)
