"""Counterfactual scores on built-in data: every translation against its exact ground
truth (the renderer's image of the same face with the target labels), as L1, PSNR, SSIM
and LPIPS, per target domain and, for categorical labels, per (source, target) pair.
The untranslated input's scores against the same truth are the baseline to beat."""

from __future__ import annotations

from typing import Any

from stargan.data.builtin import BUILTIN
from stargan.evaluate.metrics import EvalContext, Metric
from stargan.evaluate.score import score_model

MEASURES = ("l1", "psnr", "ssim", "lpips")


def run_counterfactual(ctx: EvalContext, changes: str = "single") -> dict[str, Any]:
    """``changes``: single-domain changes, or ``multi`` (multi-attribute combinations)."""
    from stargan.evaluate.lpips import MIN_SIZE, load_lpips

    lpips_model, notes = None, []
    if ctx.tr.image_size >= MIN_SIZE:
        lpips_model = load_lpips(ctx.tr.device)
    else:
        notes.append(f"LPIPS left out: it needs images of {MIN_SIZE} px or more")
    result = score_model(
        ctx.tr,
        ctx.settings.n,
        ctx.settings.batch_size,
        progress=ctx.settings.progress,
        lpips_model=lpips_model,
        changes=changes,
        source=ctx.settings.source,
    )
    measures = [m for m in MEASURES if m in result["overall"]]
    summary = {k: v for k, v in result["overall"].items() if k != "n"}
    real = result["classifier_real_acc"]
    summary["judge_real_acc"] = sum(real.values()) / max(len(real), 1)
    tables = [_target_table(result), _distance_table(result, measures)]
    tables += _pair_tables(result, measures)
    return {
        "n": result["n_test"],
        "summary": summary,
        "tables": tables,
        "notes": notes,
    }


def _target_table(result: dict[str, Any]) -> dict[str, Any]:
    return {
        "title": "Target domain right (judge trained on real renders)",
        "kind": "bars",
        "columns": ["domain", "translations"],
        "rows": [[name, d["target_acc"]] for name, d in result["per_domain"].items()],
        "format": "percent",
    }


def _distance_table(result: dict[str, Any], measures: list[str]) -> dict[str, Any]:
    columns = ["domain", "n", *measures, *(f"input {m}" for m in measures)]
    rows = [
        [name, d["n"], *(d[m] for m in measures), *(d[f"identity_{m}"] for m in measures)]
        for name, d in [*result["per_domain"].items(), ("overall", result["overall"])]
        if d
    ]
    return {
        "title": "Distance to the ground-truth translation (input: the untranslated image)",
        "kind": "table",
        "columns": columns,
        "rows": rows,
        "format": "float",
        "formats": ["int", *(["float"] * 2 * len(measures))],
    }


def _pair_tables(result: dict[str, Any], measures: list[str]) -> list[dict[str, Any]]:
    """Categorical targets: a (source, target) matrix of the perceptual distance."""
    measure = "lpips" if "lpips" in measures else "psnr"
    cells = {
        (src, trg): scores[measure]
        for trg, d in result["per_domain"].items()
        for src, scores in d.get("by_source", {}).items()
    }
    if not cells:
        return []
    targets = list(dict.fromkeys(trg for _, trg in cells))
    sources = list(dict.fromkeys(src for src, _ in cells))
    short = {t: t.split(" > ")[-1].split(".")[-1] for t in targets}
    return [
        {
            "title": f"{measure.upper()} to ground truth by (source, target)",
            "kind": "matrix",
            "row_label": "source",
            "col_label": "target",
            "columns": [short[t] for t in targets],
            "rows": [[s, *(cells.get((s, t)) for t in targets)] for s in sources],
            "format": "float",
        }
    ]


def why_not(ctx: EvalContext) -> str | None:
    if not any(d.dataset in BUILTIN for d in ctx.data):
        return "needs a model trained on built-in data, whose ground truth is known"
    return None


METRIC = Metric(
    "counterfactual",
    "L1, PSNR, SSIM and LPIPS of translations against the exact ground truth (built-in data)",
    run_counterfactual,
    why_not,
    formats={"target_acc": "percent", "judge_real_acc": "percent"},
)
