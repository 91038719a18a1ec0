"""Landlock holding alone, and launches refused before anything starts.

The full sandbox, attempt by attempt as root and not, is the probe matrix
(`test_probe_matrix.py`). Here the filter is left out and the attempts that
are Landlock's business run in one process: each must fail with an error, so
that layer is shown to hold on its own.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.unikernel.harness import Launched, listening_socket, write_manifest
from unikernel import landlock

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="the sandbox is Linux's")


@pytest.fixture
def connect_back() -> Iterator[int]:
    with listening_socket() as s:
        yield s.getsockname()[1]


def probe_outcomes(run: Launched) -> dict[str, str]:
    return {e["attempt"]: e["outcome"] for e in run.events("probe") if e["outcome"] != "trying"}


# What Landlock alone must refuse: the file system, bind, and every port but the allowed.
LANDLOCK_HOLDS = ("open_passwd", "list_root", "write_file", "listen", "connect_other_v4",
                  "connect_other_v6", "connect_other_v4mapped")


def test_landlock_alone_denies_every_attempt(tmp_path: Path, connect_back: int) -> None:
    if landlock.abi_version() < 4:
        pytest.skip("this kernel's Landlock has no network rules")
    manifest = write_manifest(tmp_path, connect_back_port=connect_back)
    attempts = [arg for name in (*LANDLOCK_HOLDS, "connect_back") for arg in ("--probe", name)]
    run = Launched.manifest(manifest, "--layers", "landlock,landlock-net,identity", *attempts)
    run.knock()
    exit_event = run.finish()
    outcomes = probe_outcomes(run)
    assert set(outcomes) == {*LANDLOCK_HOLDS, "connect_back"}, run.lines
    for attempt, outcome in outcomes.items():
        expected = "allowed" if attempt == "connect_back" else "denied"
        assert outcome == expected, (attempt, run.lines)
    assert exit_event["code"] == 0
    assert not list(Path("/tmp").glob("pinata-probe-*[0-9]")), "no file was written"


def test_an_unknown_probe_attempt_is_refused_before_launch(tmp_path: Path) -> None:
    manifest = write_manifest(tmp_path)
    result = subprocess.run(
        [sys.executable, "-m", "unikernel", "launch", "--manifest", str(manifest),
         "--probe", "format_disk"],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert result.returncode != 0
    assert "format_disk" in result.stderr
    assert '"listening"' not in result.stdout


def test_a_bad_manifest_is_refused_before_anything_starts(tmp_path: Path) -> None:
    path = tmp_path / "m.toml"
    path.write_text("entry = 'probe'\n")
    result = subprocess.run(
        [sys.executable, "-m", "unikernel", "launch", "--manifest", str(path)],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert result.returncode == 2
    assert "manifest: boot: missing" in result.stderr
    assert result.stdout == ""


def test_a_key_that_is_not_the_certificates_is_refused_at_boot(tmp_path: Path) -> None:
    manifest = write_manifest(tmp_path, entry="appliance")
    text = manifest.read_text().replace("client.key", "server.key")
    manifest.write_text(text)
    result = subprocess.run(
        [sys.executable, "-m", "unikernel", "launch", "--manifest", str(manifest)],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert result.returncode == 2
    assert "boot.client_key" in result.stderr
    assert '"listening"' not in result.stdout


def test_an_unreadable_boot_file_is_refused_by_name(tmp_path: Path) -> None:
    manifest = write_manifest(tmp_path, secret=tmp_path / "absent")
    result = subprocess.run(
        [sys.executable, "-m", "unikernel", "launch", "--manifest", str(manifest)],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert result.returncode == 2
    assert "boot.secret" in result.stderr
