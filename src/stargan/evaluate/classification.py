"""Classification error of translations (StarGAN paper, Table 3 protocol).

A ResNet-18 trained from scratch on the real training images of a dataset's domains
classifies the model's translations of real test images. Categorical labels (RaFD,
expressions): every test image is translated to every other domain and the error is
the share the classifier does not assign to the target, per (source, target) pair and
overall. Multi-label attributes (CelebA): per changed attribute, the accuracy on that
attribute and the preservation rate of the attributes the target leaves unchanged
(the classifier reads them as it read the input). The classifier's error on the same
real test images is reported beside: it bounds what its judgements can mean.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from stargan.data import named_paths
from stargan.data.cache import cache_key, default_cache_dir, resize_filter_parts
from stargan.data.dataset import to_model_range
from stargan.data.labels import LabelSpec
from stargan.errors import StarGANError
from stargan.evaluate.domain_classifier import (
    ClassifierTrainConfig,
    DomainClassifier,
    train_domain_classifier,
)
from stargan.evaluate.metrics import EvalContext, Metric
from stargan.images import make_grid, save_png

GRID_ROWS = 8
# Columns of the judge on real test images, dropped where its reading is the reference.
JUDGE_ON_REAL = "classifier on real"
# Its accuracy on real images that carry each translation's target (e.g. real old faces
# for a face made old): what a G whose translations looked real could expect.
JUDGE_ON_REAL_TARGETS = "classifier on real images of the target"
REAL_OF_DOMAIN = "real images of it"  # categorical: its error on real images of a domain
REAL_COLUMNS = (JUDGE_ON_REAL, JUDGE_ON_REAL_TARGETS, REAL_OF_DOMAIN)


def classifier_for(ctx: EvalContext, i: int, log=print) -> DomainClassifier:
    """The judge of dataset ``i``: ``--classifier [NAME=]PATH``, else one trained on the
    real training images with default settings (once; cached under $STARGAN_CACHE)."""
    labels = [d.label for d in ctx.data]
    given = named_paths(labels, ctx.settings.classifiers).get(labels[i])
    load = (
        (lambda: DomainClassifier.load(given)) if given else lambda: _cached_classifier(ctx, i, log)
    )
    clf = ctx.cached(("classifier", i), load)  # loaded once: joint models ask per pair
    spec, size = ctx.tr.layout.specs[i], ctx.tr.image_size
    if (clf.spec.names, clf.spec.kind) != (spec.names, spec.kind) or clf.image_size != size:
        raise StarGANError(
            f"classifier {given or ''} judges {list(clf.spec.names)} at {clf.image_size} px; "
            f"the model's {labels[i]} domains are {list(spec.names)} at {size} px"
        )
    return clf


def default_classifier_dir(ctx: EvalContext, i: int) -> Path:
    cfg = ClassifierTrainConfig()
    data = asdict(ctx.data[i])
    filter_parts = resize_filter_parts(data.pop("resize_filter"))  # judges before it: found
    train = {k: v for k, v in asdict(cfg).items() if k != "balance"}  # keys before it: found
    key = cache_key("resnet18", data, ctx.tr.image_size, train, *filter_parts)
    return default_cache_dir() / "classifiers" / f"{ctx.data[i].label}-{key}"


def _cached_classifier(ctx: EvalContext, i: int, log) -> DomainClassifier:
    path = default_classifier_dir(ctx, i)
    if (path / "model.safetensors").exists():
        return DomainClassifier.load(path)
    log(
        f"no --classifier for {ctx.data[i].label}: training a ResNet-18 on its real training "
        f"images (once; saved to {path})"
    )
    train, test = ctx.dataset(i, "train"), ctx.dataset(i, "test")
    clf = train_domain_classifier(train, ClassifierTrainConfig(), ctx.settings.progress, test)
    clf.save(path)
    return clf


def run_classification(ctx: EvalContext, how: str = "single") -> dict[str, Any]:
    """Each dataset's translations judged on its own test images; for joint models also
    every other dataset's domains given to them (a CelebA face given a CK+ expression),
    where the input's labels in those terms are the judge's reading of it. ``how="multi"``:
    multi-label datasets' multi-attribute combinations, on their own test images only."""
    summary, tables, images, n_total = {}, [], [], 0
    layout = ctx.tr.layout
    for i in range(len(layout.specs)):
        if not layout.specs[i].changes(how):
            continue
        x_u8, c_own = ctx.test_images(i)
        n_total += len(x_u8)
        for j, spec in enumerate(layout.specs):
            if i != j and (how != "single" or not layout.joint):
                continue
            clf = classifier_for(ctx, j)
            pred_real = clf.predict(to_model_range(x_u8))
            base = c_own if i == j else pred_real
            if spec.kind == "categorical":
                part_summary, part_tables = _categorical(ctx, j, clf, x_u8, base, pred_real)
            else:
                part_summary, part_tables = _multi_label(ctx, j, clf, x_u8, base, pred_real, how)
            if i != j:  # the judge's reading is the reference: its "error" would be 0
                for key in ("real_error", "real_target_acc"):
                    part_summary.pop(key, None)
                part_tables = [_without_real_column(t) for t in part_tables]
            name = _pair_name(ctx, i, j)
            summary |= {f"{name}.{k}" if name else k: v for k, v in part_summary.items()}
            tables += [t | {"title": f"{name}: {t['title']}"} if name else t for t in part_tables]
        images.append(_sample_grid(ctx, i, x_u8[:GRID_ROWS], c_own[:GRID_ROWS], how))
    return {"n": n_total, "summary": summary, "tables": tables, "images": images}


def _without_real_column(table: dict[str, Any]) -> dict[str, Any]:
    """Bars end with the judge on real images; drop those columns (matrices have none)."""
    if table["kind"] != "bars":
        return table
    keep = [k for k, name in enumerate(table["columns"]) if name not in REAL_COLUMNS]
    return table | {
        "columns": [table["columns"][k] for k in keep],
        "rows": [[row[k] for k in keep] for row in table["rows"]],
    }


def _pair_name(ctx: EvalContext, i: int, j: int) -> str:
    """ "" (single dataset), "celeba" (its own domains), "celeba>ckplus" (another's)."""
    if not ctx.tr.layout.joint:
        return ""
    return ctx.data[i].label if i == j else f"{ctx.data[i].label}>{ctx.data[j].label}"


def _categorical(ctx, part, clf, x_u8, c_org, pred_real):
    spec: LabelSpec = clf.spec
    src = c_org.argmax(1)
    wrong = torch.zeros(spec.dim, spec.dim)
    count = torch.zeros(spec.dim, spec.dim)
    for t in _bar(ctx, range(spec.dim), "translate and classify"):
        rows = (src != t).nonzero().flatten()
        if len(rows) == 0:
            continue
        c_trg = torch.nn.functional.one_hot(torch.full((len(rows),), t), spec.dim).float()
        c_src = ctx.tr.layout.encode(part, c_org[rows])  # pairwise sets pick G by source
        fake = ctx.translate(x_u8[rows], ctx.tr.layout.encode(part, c_trg), True, c_src)
        miss = (clf.predict(to_model_range(fake)).argmax(1) != t).float()
        wrong[:, t].index_add_(0, src[rows], miss)
        count[:, t].index_add_(0, src[rows], torch.ones_like(miss))
    real_miss = (pred_real.argmax(1) != src).float()
    pair = [
        [float(wrong[s, t] / count[s, t]) if count[s, t] else None for t in range(spec.dim)]
        for s in range(spec.dim)
    ]
    per_target = wrong.sum(0) / count.sum(0).clamp_min(1)
    real_per_domain = [_mean_where(real_miss, src == d) for d in range(spec.dim)]
    summary = {
        "error": float(wrong.sum() / count.sum().clamp_min(1)),
        "real_error": float(real_miss.mean()),
        "translations": int(count.sum()),
    }
    tables = [
        {
            "title": "Classification error of translations by (source, target)",
            "kind": "matrix",
            "row_label": "source",
            "col_label": "target",
            "columns": list(spec.names),
            "rows": [[name, *pair[s]] for s, name in enumerate(spec.names)],
            "format": "percent",
        },
        {
            "title": "Classification error by domain",
            "kind": "bars",
            "columns": ["domain", "translated into it", REAL_OF_DOMAIN],
            "rows": [
                [name, float(per_target[d]), real_per_domain[d]]
                for d, name in enumerate(spec.names)
            ],
            "format": "percent",
        },
    ]
    return summary, tables


def _multi_label(ctx, part, clf, x_u8, c_org, pred_real, how: str = "single"):
    """Per change (one attribute, or ``how="multi"`` a combination: right only when every
    changed attribute reads right), target accuracy and the others kept."""
    spec: LabelSpec = clf.spec
    names, rows_out = list(spec.names), []
    kept_matrix = []
    hits = kept_hits = kept_total = changed_total = 0
    real_readings = []  # per translation: the judge on real images of its target
    for change in _bar(ctx, spec.changes(how), "translate and classify"):
        name, cols = "+".join(change), [spec.index(n) for n in change]
        c_trg = spec.change(c_org, change)
        rows = (c_trg != c_org).any(1) if how == "single" else spec.changed_rows(c_org, change)
        rows = rows.nonzero().flatten()
        real_acc = float((pred_real[:, cols] == c_org[:, cols]).all(1).float().mean())
        if len(rows) == 0:
            rows_out.append([name, None, None, real_acc, None])
            kept_matrix.append([name] + [None] * spec.dim)
            continue
        c_src = ctx.tr.layout.encode(part, c_org[rows])
        fake = ctx.translate(x_u8[rows], ctx.tr.layout.encode(part, c_trg[rows]), True, c_src)
        pred = clf.predict(to_model_range(fake))
        unchanged = c_trg[rows] == c_org[rows]
        unchanged[:, cols] = False  # the target attributes are judged by target accuracy
        same = pred == pred_real[rows]
        hit = (pred[:, cols] == c_trg[rows][:, cols]).all(1)
        per_attr = [_mean_where(same[:, m].float(), unchanged[:, m]) for m in range(spec.dim)]
        kept = float(same[unchanged].float().mean()) if unchanged.any() else None
        real_of_target = _real_reading_of_targets(
            pred_real[:, cols], c_org[:, cols], c_trg[rows][:, cols]
        )
        real_target = _mean_where(real_of_target, ~real_of_target.isnan())
        rows_out.append([name, float(hit.float().mean()), kept, real_acc, real_target])
        kept_matrix.append([name, *per_attr])
        real_readings.append(real_of_target)
        hits += int(hit.sum())
        changed_total += len(rows)
        kept_hits += int(same[unchanged].sum())
        kept_total += int(unchanged.sum())
    real_acc = (pred_real == c_org).float().mean(0)
    all_readings = torch.cat(real_readings) if real_readings else torch.empty(0)
    summary = {
        "target_acc": hits / max(changed_total, 1),
        "kept": kept_hits / max(kept_total, 1),
        "real_error": float(1 - real_acc.mean()),
        "real_target_acc": _mean_where(all_readings, ~all_readings.isnan()),
        "translations": changed_total,
    }
    tables = [
        {
            "title": "Per changed attribute",
            "kind": "bars",
            "columns": [
                "attribute",
                "target accuracy",
                "others kept",
                JUDGE_ON_REAL,
                JUDGE_ON_REAL_TARGETS,
            ],
            "rows": rows_out,
            "format": "percent",
        },
        {
            "title": "Preservation of each unchanged attribute (column) when changing (row)",
            "kind": "matrix",
            "row_label": "changed",
            "col_label": "kept",
            "columns": names,
            "rows": kept_matrix,
            "format": "percent",
        },
    ]
    return summary, tables


def _real_reading_of_targets(
    pred_real: torch.Tensor, c_real: torch.Tensor, c_trg: torch.Tensor
) -> torch.Tensor:
    """Per translation, the judge's accuracy on the real test images that already carry
    its target values (NaN where none does): what a perfect translation could expect
    from this judge. Columns: the changed attributes only."""
    out = torch.full((len(c_trg),), float("nan"))
    for target in c_trg.unique(dim=0):
        carriers = (c_real == target).all(1)
        if carriers.any():
            read = (pred_real[carriers] == target).all(1).float().mean()
            out[(c_trg == target).all(1)] = read
    return out


def _bar(ctx: EvalContext, items, desc: str):
    return tqdm(items, desc=desc, unit="domain", disable=not ctx.settings.progress)


def _mean_where(values: torch.Tensor, mask: torch.Tensor) -> float | None:
    return float(values[mask].mean()) if mask.any() else None


def _sample_grid(
    ctx: EvalContext, i: int, x_u8: torch.Tensor, c_org: torch.Tensor, how: str = "single"
) -> str:
    """Rows: a test image, then its translation to each change of dataset ``i`` (each
    domain, or ``how="multi"`` each multi-attribute combination)."""
    spec, layout = ctx.tr.layout.specs[i], ctx.tr.layout
    columns = [x_u8]
    for change in spec.changes(how):
        c_trg = layout.encode(i, spec.change(c_org, change))
        columns.append(ctx.translate(x_u8, c_trg, c_org=layout.encode(i, c_org)))
    tiles = torch.stack(columns, 1).flatten(0, 1)
    suffix = "" if how == "single" else f"-{how}"
    name = f"{model_slug(ctx.model_path)}-{ctx.data[i].label}{suffix}.png"
    path = ctx.out_dir / "samples" / name
    save_png(make_grid(tiles, len(columns)), path)
    return ctx.relative(path)


def model_slug(path: Path) -> str:
    """The folder's name and a hash of its full path: runs/a/model and runs/b/model differ."""
    import hashlib

    full = str(path.resolve())
    name = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in Path(full).name)
    return f"{name or 'model'}-{hashlib.sha1(full.encode()).hexdigest()[:6]}"


METRIC = Metric(
    "classification",
    "classification error of translations by a ResNet-18 trained on real images (StarGAN Table 3)",
    run_classification,
    formats={
        "error": "percent",
        "real_error": "percent",
        "target_acc": "percent",
        "real_target_acc": "percent",
        "kept": "percent",
        "translations": "int",
    },
)
