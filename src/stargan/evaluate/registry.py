"""Every ``stargan eval`` metric, imported explicitly, and running them on a model.

A metric module defines its :class:`~stargan.evaluate.metrics.Metric` (``METRIC``) on the
base types of :mod:`stargan.evaluate.metrics`; adding one is a module and one line in
``METRICS`` here. Each metric carries its behaviour for both families: the v2 protocol's
version (:mod:`stargan.evaluate.style_protocol`) is attached by ``with_v2``, and metrics
of the v2 protocol alone (diversity, the official FID) have no v1 behaviour.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from stargan.errors import StarGANError
from stargan.evaluate import (
    classification,
    counterfactual,
    model_stats,
    multi_attribute,
    reconstruction,
    style_protocol,
    translation_fid,
)
from stargan.evaluate.metrics import EvalContext, Metric, append_record

METRICS: dict[str, Metric] = {
    metric.name: metric
    for metric in (
        style_protocol.with_v2(counterfactual.METRIC),
        style_protocol.with_v2(classification.METRIC),
        style_protocol.with_v2(multi_attribute.METRIC),
        style_protocol.with_v2(reconstruction.METRIC),
        style_protocol.with_v2(translation_fid.METRIC),
        style_protocol.with_v2(model_stats.PARAMS),
        style_protocol.with_v2(model_stats.SPEED),
        style_protocol.DIVERSITY,
        style_protocol.OFFICIAL_FID,
    )
}


def parse_metrics(text: str) -> list[str]:
    """``"fid,classification"`` -> names, checked against the registry."""
    import difflib

    known = METRICS
    names = [m.strip() for m in text.split(",") if m.strip()]
    if not names:
        raise StarGANError(f"--metrics is empty; valid: {', '.join(known)}")
    for name in names:
        if name not in known:
            hint = difflib.get_close_matches(name, known, 1)
            extra = f" (did you mean {hint[0]}?)" if hint else ""
            raise StarGANError(f"unknown metric {name!r}{extra}; valid: {', '.join(known)}")
    return list(dict.fromkeys(names))


def evaluate_model(
    ctx: EvalContext, names: list[str], log: Callable[[str], None] = print
) -> list[dict[str, Any]]:
    """Run the metrics on one model; each record is appended to metrics.jsonl as soon as
    it is measured (a crash later loses nothing already measured)."""
    metrics = METRICS
    records = []
    for name in names:
        run, why_not, about = metrics[name].behaviour(ctx)
        if why_not or run is None:
            log(f"{name}: skipped ({why_not})")
            continue
        log(f"{name}: {about}")
        start = time.time()
        result = run(ctx)
        record = _header(ctx, name, time.time() - start) | result
        record["summary_formats"] = _formats(metrics[name], record.get("summary", {}))
        append_record(ctx.out_dir / "metrics.jsonl", record)
        records.append(record)
    return records


def _header(ctx: EvalContext, name: str, elapsed: float) -> dict[str, Any]:
    source = {"source": ctx.settings.source} if ctx.settings.source else {}
    strength = getattr(ctx.tr, "strength", 1.0)
    if strength != 1.0:
        source["strength"] = strength
    return source | {
        "metric": name,
        "model": str(ctx.model_path.resolve()),
        "data": [f"{d.label}={d.path}" if d.path else d.label for d in ctx.data],
        "n": ctx.settings.n,
        "seed": ctx.settings.seed,
        "time": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "elapsed_s": round(elapsed, 2),
    }


def _formats(metric: Metric, summary: dict[str, Any]) -> dict[str, str]:
    """Formats by key; joint models prefix keys with the dataset (``celeba.error``)."""
    return {
        key: metric.formats[key.rsplit(".", 1)[-1]]
        for key in summary
        if key.rsplit(".", 1)[-1] in metric.formats
    }
