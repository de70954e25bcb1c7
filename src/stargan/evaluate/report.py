"""The evaluation report: ``report.md``, ``report.html`` and ``plots/*.png`` from metric records.

A record (one per metric per model; one JSON object per line of ``metrics.jsonl``)::

    {"metric": "classification", "model": "/abs/path/model", "data": ["ckplus=/data/ck"],
     "n": 98, "seed": 0, "time": "2026-12-01T20:00:00+00:00", "elapsed_s": 12.3,
     "summary": {"error": 0.0212, "real_error": 0.0045},   # headline figures, name -> number
     "summary_formats": {"error": "percent"},              # optional, default "float"
     "tables": [{"title": "...", "kind": "matrix" | "bars" | "table",
                 "columns": [...], "rows": [[label, value, ...], ...],
                 "row_label": "source", "col_label": "target",  # matrix only
                 "format": "percent" | "float" | "int",         # default "float"
                 "formats": [...]}],                            # optional, one per value cell
     "images": ["samples/classification.png"],             # relative to the report folder
     "notes": ["free text"]}

Table rows start with a label cell; ``formats[i]`` formats cell ``i + 1`` of each row. A
matrix's ``columns`` name its value columns only (the row label is ``row_label``); the
``columns`` of bars and tables include the label column. ``null`` is shown as "–". A matrix
becomes a heatmap and bars a grouped bar chart; a table is not plotted. Text cells are shown
as they are, whatever the format.

Records of the same metric, model and data seen more than once (a model evaluated again into
the same folder) count once: the last one is shown.
"""

from __future__ import annotations

import html
import json
import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

from stargan.errors import StarGANError

KINDS = ("matrix", "bars", "table")
FORMATS = ("percent", "float", "int")
MISSING = "–"
DPI = 100
MAX_FIGURE_INCHES = 24.0  # a 40-attribute matrix still fits on a screen at 100 dpi


def read_records(jsonl: Path) -> list[dict[str, Any]]:
    """The records of a ``metrics.jsonl``, in file order; blank lines are skipped."""
    try:
        lines = Path(jsonl).read_text(encoding="utf-8").splitlines()
    except OSError as err:
        raise StarGANError(f"cannot read {jsonl}: {err.strerror}") from err
    records = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise StarGANError(f"{jsonl} line {number} is not valid JSON: {err.msg}") from err
        if not isinstance(record, dict) or "metric" not in record or "model" not in record:
            raise StarGANError(f"{jsonl} line {number} is not a record with metric and model")
        records.append(record)
    return records


def write_report(
    records: list[dict[str, Any]], out_dir: Path, title: str = "stargan evaluation"
) -> tuple[Path, Path]:
    """Writes ``report.md``, ``report.html`` and one PNG per matrix or bars table under
    ``plots/`` into ``out_dir``; returns the paths of the Markdown and HTML files."""
    sections = _sections(records)
    out_dir = Path(out_dir)
    md_path, html_path = out_dir / "report.md", out_dir / "report.html"
    try:
        _write_plots(sections, out_dir)
        header, summary = _header_table(sections), _summary_table(sections)
        superseded = len(records) - len(sections)
        md = _markdown(title, header, summary, sections, superseded)
        md_path.write_text(md, encoding="utf-8")
        html_path.write_text(_html(title, header, summary, sections, superseded), encoding="utf-8")
    except OSError as err:
        raise StarGANError(f"cannot write the report into {out_dir}: {err.strerror}") from err
    return md_path, html_path


def _write_plots(sections: list[dict[str, Any]], out_dir: Path) -> None:
    """One PNG per matrix or bars table with a value; its path goes into table["plot"]."""
    (out_dir / "plots").mkdir(parents=True, exist_ok=True)
    used: set[str] = set()
    for sec in sections:
        for table in sec["tables"]:
            if table["kind"] != "table" and _has_values(table):
                slug = _slug(f"{sec['record']['metric']}-{sec['name']}-{table['title']}")
                table["plot"] = f"plots/{_unique(slug, used)}.png"
                _plot(table, out_dir / table["plot"])


# --- records -> sections: a label, a short model name and checked tables for each record ----


def _sections(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    if not records:
        raise StarGANError("no metric records to report")
    latest: dict[tuple[str, str, str], dict[str, Any]] = {}
    for rec in records:
        if not isinstance(rec, dict) or "metric" not in rec or "model" not in rec:
            raise StarGANError("a metric record needs 'metric' and 'model'")
        latest[(str(rec["metric"]), _model_id(rec), _data_text(rec))] = rec
    names = _short_names([_model_id(rec) for rec in latest.values()])
    labels = _labels(list(latest.values()))
    return [
        {
            "record": rec,
            "model": _model_id(rec),
            "name": names[_model_id(rec)],
            "label": label,
            "tables": [_checked(t, label) for t in rec.get("tables") or []],
        }
        for rec, label in zip(latest.values(), labels, strict=True)
    ]


def _model_id(rec: dict[str, Any]) -> str:
    """The model's path, with the test-time strength it ran at when not 1 (``--strength``):
    the same weights at another strength are another model to compare."""
    strength = rec.get("strength", 1.0)
    return str(rec["model"]) + ("" if strength == 1.0 else f" @ strength {strength:g}")


def _data_text(rec: dict[str, Any]) -> str:
    data = rec.get("data") or []
    return ", ".join(map(str, data)) if isinstance(data, list) else str(data)


def _labels(records: list[dict[str, Any]]) -> list[str]:
    """The metric's name, with the data when records of that metric differ in their data
    (their figures are then not comparable, so they get separate summary rows)."""
    data_of: dict[str, set[str]] = {}
    for rec in records:
        data_of.setdefault(str(rec["metric"]), set()).add(_data_text(rec))
    labels = []
    for rec in records:
        metric = str(rec["metric"])
        if len(data_of[metric]) == 1:
            labels.append(metric)
            continue
        short = {_data_short(d) for d in data_of[metric]}
        data = _data_text(rec)
        labels.append(
            f"{metric} ({_data_short(data) if len(short) == len(data_of[metric]) else data})"
        )
    return labels


def _data_short(data: str) -> str:
    """'celeba=/d/celeba, rafd=/d/rafd' -> 'celeba+rafd'."""
    return "+".join(part.split("=", 1)[0].strip() for part in data.split(", ")) or "no data"


def _short_names(models: list[str]) -> dict[str, str]:
    """The fewest trailing path parts that tell the models apart: /r/a/final, /r/b/final ->
    a/final, b/final."""
    unique = list(dict.fromkeys(models))
    parts = {m: Path(m).parts or (m,) for m in unique}
    for k in range(1, max(len(p) for p in parts.values()) + 1):
        names = {m: "/".join(p[-k:]) for m, p in parts.items()}
        if len(set(names.values())) == len(unique):
            return names
    return {m: m for m in unique}


def _checked(table: Any, label: str) -> dict[str, Any]:
    """A copy of the table with ``formats`` resolved (one per value cell); a concise error
    for a table the report cannot show."""
    where = f"{label}: table {table.get('title', '?')!r}" if isinstance(table, dict) else label
    if not isinstance(table, dict) or not isinstance(table.get("rows"), list):
        raise StarGANError(f"{where} needs a list of rows")
    kind = table.get("kind", "table")
    if kind not in KINDS:
        raise StarGANError(f"{where}: unknown kind {kind!r}; valid: {', '.join(KINDS)}")
    columns = [str(c) for c in table.get("columns", [])]
    width = len(columns) + (1 if kind == "matrix" else 0)
    if width < 2:
        raise StarGANError(f"{where} needs a label column and at least one value column")
    for row in table["rows"]:
        if not isinstance(row, list) or len(row) != width:
            raise StarGANError(f"{where}: row {row!r} should have {width} cells")
    fmt = table.get("format", "float")
    formats = table.get("formats") or [fmt] * (width - 1)
    formats = [fmt if f is None else f for f in formats]
    if len(formats) != width - 1:
        raise StarGANError(f"{where}: 'formats' needs {width - 1} entries, got {len(formats)}")
    for f in formats:
        if f not in FORMATS:
            raise StarGANError(f"{where}: unknown format {f!r}; valid: {', '.join(FORMATS)}")
    title = str(table.get("title", ""))
    return {**table, "kind": kind, "title": title, "columns": columns, "formats": formats}


# --- formatting --------------------------------------------------------------------------


def fmt_value(value: Any, fmt: str = "float") -> str:
    """One cell: percent -> '2.1%', float -> 4 significant digits, int -> '123',
    None -> '–'; text as it is."""
    if value is None:
        return MISSING
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if not math.isfinite(value):
        return str(value)
    if fmt == "percent":
        return f"{value * 100:.1f}%"
    if fmt == "int" or (isinstance(value, int) and fmt == "float"):
        return str(round(value))
    if abs(value) >= 1e4:  # 12345.6 -> '12346', not '1.235e+04'
        return f"{value:.0f}"
    return f"{value:.4g}"


def _cells(table: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """Header and formatted body of a table, the label column first."""
    if table["kind"] == "matrix":
        corner = f"{table.get('row_label', '')} ↓ {table.get('col_label', '')} →".strip()
        header = [corner, *table["columns"]]
    else:
        header = list(table["columns"])
    formats = table["formats"]
    body = [
        [str(row[0]), *(fmt_value(v, f) for v, f in zip(row[1:], formats, strict=True))]
        for row in table["rows"]
    ]
    return header, body


def _header_table(sections: list[dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    header = ["model", "metric", "data", "n", "seed", "time", "seconds"]
    rows = []
    for sec in sections:
        rec = sec["record"]
        elapsed = rec.get("elapsed_s")
        rows.append(
            [
                sec["model"],
                sec["label"],
                _data_text(rec) or MISSING,
                fmt_value(rec.get("n"), "int"),
                fmt_value(rec.get("seed"), "int"),
                str(rec.get("time") or MISSING),
                MISSING if elapsed is None else fmt_value(float(elapsed), "float"),
            ]
        )
    return header, rows


def _summary_table(sections: list[dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    """Rows metric.figure, one column per model."""
    models = list(dict.fromkeys(sec["model"] for sec in sections))
    names = {sec["model"]: sec["name"] for sec in sections}
    cells: dict[str, dict[str, str]] = {}
    for sec in sections:
        rec = sec["record"]
        formats = rec.get("summary_formats") or {}
        for key, f in formats.items():
            if f not in FORMATS:
                raise StarGANError(
                    f"{sec['label']}: summary_formats[{key!r}] {f!r} unknown; valid: "
                    f"{', '.join(FORMATS)}"
                )
        for key, value in (rec.get("summary") or {}).items():
            row = cells.setdefault(f"{sec['label']}.{key}", {})
            row[sec["model"]] = fmt_value(value, formats.get(key, "float"))
    header = ["figure", *(names[m] for m in models)]
    return header, [[key, *(row.get(m, MISSING) for m in models)] for key, row in cells.items()]


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:80].strip("-") or "plot"


def _unique(name: str, used: set[str]) -> str:
    candidate, k = name, 1
    while candidate in used:
        k += 1
        candidate = f"{name}-{k}"
    used.add(candidate)
    return candidate


# --- Markdown ----------------------------------------------------------------------------


def _md_text(text: Any) -> str:
    """Text safe in a Markdown table cell, heading or image alt text: backslash-escaped
    | < > [ ] and \\ (so a name like '<script>' shows as text), on one line."""
    text = re.sub(r"([\\|<>\[\]])", r"\\\1", str(text))
    return " ".join(text.splitlines())


def _md_table(header: list[str], rows: list[list[str]]) -> list[str]:
    aligns = ["---"] + ["--:" if _numeric_column(rows, i) else "---" for i in range(1, len(header))]
    lines = ["| " + " | ".join(_md_text(h) for h in header) + " |", "|" + "|".join(aligns) + "|"]
    lines += ["| " + " | ".join(_md_text(c) for c in row) + " |" for row in rows]
    return lines


def _markdown(title, header, summary, sections, superseded: int) -> str:
    out = [f"# {_md_text(title)}", "", "## Evaluations", "", *_md_table(*header), ""]
    if superseded:
        out += [f"{superseded} earlier record(s) of the same metric, model and data omitted.", ""]
    out += ["## Summary", "", *_md_table(*summary), ""]
    for sec in sections:
        out += [f"## {_md_text(sec['label'])} — {_md_text(sec['name'])}", ""]
        code = sec["model"].replace("`", "'")  # a code span shows < > | as they are
        out += [f"Model `{code}`.", ""]
        for table in sec["tables"]:
            out += [f"### {_md_text(table['title'])}", "", *_md_table(*_cells(table)), ""]
            if "plot" in table:
                out += [f"![{_md_text(table['title'])}]({quote(table['plot'])})", ""]
        for image in sec["record"].get("images") or []:
            out += [f"![{_md_text(Path(str(image)).name)}]({quote(str(image))})", ""]
        out += [f"- {_md_text(note)}" for note in sec["record"].get("notes") or []]
        out += [""] if sec["record"].get("notes") else []
    return "\n".join(out).rstrip() + "\n"


def _numeric_column(rows: list[list[str]], i: int) -> bool:
    values = [row[i] for row in rows if row[i] != MISSING]
    return bool(values) and all(re.fullmatch(r"-?[\d.e+-]+%?|nan|inf", v) for v in values)


# --- HTML --------------------------------------------------------------------------------

CSS = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 72em;
       padding: 0 1em; color: #222; }
h1 { font-size: 1.6em; } h2 { margin-top: 2em; border-bottom: 1px solid #ddd; }
h3 { font-size: 1.05em; margin-top: 1.5em; }
table { border-collapse: collapse; margin: 0.5em 0 1em; font-size: 13px; }
th, td { border: 1px solid #ddd; padding: 0.25em 0.6em; text-align: left; }
th { background: #f4f4f4; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr:nth-child(even) td { background: #fafafa; }
img { max-width: 100%; display: block; margin: 0.5em 0 1em; }
code { background: #f4f4f4; padding: 0 0.2em; } .muted { color: #777; }
"""


def _html_table(header: list[str], rows: list[list[str]]) -> str:
    esc = html.escape
    numeric = [i > 0 and _numeric_column(rows, i) for i in range(len(header))]
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    body = "".join(
        "<tr>"
        + "".join(
            f"<td{' class=num' if numeric[i] else ''}>{esc(c)}</td>" for i, c in enumerate(row)
        )
        + "</tr>\n"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead>\n<tbody>\n{body}</tbody></table>"


def _html(title, header, summary, sections, superseded: int) -> str:
    esc = html.escape
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{esc(title)}</title><style>{CSS}</style></head><body>",
        f"<h1>{esc(title)}</h1>",
        "<h2>Evaluations</h2>",
        _html_table(*header),
    ]
    if superseded:
        out.append(
            f'<p class="muted">{superseded} earlier record(s) of the same metric, model and'
            " data omitted.</p>"
        )
    out += ["<h2>Summary</h2>", _html_table(*summary)]
    for sec in sections:
        out.append(f"<h2>{esc(sec['label'])} — {esc(sec['name'])}</h2>")
        out.append(f'<p class="muted">Model <code>{esc(sec["model"])}</code></p>')
        for table in sec["tables"]:
            out += [f"<h3>{esc(table['title'])}</h3>", _html_table(*_cells(table))]
            if "plot" in table:
                out.append(_img(table["plot"], table["title"]))
        out += [
            _img(str(image), Path(str(image)).name) for image in sec["record"].get("images") or []
        ]
        notes = sec["record"].get("notes") or []
        if notes:
            out.append("<ul>" + "".join(f"<li>{esc(str(n))}</li>" for n in notes) + "</ul>")
    out.append("</body></html>")
    return "\n".join(out) + "\n"


def _img(path: str, alt: str) -> str:
    return f'<img src="{html.escape(quote(path))}" alt="{html.escape(alt)}" loading="lazy">'


# --- plots (matplotlib Figure objects: no pyplot, no global state) ------------------------


def _has_values(table: dict[str, Any]) -> bool:
    return any(
        isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
        for row in table["rows"]
        for v in row[1:]
    )


def _plot(table: dict[str, Any], path: Path) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    draw: Callable[[dict[str, Any]], Any] = _heatmap if table["kind"] == "matrix" else _bars
    fig = draw(table)
    FigureCanvasAgg(fig)  # attaches itself as the figure's canvas
    fig.savefig(path, dpi=DPI, metadata={"Software": None})


def _values(table: dict[str, Any]):
    """[rows, value columns] float array, NaN where a cell is null or text."""
    import numpy as np

    def num(v: Any) -> float:
        ok = isinstance(v, (int, float)) and not isinstance(v, bool)
        return float(v) if ok else float("nan")

    return np.array([[num(v) for v in row[1:]] for row in table["rows"]], dtype=float)


def _heatmap(table: dict[str, Any]):
    import matplotlib
    import numpy as np
    from matplotlib.figure import Figure

    values, formats = _values(table), table["formats"]
    n_rows, n_cols = values.shape
    labels = [_plain(row[0]) for row in table["rows"]]
    width = min(MAX_FIGURE_INCHES, 3.0 + 0.62 * n_cols + 0.06 * max(map(len, labels)))
    height = min(MAX_FIGURE_INCHES, 2.2 + 0.42 * n_rows + 0.06 * max(map(len, table["columns"])))
    fig = Figure(figsize=(width, height), layout="constrained")
    ax = fig.add_subplot()
    cmap = matplotlib.colormaps["viridis"].with_extremes(bad="#eeeeee")  # a copy
    image = ax.imshow(np.ma.masked_invalid(values), cmap=cmap, aspect="auto")
    size = max(5.0, min(9.0, 110.0 / max(n_cols, 1)))
    for (i, j), v in np.ndenumerate(values):
        if np.isfinite(v):
            dark = image.norm(v) < 0.6  # viridis is dark at the low end
            color = "white" if dark else "black"
            text = fmt_value(v, formats[j])
            ax.text(j, i, text, ha="center", va="center", fontsize=size, color=color)
    bar = fig.colorbar(image, ax=ax, shrink=0.9)
    if all(f == "percent" for f in formats):
        _percent_axis(bar.ax.yaxis)
    ax.set_xticks(
        range(n_cols),
        labels=[_plain(c) for c in table["columns"]],
        rotation=45,
        ha="right",
        rotation_mode="anchor",
    )
    ax.set_yticks(range(n_rows), labels=labels)
    ax.set_xlabel(_plain(table.get("col_label", "")))
    ax.set_ylabel(_plain(table.get("row_label", "")))
    ax.set_title(_plain(table["title"]), fontsize=10, wrap=True)
    return fig


def _bars(table: dict[str, Any]):
    import numpy as np
    from matplotlib.figure import Figure

    values, formats = _values(table), table["formats"]
    n_groups, n_series = values.shape
    labels = [_plain(row[0]) for row in table["rows"]]
    width = min(MAX_FIGURE_INCHES, max(4.5, 1.5 + n_groups * (0.25 + 0.22 * n_series)))
    fig = Figure(figsize=(width, 3.8), layout="constrained")
    ax = fig.add_subplot()
    x, step = np.arange(n_groups), 0.8 / max(n_series, 1)
    for k, name in enumerate(table["columns"][1:]):
        ax.bar(x - 0.4 + step * (k + 0.5), values[:, k], step, label=_plain(name))
    rotate = n_groups > 6 or max(map(len, labels)) > 10
    ax.set_xticks(x, labels=labels, rotation=45 if rotate else 0, rotation_mode="anchor")
    ax.tick_params(axis="x", labelsize=8 if rotate else 9)
    if rotate:
        for label in ax.get_xticklabels():
            label.set_horizontalalignment("right")
    if all(f == "percent" for f in formats):
        _percent_axis(ax.yaxis)
    if n_series > 1:  # beside the axes, where it cannot hide a bar
        ax.legend(fontsize=8, frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    else:
        ax.set_ylabel(_plain(table["columns"][1]))
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)
    ax.set_title(_plain(table["title"]), fontsize=10, wrap=True)
    return fig


def _plain(text: Any) -> str:
    """Text drawn as it is: matplotlib reads text between two $ as TeX math."""
    return str(text).replace("$", r"\$")


def _percent_axis(axis) -> None:
    from matplotlib.ticker import PercentFormatter

    axis.set_major_formatter(PercentFormatter(xmax=1.0))
