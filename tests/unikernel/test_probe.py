"""A compromised unikernel under the real sandbox: every attempt fails or is stopped.

Each attempt runs in its own launch, since the first one the filter stops
ends the process; the launcher must then name the system call. With only
Landlock applied, every attempt runs in one process and each must fail with
an error, so each layer is shown to hold on its own.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.unikernel.harness import TOY, Launched, listening_socket, write_manifest
from unikernel import landlock, probe

# What stops each attempt under the full sandbox: the filter (by call name) or an error.
STOPPED_BY = {
    "open_passwd": {"openat"},
    "list_root": {"openat"},
    "write_file": {"openat"},
    "exec_shell": {"execve"},
    "fork": {"clone", "clone3"},
    "listen": {"bind"},
    # connect(2) is on the list; Landlock refuses every port but the connect-back one.
    "connect_other": {"EACCES"},
    "raise_rlimits": {"prlimit64"},
}

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="the sandbox is Linux's")


@pytest.fixture
def connect_back() -> Iterator[int]:
    with listening_socket() as s:
        yield s.getsockname()[1]


@pytest.fixture
def world_readable_dir() -> Iterator[Path]:
    # pytest's tmp_path is root-only; the unprivileged tender must read its manifest.
    path = Path(tempfile.mkdtemp(prefix="pinata-probe-test-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        for child in path.iterdir():
            child.unlink()
        path.rmdir()


def probe_outcomes(run: Launched) -> dict[str, str]:
    return {e["attempt"]: e["outcome"] for e in run.events("probe") if e["outcome"] != "trying"}


def check_stopped(attempt: str, run: Launched, exit_event: dict[str, object]) -> None:
    outcomes = probe_outcomes(run)
    assert outcomes.get(attempt) != "allowed", run.lines
    tried = [e for e in run.events("probe") if e["attempt"] == attempt]
    assert tried and tried[0]["outcome"] == "trying"
    if "EACCES" in STOPPED_BY[attempt]:
        assert outcomes[attempt] == "denied"
        error = next(e["error"] for e in run.events("probe") if e.get("outcome") == "denied")
        assert "PermissionError" in error
        assert exit_event["code"] == 0
    else:
        assert attempt not in outcomes, "the filter must stop it before it returns"
        assert exit_event["filtered"] in STOPPED_BY[attempt]
        assert exit_event["code"] == 128 + 31
        assert f"stopped by the system-call filter: {exit_event['filtered']}" in run.stderr


@pytest.mark.parametrize("attempt", sorted(STOPPED_BY))
def test_each_attempt_is_stopped_in_the_full_sandbox(
    tmp_path: Path, connect_back: int, attempt: str
) -> None:
    manifest = write_manifest(tmp_path, connect_back_port=connect_back)
    run = Launched.manifest(manifest, "--probe", attempt)
    exit_event = run.finish()
    sandbox = run.wait_event("sandbox", timeout=1)
    assert sandbox["no_new_privs"] is True
    assert sandbox["rlimits"]["RLIMIT_NPROC"] == 0
    if os.geteuid() == 0:
        assert sandbox["root"] is True and sandbox["uid"] == 65534 and sandbox["gid"] == 65534
        assert sandbox["chroot"]
        assert not Path(sandbox["chroot"]).exists(), "the tender removes the empty root"
    check_stopped(attempt, run, exit_event)


def test_the_connect_back_port_is_still_reachable(tmp_path: Path, connect_back: int) -> None:
    manifest = write_manifest(tmp_path, connect_back_port=connect_back)
    run = Launched.manifest(manifest, "--probe", "connect_back")
    run.knock()
    exit_event = run.finish()
    assert probe_outcomes(run) == {"connect_back": "allowed"}
    assert exit_event == {"event": "exit", "code": 0, "status": 0}


def test_landlock_alone_denies_every_attempt(tmp_path: Path, connect_back: int) -> None:
    if landlock.abi_version() < 4:
        pytest.skip("this kernel's Landlock has no network rules")
    manifest = write_manifest(tmp_path, connect_back_port=connect_back)
    run = Launched.manifest(manifest, "--layers", "landlock,landlock-net,identity")
    run.knock()
    exit_event = run.finish()
    outcomes = probe_outcomes(run)
    assert set(outcomes) == set(probe.ATTEMPTS), run.lines
    for attempt, outcome in outcomes.items():
        expected = "allowed" if attempt == "connect_back" else "denied"
        assert outcome == expected, (attempt, run.lines)
    assert exit_event["code"] == 0
    assert not list(Path("/tmp").glob("pinata-probe-*[0-9]")), "no file was written"


def test_unprivileged_the_sandbox_still_closes(world_readable_dir: Path, connect_back: int) -> None:
    """Started as a plain user: every layer applies, identity through a user namespace."""
    if os.geteuid() != 0:
        pytest.skip("already unprivileged: the other tests are this one")
    secret = world_readable_dir / "secret"
    secret.write_bytes(b"dummy")
    secret.chmod(stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
    # The checkout may sit where uid 65534 cannot reach (a 0700 directory),
    # so the boot files come along into the world-readable directory.
    for name in ("anchor.pem", "server.pem", "server.key", "client.pem", "client.key"):
        copy = world_readable_dir / name
        copy.write_bytes((TOY / name).read_bytes())
        copy.chmod(0o644)
    manifest = write_manifest(
        world_readable_dir, connect_back_port=connect_back, secret=secret,
        boot_dir=world_readable_dir,
    )
    manifest.chmod(0o644)
    # The interpreter may live where uid 65534 cannot exec it (under /root), so the test
    # starts as root, imports, and drops to 65534 before the launcher runs.
    script = (
        "import os, sys\n"
        "from pathlib import Path\n"
        "from unikernel import launcher, manifest\n"
        "launcher.preload('probe')\n"
        "m = manifest.load(Path(sys.argv[1]))\n"
        "os.setgroups([]); os.setresgid(65534, 65534, 65534); os.setresuid(65534, 65534, 65534)\n"
        "sys.exit(launcher.launch(m, probe_attempts=sys.argv[2:]))\n"
    )
    for attempt in ("open_passwd", "connect_other", "connect_back"):
        run = Launched([sys.executable, "-c", script, str(manifest), attempt])
        if attempt == "connect_back":
            run.knock()
        exit_event = run.finish()
        sandbox = run.wait_event("sandbox", timeout=1)
        # Not root: the chroot and uid 65534 come from an unprivileged user namespace.
        assert sandbox["root"] is False and sandbox["user_namespace"] is True
        assert sandbox["chroot"] and not Path(sandbox["chroot"]).exists()
        assert sandbox["off"] == {}
        assert sandbox["uid"] == 65534
        assert sandbox["landlock"].startswith("landlock ABI")
        assert sandbox["seccomp_syscalls"]
        if attempt == "connect_back":
            assert probe_outcomes(run) == {"connect_back": "allowed"}
        else:
            check_stopped(attempt, run, exit_event)


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
