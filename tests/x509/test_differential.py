"""Our validator against `cryptography.x509.verification`, in a subprocess
with a time bound: every disagreement must be a documented difference."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = 250


def test_disagreements_are_all_documented() -> None:
    # A fresh seed each run, printed (and in any failure message): a new
    # disagreement found by chance can be replayed with it.
    seed = int(os.environ.get("PINATA_DIFFERENTIAL_SEED") or random.SystemRandom().randrange(2**32))
    print(f"differential seed {seed} (PINATA_DIFFERENTIAL_SEED={seed} replays it)")
    completed = subprocess.run(
        [sys.executable, "-W", "ignore", "-m", "tests.x509.differential", str(EXAMPLES), str(seed)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=150,
        check=False,
    )
    assert completed.returncode == 0, f"seed {seed}: " + completed.stderr[-2000:]
    lines = [json.loads(line) for line in completed.stdout.splitlines() if line.strip()]
    summary = lines[-1]
    assert summary["examples"] == EXAMPLES and summary["seed"] == seed
    # Enough chains validate on both sides for the comparison to mean something.
    assert summary["both_accepted"] >= EXAMPLES // 10
    unexplained = [d for d in lines[:-1] if d["explanation"] == "UNEXPLAINED"]
    assert unexplained == [], f"seed {seed}: " + json.dumps(unexplained[:3], indent=1)


def test_differences_are_listed_in_the_document() -> None:
    from .differential import EXPLANATIONS

    document = (ROOT / "pinata" / "x509" / "DIFFERENCES.md").read_text()
    for name in EXPLANATIONS:
        assert f"`{name}`" in document


def test_a_new_disagreement_is_unexplained() -> None:
    """The matcher is narrow: the right check with another reason, or a
    pyca refusal for another cause, is not explained."""
    from .differential import Verdict, explain

    accepted = Verdict(True)
    assert explain(Verdict(False, "eku", "leaf without extendedKeyUsage"), accepted) == (
        "leaf-eku-required"
    )
    assert explain(Verdict(False, "eku", "serverAuth not listed"), accepted) == "UNEXPLAINED"
    assert explain(Verdict(False, "extension", "leaf without extendedKeyUsage"), accepted) == (
        "UNEXPLAINED"
    )
    pyca_refuses = Verdict(False, "", "validation failed: candidates exhausted: signature")
    assert explain(accepted, pyca_refuses) == "UNEXPLAINED"
    assert explain(Verdict(False, "eku", "leaf without extendedKeyUsage"), pyca_refuses) == (
        "UNEXPLAINED"
    )
