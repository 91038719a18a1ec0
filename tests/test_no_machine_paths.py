"""Shipped code names no path of the machine it was written on."""

from __future__ import annotations

import re
from pathlib import Path

from pinata.bench.stall import _short

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ("pinata", "bait_ca", "unikernel", "fuzz")
# A home or a build machine's work tree (/tmp is the same everywhere).
MACHINE_PATH = re.compile(r"""["'](/work/|/home/|/root/|/Users/)""")


def test_no_shipped_file_names_a_machine_path() -> None:
    files = [p for d in SHIPPED for p in (ROOT / d).rglob("*.py")]
    assert len(files) > 50, "the scan found too few files to mean anything"
    offenders = [f"{p.relative_to(ROOT)}:{n}" for p in files
                 for n, line in enumerate(p.read_text().splitlines(), 1)
                 if MACHINE_PATH.search(line)]
    assert offenders == []


def test_allocation_report_names_files_from_the_checkout() -> None:
    stall = ROOT / "pinata" / "bench" / "stall.py"
    assert _short(str(stall)) == "pinata/bench/stall.py"
    assert _short("/somewhere/lib/python3.11/site-packages/trio/_core.py") == "trio/_core.py"
