"""Every committed corpus and crash input, through its harness, without atheris.

A crash the fuzzers once found stays fixed: its input lives under
fuzz/crashes/<harness>/ and fails this test if the bug comes back.
"""

from __future__ import annotations

import importlib
import time
from pathlib import Path

import pytest

from fuzz.harnesses import HARNESSES

FUZZ = Path(__file__).resolve().parents[2] / "fuzz"
# Far above any input's cost here (a handshake is milliseconds); a hang or a
# quadratic blow-up shows.
MAX_SECONDS_PER_INPUT = 2.0


def _inputs(kind: str) -> list[tuple[str, Path]]:
    """Every input file under fuzz/<kind>/<harness>/. An unreadable directory
    raises (at collection, failing the run) instead of reading as empty."""
    found: list[tuple[str, Path]] = []
    for name in HARNESSES:
        directory = FUZZ / kind / name
        if directory.exists():
            found += [(name, path) for path in sorted(directory.iterdir()) if path.is_file()]
    return found


CORPUS = _inputs("corpus")
CRASHES = _inputs("crashes")


def _replay(name: str, path: Path) -> None:
    one_input = importlib.import_module(HARNESSES[name][0]).one_input
    started = time.monotonic()
    one_input(path.read_bytes())
    elapsed = time.monotonic() - started
    assert elapsed < MAX_SECONDS_PER_INPUT, f"{path.name} took {elapsed:.2f}s"


def test_every_harness_has_a_corpus() -> None:
    assert {name for name, _ in CORPUS} == set(HARNESSES)


def test_corpus_is_small() -> None:
    total = sum(path.stat().st_size for _, path in CORPUS)
    assert total < 1_000_000


@pytest.mark.filterwarnings("ignore::cryptography.utils.CryptographyDeprecationWarning")
@pytest.mark.parametrize(("name", "path"), CORPUS, ids=[f"{n}/{p.name}" for n, p in CORPUS])
def test_corpus_input_keeps_the_invariant(name: str, path: Path) -> None:
    _replay(name, path)


def test_there_are_crash_inputs_to_replay() -> None:
    # The replay below is parametrized over the files: with none it would
    # pass by running nothing, so an empty or lost directory fails here.
    assert CRASHES, f"no crash reproducers under {FUZZ / 'crashes'}"


@pytest.mark.filterwarnings("ignore::cryptography.utils.CryptographyDeprecationWarning")
@pytest.mark.parametrize(("name", "path"), CRASHES, ids=[f"{n}/{p.name}" for n, p in CRASHES])
def test_crash_input_stays_fixed(name: str, path: Path) -> None:
    _replay(name, path)


def test_crash_directories_name_harnesses() -> None:
    crashes = FUZZ / "crashes"
    assert {p.name for p in crashes.iterdir() if p.is_dir()} <= set(HARNESSES)
