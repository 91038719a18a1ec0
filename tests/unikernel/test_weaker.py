"""Refuse weaker than promised: a missing layer stops the launch unless the manifest allows it.

The kernel here has every layer, so the launches below stand in a survey that
reports one missing (monkeypatched in the launcher's own process); what is
under test is what the launcher does with the answer: refuse, naming the
layer, or run and say exactly what is off, in the startup line and /software.
"""

from __future__ import annotations

import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from tests.unikernel.harness import Launched, listening_socket, write_manifest
from unikernel import landlock, launcher, sandbox
from unikernel import manifest as mf

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="the sandbox is Linux's")

PRETEND = (
    "import sys\n"
    "from pathlib import Path\n"
    "from unikernel import launcher, manifest, sandbox\n"
    "sandbox.survey = lambda: {'landlock-net': 'pretend: Landlock ABI 3 < 4'}\n"
    "try:\n"
    "    sys.exit(launcher.launch(manifest.load(Path(sys.argv[1])),"
    " probe_attempts=sys.argv[2:]))\n"
    "except sandbox.WeakerThanPromised as e:\n"
    "    print(f'unikernel: {e}', file=sys.stderr)\n"
    "    sys.exit(2)\n"
)


def test_every_layer_is_present_on_this_machine() -> None:
    """The survey of the machine the suite runs on; the README's claims assume it."""
    missing = sandbox.survey()
    if landlock.abi_version() < landlock.NET_ABI:
        pytest.skip(f"this kernel lacks layers: {missing}")
    assert missing == {}


def test_a_missing_layer_is_named_and_refused() -> None:
    with pytest.raises(sandbox.WeakerThanPromised) as raised:
        sandbox.refuse_weaker({"landlock-net": "ABI 3", "identity": "no userns"}, ["identity"])
    assert raised.value.missing == {"landlock-net": "ABI 3"}
    assert 'allow_weaker = ["landlock-net"]' in str(raised.value)
    sandbox.refuse_weaker({"landlock-net": "ABI 3"}, ["landlock-net"])
    sandbox.refuse_weaker({}, [])


def test_the_launch_is_refused_before_anything_opens(tmp_path: Path) -> None:
    manifest = write_manifest(tmp_path)
    result = subprocess.run(
        [sys.executable, "-c", PRETEND, str(manifest), "connect_other_v4"],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert result.returncode == 2
    assert "weaker than promised, missing landlock-net (pretend" in result.stderr
    assert '"listening"' not in result.stdout


def test_allowed_weaker_runs_and_says_what_is_off(tmp_path: Path) -> None:
    with listening_socket() as back:
        manifest = write_manifest(tmp_path, connect_back_port=back.getsockname()[1])
        manifest.write_text('allow_weaker = ["landlock-net"]\n' + manifest.read_text())
        run = Launched([sys.executable, "-c", PRETEND, str(manifest), "connect_other_v4"])
        exit_event = run.finish()
    started = run.wait_event("sandbox", timeout=1)
    assert started["off"] == {"landlock-net": "pretend: Landlock ABI 3 < 4"}
    assert "unikernel: weaker than promised: landlock-net off (pretend" in run.stderr
    assert "network not restricted by Landlock" in started["landlock"]
    # Landlock no longer refuses the port; the tender still refuses the address.
    denied = [e for e in run.events("probe") if e["outcome"] == "denied"]
    assert denied and "PermissionError" in denied[0]["error"], run.lines
    assert exit_event["code"] == 0


def test_the_page_says_the_sandbox_is_weaker(tmp_path: Path) -> None:
    manifest = write_manifest(tmp_path, entry="appliance")
    manifest.write_text('allow_weaker = ["landlock-net"]\n' + manifest.read_text())
    run = Launched([sys.executable, "-c", PRETEND, str(manifest)])
    try:
        port = run.ports()["http"]
        run.wait_event("sandbox")
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/software", timeout=20) as r:
            software = r.read().decode()
    finally:
        exit_event = run.stop()
    assert "weaker than promised: landlock-net off (pretend: Landlock ABI 3 < 4)" in software
    assert "filtered" not in exit_event, run.stderr


def test_a_complete_sandbox_says_so_on_the_page() -> None:
    name, value = launcher.sandbox_entry({})
    assert name == "sandbox" and value.startswith("complete: ")
    assert all(layer in value for layer in mf.LAYERS), value
