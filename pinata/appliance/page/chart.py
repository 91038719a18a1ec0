"""The 24-hour history as a small inline SVG bar chart (no script, no assets)."""

from __future__ import annotations

from collections import Counter
from datetime import datetime

from pinata.appliance.page.history import KINDS, History

BIN_MINUTES = 10
WIDTH = 720
TOP, BOTTOM = 14, 110
HEIGHT = 132
LABELS = {"released": "secret released", "refused": "refused by a check",
          "other": "timeouts, limits, closed"}


def _bars(series: list[Counter[str]], scale: float, bar: float) -> list[str]:
    out: list[str] = []
    for i, counts in enumerate(series):
        y = float(BOTTOM)
        for kind in KINDS:
            n = counts.get(kind, 0)
            if not n:
                continue
            h = max(1.0, n * scale)
            y -= h
            out.append(f'<rect class="k-{kind}" x="{i * bar:.1f}" y="{y:.1f}" '
                       f'width="{bar - 1:.1f}" height="{h:.1f}"/>')
    return out


def history_svg(history: History, now: datetime) -> str:
    """Attempts on the bounty ports per 10 minutes over the last 24 hours, stacked by kind."""
    series = history.series(now, BIN_MINUTES)
    peak = max((sum(c.values()) for c in series), default=0)
    total = sum(sum(c.values()) for c in series)
    scale = (BOTTOM - TOP) / peak if peak else 0.0
    bar = WIDTH / len(series)
    legend = " ".join(
        f'<rect class="k-{k}" x="{90 + i * 170}" y="{HEIGHT - 11}" width="10" height="10"/>'
        f'<text x="{104 + i * 170}" y="{HEIGHT - 2}">{LABELS[k]}</text>'
        for i, k in enumerate(KINDS)
    )
    return (
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-labelledby="chart-title" data-total="{total}">'
        f'<title id="chart-title">{total} attempts on the bounty ports in the last 24 hours, '
        f'per {BIN_MINUTES} minutes (at most {peak} in one bar)</title>'
        f'<line class="axis" x1="0" y1="{BOTTOM}" x2="{WIDTH}" y2="{BOTTOM}"/>'
        + "".join(_bars(series, scale, bar))
        + f'<text x="0" y="{TOP - 3}">{peak} per {BIN_MINUTES} min</text>'
        f'<text x="0" y="{BOTTOM + 12}">24 h ago</text>'
        f'<text x="{WIDTH}" y="{BOTTOM + 12}" text-anchor="end">now</text>'
        + legend + "</svg>"
    )
