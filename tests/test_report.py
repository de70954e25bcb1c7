"""The evaluation report: Markdown and HTML content, model comparison, escaping, plots, and
reading metrics.jsonl."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import matplotlib
import pytest
from PIL import Image

from stargan.errors import StarGANError
from stargan.evaluate.report import fmt_value, read_records, write_report

EVIL = "/runs/<script>alert(1)</script>/final"


def _classification(model: str, error: float, time: str) -> dict:
    names = ["anger", "joy", "sad|ness"]
    return {
        "metric": "classification",
        "model": model,
        "data": ["ckplus=/data/ck_plus_48"],
        "n": 98,
        "seed": 0,
        "time": time,
        "elapsed_s": 12.3,
        "summary": {"error": error, "translations": 196},
        "summary_formats": {"error": "percent"},
        "tables": [
            {
                "title": "Classification error by (source, target) pair",
                "kind": "matrix",
                "row_label": "source",
                "col_label": "target",
                "columns": names,
                "rows": [
                    ["anger", None, 0.0212, 0.5],
                    ["joy", 0.125, None, 0.0],
                    ["sad|ness", 1.0, None, None],
                ],
                "format": "percent",
            },
            {
                "title": "Per attribute",
                "kind": "bars",
                "columns": ["attribute", "target acc", "kept"],
                "rows": [
                    ["Black_Hair", 0.96, 0.93],
                    ["Blond_Hair", 0.8, None],
                    [r"Male $\nope$", 0.5, 1],
                ],
                "format": "percent",
            },
        ],
        "images": ["samples/classification.png"],
        "notes": ["a note with a | pipe"],
    }


def _params(model: str) -> dict:
    return {
        "metric": "params",
        "model": model,
        "data": [],
        "n": 0,
        "seed": 0,
        "time": "2026-12-01T20:05:00+00:00",
        "summary": {"total_params": 8430000, "fid": 23.456789},
        "tables": [
            {
                "title": "Parameters per network",
                "kind": "table",
                "columns": ["network", "parameters", "share"],
                "rows": [["G", 8430000, 0.51], ["D", 8000000.0, None]],
                "format": "int",
                "formats": ["int", "float"],
            }
        ],
    }


RECORDS = [
    _classification("/runs/a/final", 0.0212, "2026-12-01T20:00:00+00:00"),
    _classification("/runs/b/final", 0.0555, "2026-12-01T21:00:00+00:00"),
    _params(EVIL),
]


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, str]:
    out = tmp_path_factory.mktemp("report")
    rc_before = dict(matplotlib.rcParams)
    backend = matplotlib.get_backend()
    md, html = write_report(copy.deepcopy(RECORDS), out, title="My <eval>")
    assert dict(matplotlib.rcParams) == rc_before  # no global matplotlib state changed
    assert matplotlib.get_backend() == backend
    assert (md, html) == (out / "report.md", out / "report.html")
    return out, md.read_text(encoding="utf-8"), html.read_text(encoding="utf-8")


def _md_section(md: str, heading: str) -> list[str]:
    lines = md.split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0].strip().splitlines()
    return [line for line in lines if line.startswith("|")]


def _cells(line: str) -> list[str]:
    """Cells of a Markdown table line, splitting only at unescaped pipes."""
    return [c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]


def test_markdown_tables_show_formatted_values(report) -> None:
    _, md, _ = report
    assert md.startswith("# My \\<eval\\>\n")
    lines = md.splitlines()
    matrix_header = next(line for line in lines if line.startswith("| source ↓ target →"))
    assert _cells(matrix_header) == ["source ↓ target →", "anger", "joy", "sad\\|ness"]
    i = lines.index(matrix_header)
    assert _cells(lines[i + 2]) == ["anger", "–", "2.1%", "50.0%"]
    assert _cells(lines[i + 4]) == ["sad\\|ness", "100.0%", "–", "–"]
    assert "| Black_Hair | 96.0% | 93.0% |" in md
    assert "| Blond_Hair | 80.0% | – |" in md
    assert r"| Male $\\nope$ | 50.0% | 100.0% |" in md  # drawn as text in the plot, not TeX
    # formats per value column: int then float (a float of an int column shows as an int)
    assert "| G | 8430000 | 0.51 |" in md
    assert "| D | 8000000 | – |" in md
    assert "- a note with a \\| pipe" in md
    assert "![classification.png](samples/classification.png)" in md


def test_summary_has_a_column_per_model(report) -> None:
    _, md, _ = report
    header, rule, *rows = _md_section(md, "Summary")
    # the shortest path suffixes that tell the models apart
    # ("</script>" holds a slash: the evil name's last two parts are "script>" and "final")
    assert _cells(header) == ["figure", "a/final", "b/final", "script\\>/final"]
    assert len(_cells(rule)) == 4
    by_figure = {_cells(r)[0]: _cells(r)[1:] for r in rows}
    assert by_figure["classification.error"] == ["2.1%", "5.5%", "–"]
    assert by_figure["classification.translations"] == ["196", "196", "–"]
    assert by_figure["params.total_params"] == ["–", "–", "8430000"]
    assert by_figure["params.fid"] == ["–", "–", "23.46"]
    evaluations = _md_section(md, "Evaluations")
    assert len(evaluations) == 2 + len(RECORDS)
    assert _cells(evaluations[2]) == [
        "/runs/a/final",
        "classification",
        "ckplus=/data/ck_plus_48",
        "98",
        "0",
        "2026-12-01T20:00:00+00:00",
        "12.3",
    ]
    assert _cells(evaluations[4])[0] == "/runs/\\<script\\>alert(1)\\</script\\>/final"


def test_sections_per_record(report) -> None:
    _, md, _ = report
    headings = [line for line in md.splitlines() if line.startswith("## ")]
    assert headings == [
        "## Evaluations",
        "## Summary",
        "## classification — a/final",
        "## classification — b/final",
        "## params — script\\>/final",
    ]


def test_html_is_escaped_and_self_contained(report) -> None:
    _, _, html = report
    assert "<script>" not in html and "</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<title>My &lt;eval&gt;</title>" in html
    assert "<style>" in html and "<link" not in html
    assert html.count("<table>") == 2 + 2 + 2 + 1  # header, summary, 2 + 2 + 1 record tables
    assert "<td class=num>2.1%</td>" in html
    assert "<td>sad|ness</td>" in html
    srcs = re.findall(r'<img src="([^"]+)"', html)
    assert "samples/classification.png" in srcs
    assert sum(s.startswith("plots/") for s in srcs) == 4


def test_plots_are_real_pngs(report) -> None:
    out, md, html = report
    plots = sorted((out / "plots").glob("*.png"))
    assert [p.name for p in plots] == [
        "classification-a-final-classification-error-by-source-target-pair.png",
        "classification-a-final-per-attribute.png",
        "classification-b-final-classification-error-by-source-target-pair.png",
        "classification-b-final-per-attribute.png",
    ]
    for p in plots:
        assert f"plots/{p.name}" in md and f'src="plots/{p.name}"' in html
        assert 5_000 < p.stat().st_size < 200_000
        with Image.open(p) as im:
            assert im.format == "PNG"
            assert im.width >= 300 and im.height >= 250
            lo, hi = im.convert("L").getextrema()
            assert hi - lo > 100  # drawn on, not blank


def test_plot_names_stay_unique(tmp_path: Path) -> None:
    rec = _classification("/m", 0.1, "t")
    rec["tables"][1]["title"] = rec["tables"][0]["title"] + "!"  # same slug
    write_report([rec], tmp_path)
    names = sorted(p.name for p in (tmp_path / "plots").glob("*.png"))
    stem = "classification-m-classification-error-by-source-target-pair"
    assert names == [f"{stem}-2.png", f"{stem}.png"]


def test_rerun_supersedes_and_other_data_gets_its_own_rows(tmp_path: Path) -> None:
    old = _classification("/runs/a/final", 0.9, "2026-12-01T19:00:00+00:00")
    new = _classification("/runs/a/final", 0.0212, "2026-12-01T20:00:00+00:00")
    rafd = _classification("/runs/a/final", 0.3, "2026-12-01T20:00:00+00:00")
    rafd["data"] = ["rafd=/data/rafd"]
    md, _ = write_report([old, new, rafd], tmp_path)
    text = md.read_text(encoding="utf-8")
    rows = {_cells(r)[0]: _cells(r)[1:] for r in _md_section(text, "Summary")[2:]}
    assert rows["classification (ckplus).error"] == ["2.1%"]
    assert rows["classification (rafd).error"] == ["30.0%"]
    assert "1 earlier record(s)" in text and "90.0%" not in text


def test_another_strength_is_another_model_not_a_rerun(tmp_path: Path) -> None:
    plain = _classification("/runs/a/final", 0.2, "2026-12-01T19:00:00+00:00")
    strong = _classification("/runs/a/final", 0.3, "2026-12-01T20:00:00+00:00")
    strong["strength"] = 1.5
    md, _ = write_report([plain, strong], tmp_path)
    text = md.read_text(encoding="utf-8")
    header = _cells(_md_section(text, "Summary")[0])
    assert header[1:] == ["final", "final @ strength 1.5"]
    assert "20.0%" in text and "30.0%" in text and "earlier record" not in text


def test_bad_tables_are_reported(tmp_path: Path) -> None:
    rec = _classification("/m", 0.1, "t")
    rec["tables"][0]["format"] = "percentage"
    with pytest.raises(StarGANError, match="unknown format 'percentage'"):
        write_report([rec], tmp_path)
    rec = _classification("/m", 0.1, "t")
    rec["tables"][1]["rows"][0].append(0.5)
    with pytest.raises(StarGANError, match="should have 3 cells"):
        write_report([rec], tmp_path)
    rec = _classification("/m", 0.1, "t")
    rec["summary_formats"] = {"error": "%"}
    with pytest.raises(StarGANError, match=r"summary_formats\['error'\] '%' unknown"):
        write_report([rec], tmp_path)
    with pytest.raises(StarGANError, match="no metric records"):
        write_report([], tmp_path)


def test_fmt_value() -> None:
    assert fmt_value(0.0212, "percent") == "2.1%"
    assert fmt_value(None, "percent") == "–"
    assert fmt_value(0.000123456, "float") == "0.0001235"
    assert fmt_value(23.456789) == "23.46"
    assert fmt_value(123456.7) == "123457"
    assert fmt_value(7.6, "int") == "8"
    assert fmt_value("text", "percent") == "text"


def test_read_records_roundtrip_and_errors(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    lines = [json.dumps(r) for r in RECORDS]
    path.write_text(lines[0] + "\n\n" + "\n".join(lines[1:]) + "\n  \n", encoding="utf-8")
    assert read_records(path) == RECORDS
    path.write_text(lines[0] + "\n\n" + '{"metric": "x", "model": \n', encoding="utf-8")
    with pytest.raises(StarGANError, match="line 3 is not valid JSON"):
        read_records(path)
    path.write_text(lines[0] + "\n[1, 2]\n", encoding="utf-8")
    with pytest.raises(StarGANError, match="line 2 is not a record"):
        read_records(path)
    with pytest.raises(StarGANError, match="cannot read"):
        read_records(tmp_path / "missing.jsonl")
