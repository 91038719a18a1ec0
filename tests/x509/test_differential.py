"""Our validator against `cryptography.x509.verification`, in a subprocess
with a time bound: every disagreement must be a documented difference."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = 250


def test_disagreements_are_all_documented() -> None:
    completed = subprocess.run(
        [sys.executable, "-W", "ignore", "-m", "tests.x509.differential", str(EXAMPLES)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=150,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    lines = [json.loads(line) for line in completed.stdout.splitlines() if line.strip()]
    summary = lines[-1]
    assert summary["examples"] == EXAMPLES
    # Enough chains validate on both sides for the comparison to mean something.
    assert summary["both_accepted"] >= EXAMPLES // 10
    unexplained = [d for d in lines[:-1] if d["explanation"] == "UNEXPLAINED"]
    assert unexplained == [], json.dumps(unexplained[:3], indent=1)


def test_differences_are_listed_in_the_document() -> None:
    from .differential import EXPLANATIONS

    document = (ROOT / "pinata" / "x509" / "DIFFERENCES.md").read_text()
    for name in EXPLANATIONS:
        assert f"`{name}`" in document
