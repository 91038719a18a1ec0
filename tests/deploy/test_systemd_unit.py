"""`deploy/pinata.service` passes `systemd-analyze verify` without a warning."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.appliance.harness import written

REPO = Path(__file__).resolve().parents[2]
UNIT = REPO / "deploy" / "pinata.service"
INSTALLED = "/opt/pinata/.venv"
ANALYZE = shutil.which("systemd-analyze")
needs_analyze = pytest.mark.skipif(
    ANALYZE is None, reason="systemd-analyze is not installed (Debian package systemd)")


def _verify(tmp: Path, text: str) -> subprocess.CompletedProcess[str]:
    # verify checks that ExecStart exists: point it at this checkout's environment.
    unit = tmp / "pinata.service"
    unit.write_text(text.replace(INSTALLED, sys.prefix))
    assert ANALYZE is not None
    done = subprocess.run([ANALYZE, "verify", str(unit)], capture_output=True, text=True,
                          timeout=60, check=False)
    written(done.stdout + done.stderr)
    return done


@needs_analyze
def test_the_unit_verifies_cleanly(tmp_path: Path) -> None:
    text = UNIT.read_text()
    assert f"ExecStart={INSTALLED}/bin/pinata serve --config " in text
    assert (Path(sys.prefix) / "bin" / "pinata").exists()
    done = _verify(tmp_path, text)
    assert done.returncode == 0 and not done.stderr.strip(), done.stderr
    for hardening in ("Restart=on-failure", "NoNewPrivileges=yes", "DynamicUser=yes",
                      "ProtectSystem=strict", "SystemCallFilter=@system-service"):
        assert f"\n{hardening}\n" in text


@needs_analyze
def test_the_check_sees_a_misspelt_option(tmp_path: Path) -> None:
    done = _verify(tmp_path, UNIT.read_text().replace("NoNewPrivileges=", "NoNewPrivilege="))
    assert "Unknown key" in done.stderr
