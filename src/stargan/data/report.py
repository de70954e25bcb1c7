"""Human-readable class-balance reports of dataset summaries (``train --dry-run``)."""

from __future__ import annotations

BAR_WIDTH = 30


def balance_report(title: str, summary: dict[str, int]) -> str:
    """Images per domain with their share of the split and a bar; the ratio of the
    largest to the smallest domain; skipped images when there were any."""
    total = summary.get("images", 0)
    counts = {k: v for k, v in summary.items() if k not in ("images", "skipped")}
    lines = [f"{title}: {total} images" + _skipped(summary)]
    widest = max((len(k) for k in counts), default=0)
    for name, n in counts.items():
        share = n / total if total else 0.0
        bar = "#" * round(share * BAR_WIDTH)
        lines.append(f"  {name:<{widest}} {n:>7} {share * 100:5.1f}%  {bar}")
    nonzero = [n for n in counts.values() if n > 0]
    if len(nonzero) > 1:
        lines.append(f"  largest/smallest domain: {max(nonzero) / min(nonzero):.1f}x")
    empty = [k for k, n in counts.items() if n == 0]
    if empty:
        lines.append(f"  warning: no images for {', '.join(empty)}")
    return "\n".join(lines)


def _skipped(summary: dict[str, int]) -> str:
    n = summary.get("skipped", 0)
    return f" ({n} unreadable images skipped)" if n else ""
