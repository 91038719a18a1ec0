"""The probe matrix: every dangerous variant, each in its own real sandbox, as root and not.

Each attempt runs in its own launch of the real launcher (the first call the
filter stops ends the process), with self-talk on so that its loopback dial
is allowed and its ports are in Landlock's list. "root" starts the launcher
as root (chroot, uid 65534); "user" starts it as root, drops to uid 65534
and then launches, so the identity layer is an unprivileged user namespace.
Each outcome is asserted against `probe.EXPECTED`; the test prints the matrix
(`pytest -s`), which the README shows.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.unikernel.harness import TOY, Launched, listening_socket, write_manifest
from unikernel import probe

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="the sandbox is Linux's")

AS_USER = (
    "import os, sys\n"
    "from pathlib import Path\n"
    "from unikernel import launcher, manifest\n"
    "launcher.preload('probe')\n"
    "m = manifest.load(Path(sys.argv[1]))\n"
    "if os.geteuid() == 0:\n"
    "    os.setgroups([]); os.setresgid(65534, 65534, 65534); os.setresuid(65534, 65534, 65534)\n"
    "sys.exit(launcher.launch(m, probe_attempts=sys.argv[2:]))\n"
)
BOOT_FILES = ("anchor.pem", "server.pem", "server.key", "client.pem", "client.key",
              "secret.wif")


@pytest.fixture(scope="module")
def world_readable() -> Iterator[Path]:
    # The unprivileged tender must read its manifest and boot files wherever the checkout is.
    path = Path(tempfile.mkdtemp(prefix="pinata-matrix-"))
    path.chmod(0o755)
    for name in BOOT_FILES:
        shutil.copy(TOY / name, path / name)
        (path / name).chmod(0o644)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def outcome_of(run: Launched, attempt: str) -> str:
    """What happened, in the matrix's words: `killed:<call>`, `EACCES`, `allowed` or else."""
    exit_event = run.finish()
    ended = [e for e in run.events("probe") if e["attempt"] == attempt
             and e["outcome"] != "trying"]
    if "filtered" in exit_event:
        assert not ended, "the filter stops a call before it returns"
        return f"killed:{exit_event['filtered']}"
    if not ended:
        return f"no outcome ({exit_event}, {run.stderr[-300:]})"
    if ended[0]["outcome"] == "allowed":
        return "allowed"
    error = ended[0]["error"]
    return "EACCES" if error.startswith("PermissionError") else error


def run_attempt(command: list[str], attempt: str) -> tuple[str, dict[str, Any]]:
    run = Launched([*command, attempt])
    if attempt in probe.NEEDS_KNOCK:
        run.knock()
    outcome = outcome_of(run, attempt)
    return outcome, run.wait_event("sandbox", timeout=1)


def matrix_for(identity: str, directory: Path) -> dict[str, str]:
    with listening_socket() as back:
        manifest = write_manifest(directory, connect_back_port=back.getsockname()[1],
                                  selftalk=60, secret=directory / "secret.wif",
                                  boot_dir=directory)
        manifest.chmod(0o644)
        command = [sys.executable, "-m", "unikernel", "launch", "--manifest", str(manifest),
                   "--probe"]
        if identity == "user":
            command = [sys.executable, "-c", AS_USER, str(manifest)]
        with ThreadPoolExecutor(max_workers=4) as pool:
            ran = list(pool.map(lambda a: run_attempt(command, a), probe.EXPECTED))
    SANDBOXES[identity] = [started for _, started in ran]
    return dict(zip(probe.EXPECTED, (outcome for outcome, _ in ran), strict=True))


# The startup line of every launch, by identity.
SANDBOXES: dict[str, list[dict[str, Any]]] = {}


@pytest.fixture(scope="module")
def matrix(world_readable: Path) -> dict[str, dict[str, str]]:
    identities = ["root", "user"] if os.geteuid() == 0 else ["user"]
    return {identity: matrix_for(identity, world_readable) for identity in identities}


def test_every_launch_closed_the_whole_sandbox(matrix: dict[str, dict[str, str]]) -> None:
    for identity in matrix:
        assert len(SANDBOXES[identity]) == len(probe.EXPECTED)
        for started in SANDBOXES[identity]:
            assert started["off"] == {} and started["no_new_privs"] is True
            assert started["rlimits"]["RLIMIT_NPROC"] == 0
            assert started["uid"] == 65534 and started["gid"] == 65534
            assert started["chroot"] and not Path(started["chroot"]).exists()
            assert started["landlock"].startswith("landlock ABI")
            assert started["root"] is (identity == "root")
            assert started["user_namespace"] is (identity == "user")


def expected_words(expect: probe.Expect) -> set[str]:
    if expect.outcome == "killed":
        return {f"killed:{call}" for call in expect.calls}
    return {expect.outcome}


def test_every_attempt_has_an_expectation() -> None:
    assert set(probe.ATTEMPTS) == set(probe.EXPECTED)
    assert len(probe.EXPECTED) == 43, "the README's count"
    assert set(probe.ATTEMPTS) >= probe.NEEDS_KNOCK


@pytest.mark.parametrize("attempt", sorted(probe.EXPECTED))
def test_the_outcome_is_the_expected_one(matrix: dict[str, dict[str, str]], attempt: str) -> None:
    for identity, outcomes in matrix.items():
        assert outcomes[attempt] in expected_words(probe.EXPECTED[attempt]), identity


def test_print_the_matrix(matrix: dict[str, dict[str, str]]) -> None:
    identities = list(matrix)
    lines = ["| attempt | expected | decided by | " + " | ".join(identities) + " |",
             "| --- | --- | --- | " + " | ".join("---" for _ in identities) + " |"]
    for attempt, expect in probe.EXPECTED.items():
        wanted = "killed" if expect.outcome == "killed" else expect.outcome
        seen = " | ".join(matrix[i][attempt] for i in identities)
        lines.append(f"| {attempt} | {wanted} | {expect.by} | {seen} |")
    print("\n" + "\n".join(lines))
    assert len(lines) == len(probe.EXPECTED) + 2
