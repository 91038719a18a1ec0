"""What every benchmark reports: a plain-text table, a JSON document, and the
conditions of the run (date, machine, versions, the exact command)."""

from __future__ import annotations

import json
import os
import platform
import shlex
import ssl
import statistics
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

Cell = str | int | float | None


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values)) if values else float("nan")


def pair_ratios(a: Sequence[float], b: Sequence[float]) -> list[float]:
    """a[i] / b[i] for each round where both were measured."""
    return [x / y for x, y in zip(a, b, strict=False) if y > 0]


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _version(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "not installed"


def environment(argv: Sequence[str]) -> dict[str, object]:
    """The conditions a figure was measured under; a figure without them means little."""
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": "pinata bench " + shlex.join(argv),
        "machine": {
            "cpu": _cpu_model(),
            "cpus": os.cpu_count(),
            "kernel": platform.release(),
            "arch": platform.machine(),
            "load_average": [round(x, 2) for x in os.getloadavg()],
        },
        "python": sys.version.split()[0],
        "openssl": ssl.OPENSSL_VERSION,
        "versions": {name: _version(name) for name in ("cryptography", "trio", "tlslite-ng")},
    }


def format_cell(value: Cell) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if value != value:  # NaN
            return "-"
        if abs(value) >= 100:
            return f"{value:,.0f}"
        if abs(value) >= 10:
            return f"{value:.1f}"
        return f"{value:.2f}"
    return str(value)


def table(headers: Sequence[str], rows: Sequence[Sequence[Cell]]) -> str:
    """A GitHub-flavoured Markdown table, readable as plain text too."""
    cells = [list(headers), *([format_cell(c) for c in row] for row in rows)]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = [
        "| " + " | ".join(c.ljust(w) for c, w in zip(cells[0], widths, strict=True)) + " |",
        "|" + "|".join("-" * (w + 2) for w in widths) + "|",
    ]
    for row in cells[1:]:
        lines.append("| " + " | ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)) + " |")
    return "\n".join(lines)


def write_json(path: Path, document: dict[str, object]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2, sort_keys=False, default=str) + "\n")


def finish(name: str, argv: Sequence[str], json_path: Path | None, text: str,
           document: dict[str, object]) -> None:
    """Print the table and write the JSON (to `json_path`, else pinata-bench-NAME.json)."""
    env = environment(argv)
    full = {"benchmark": name, "environment": env, **document}
    print(f"pinata bench {name}  ({env['date']}, {env['python']}, {env['openssl']})")
    print(text)
    target = json_path if json_path is not None else Path(f"pinata-bench-{name}.json")
    write_json(target, full)
    print(f"\nJSON: {target}")
