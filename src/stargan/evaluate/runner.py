"""``stargan eval``: metrics for one or more models into one folder, then the report.

The folder keeps ``metrics.jsonl`` across calls (one line per metric per model), so
evaluating another model into the same folder adds it to the comparison; the report
(``report.md``, ``report.html``, ``plots/``, ``samples/``) is rewritten from all lines.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from stargan.errors import StarGANError
from stargan.evaluate.metrics import EvalContext, EvalSettings, source_configs
from stargan.evaluate.registry import evaluate_model, parse_metrics
from stargan.loading import load_model
from stargan.model_folder import V1_KIND, declared_kind
from stargan.translate import check_strength, read_model_config

AUTO = ("counterfactual", "classification", "reconstruction", "diversity", "params", "speed")


def choose_metrics(text: str) -> list[str]:
    """Names from ``--metrics``; ``auto`` stands for the metrics that need no FID pass
    (those that do not apply to a model are skipped with the reason)."""
    return parse_metrics(text.replace("auto", ",".join(AUTO)))


def run_eval(
    models: list[Path],
    metric_names: list[str],
    settings: EvalSettings,
    out_dir: Path,
    data_args: tuple[str, ...] = (),
    device: str = "cpu",
    log: Callable[[str], None] = print,
    precision: str = "auto",
    strength: float = 1.0,
) -> tuple[list[dict[str, Any]], Path | None]:
    """Evaluate each model; returns this call's records and the HTML report's path.
    ``strength``: a v1 difference-conditioned G's change scale (``Translator.strength``)."""
    from stargan.evaluate.report import read_records, write_report

    if strength != 1.0:  # one error before any work
        for model in models:
            _check_strength(model, strength)
    _check_out_dir(out_dir)
    records = []
    for model in models:
        tr = load_model(model, device, precision)
        if strength != 1.0:
            tr.strength = strength
        ctx = EvalContext(model, tr, source_configs(tr, data_args), settings, out_dir)
        log(f"== {model}")
        records += evaluate_model(ctx, metric_names, log)
    if not records:  # every metric skipped: nothing new to report
        return records, None
    _, html = write_report(read_records(out_dir / "metrics.jsonl"), out_dir)
    return records, html


def _check_strength(model: Path, strength: float) -> None:
    """``--strength`` needs a v1 model told the label difference (``Translator.strength``)."""
    if (declared_kind(model) or V1_KIND) != V1_KIND:
        raise StarGANError(f"{model}: --strength is for StarGAN (v1) models")
    try:
        check_strength(strength, read_model_config(model)["model"].get("g_condition", "target"))
    except StarGANError as err:
        raise StarGANError(f"{model}: {err}") from err


def _check_out_dir(out_dir: Path) -> None:
    if out_dir.exists() and not out_dir.is_dir():
        raise StarGANError(f"--out {out_dir} exists and is not a folder")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise StarGANError(f"cannot create {out_dir}: {err.strerror}") from err


def format_summary(records: list[dict[str, Any]]) -> str:
    """Console lines: model, metric, then its headline figures (as the report writes them)."""
    from stargan.evaluate.report import fmt_value

    lines = []
    for rec in records:
        figures = ", ".join(f"{k} {fmt_value(v)}" for k, v in rec.get("summary", {}).items())
        lines.append(f"{Path(rec['model']).name:<20} {rec['metric']:<15} {figures}")
    return "\n".join(lines)
