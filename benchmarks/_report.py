"""Shared output of the benchmark scripts: a two-column table, then one JSON line."""

from __future__ import annotations

import json


def print_report(rows: list[tuple[str, str]], result: dict) -> None:
    """Print ``rows`` as an aligned table and ``result`` as the last line (JSON)."""
    width = max(len(label) for label, _ in rows) + 2
    for label, value in rows:
        print(f"{label:<{width}}{value}")
    print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in result.items()}))
