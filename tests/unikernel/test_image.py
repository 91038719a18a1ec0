"""Images: reproducible to the byte, holding only what their software list names.

Builds use a snapshot of our packages (others may be editing the checkout
meanwhile) and the wheel cache (downloaded once, on the first run).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.pids import ended, state_and_parent
from tests.unikernel.harness import REPO, TOY, Launched, listening_socket, write_manifest
from unikernel import image

pytestmark = pytest.mark.slow
CACHE = Path("~/.cache/pinata-unikernel").expanduser()
PEM_KEY = re.compile(rb"-----BEGIN [A-Z ]*PRIVATE KEY-----\r?\n[A-Za-z0-9+/=\r\n]{40,}")


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    snapshot = tmp_path_factory.mktemp("source")
    for package in image.OUR_PACKAGES:
        shutil.copytree(REPO / package, snapshot / package,
                        ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", snapshot / "pyproject.toml")
    return snapshot


@pytest.fixture(scope="module")
def toy(source: Path, tmp_path_factory: pytest.TempPathFactory) -> image.Built:
    return image.build("toy", tmp_path_factory.mktemp("toy-a"), cache=CACHE, source=source)


@pytest.fixture(scope="module")
def real(source: Path, tmp_path_factory: pytest.TempPathFactory) -> image.Built:
    return image.build("real", tmp_path_factory.mktemp("real"), cache=CACHE, source=source)


def members(built: image.Built) -> Iterator[tuple[tarfile.TarInfo, bytes]]:
    with tarfile.open(built.path, "r:gz") as tar:
        for info in tar.getmembers():
            data = b""
            if info.isfile():
                extracted = tar.extractfile(info)
                assert extracted is not None
                data = extracted.read()
            yield info, data


def test_two_toy_builds_in_different_directories_are_identical(
    toy: image.Built, source: Path, tmp_path: Path
) -> None:
    out = tmp_path / "elsewhere" / "b"
    result = subprocess.run(
        [sys.executable, "-m", "unikernel", "build", "toy", "--out", str(out),
         "--cache", str(CACHE), "--source", str(source)],
        cwd=tmp_path, capture_output=True, text=True, timeout=600, check=True,
    )
    second = out / toy.path.name
    assert second.read_bytes() == toy.path.read_bytes()
    printed = result.stdout.split()[0]
    assert printed == toy.sha256 == hashlib.sha256(second.read_bytes()).hexdigest()


def test_the_tarball_is_normalised(toy: image.Built) -> None:
    names = []
    for info, _ in members(toy):
        names.append(info.name)
        assert (info.uid, info.gid, info.uname, info.gname) == (0, 0, "", "")
        assert info.mtime == image.DEFAULT_EPOCH
        assert info.mode in (0o644, 0o755)
        assert info.isfile() or info.isdir()
    assert names == sorted(names)
    header = toy.path.read_bytes()[:10]
    assert header[4:8] == b"\0\0\0\0", "gzip carries no timestamp"


def _software(built: image.Built) -> dict[str, object]:
    for info, data in members(built):
        if info.name == "software.json":
            doc: dict[str, object] = json.loads(data)
            return doc
    raise AssertionError("no software.json")


def test_the_software_list_is_the_lock(toy: image.Built) -> None:
    software = _software(toy)
    assert software["python"] == ".".join(map(str, sys.version_info[:3]))
    locked = {e.name: e for e in image.read_lock()}
    listed = software["distributions"]
    assert isinstance(listed, list)
    assert {d["name"] for d in listed} == set(locked)
    for d in listed:
        assert d["version"] == locked[d["name"]].version
        assert d["sha256"] in locked[d["name"]].hashes


def _dist_records(built: image.Built) -> set[str]:
    named: set[str] = set()
    for info, data in members(built):
        if info.name.endswith(".dist-info/RECORD"):
            for row in data.decode().splitlines():
                named.add("site/" + row.split(",")[0])
    return named


def test_the_toy_image_holds_only_listed_distributions_and_our_packages(
    toy: image.Built,
) -> None:
    software = _software(toy)
    dists = {re.sub(r"[-_.]+", "_", str(d["name"])).lower()
             for d in software["distributions"]}  # type: ignore[attr-defined]
    recorded = _dist_records(toy)
    ours = tuple(f"site/{p}/" for p in image.OUR_PACKAGES)
    for info, _ in members(toy):
        name = info.name
        if info.isdir() or name in ("software.json", "manifest.toml"):
            continue
        if name.startswith(ours):
            continue
        # A .pyc is named by its source's path, which the RECORD lists.
        source = re.sub(r"__pycache__/([^/]+)\.cpython-\d+\.pyc$", r"\1.py", name)
        assert name in recorded or source in recorded, name
        dist_info = re.match(r"site/([^/]+)-[^/-]+\.dist-info/", name)
        if dist_info:
            assert re.sub(r"[-_.]+", "_", dist_info.group(1)).lower() in dists


def test_the_toy_image_carries_the_toy_credentials(toy: image.Built) -> None:
    files = dict((info.name, data) for info, data in members(toy))
    assert PEM_KEY.search(files["site/bait_ca/toy/server.key"]), "the key check can fail"
    assert files["site/bait_ca/toy/secret.wif"] == (TOY / "secret.wif").read_bytes()
    assert "site/bait_ca/toy/server.key" in files
    manifest = files["manifest.toml"].decode()
    assert 'credentials = "files"' in manifest
    assert "site/bait_ca/toy/anchor.pem" in manifest


def test_the_real_image_holds_no_key_and_no_secret(real: image.Built) -> None:
    toy_secret = (TOY / "secret.wif").read_bytes().strip()
    names = []
    for info, data in members(real):
        names.append(info.name)
        # A key block, not just the marker (cryptography's ssh module names the marker).
        assert not PEM_KEY.search(data), info.name
        assert toy_secret not in data, info.name
        assert not info.name.endswith((".key", ".wif")), info.name
        assert "secret" not in Path(info.name).name.lower() or info.name.endswith(
            ("secret.py", "secret.cpython-311.pyc")
        ), info.name
    assert "manifest.toml" not in names
    assert not [n for n in names if n.startswith("site/bait_ca/toy/")]
    assert "site/pinata/appliance/__init__.py" in names


def test_the_toy_image_runs_and_serves_its_software_list(
    toy: image.Built, tmp_path: Path
) -> None:
    import http.client

    with listening_socket() as back:
        manifest = write_manifest(tmp_path, entry="appliance",
                                  connect_back_port=back.getsockname()[1])
        run = Launched([sys.executable, "-m", "unikernel", "run", str(toy.path),
                        "--manifest", str(manifest)])
        try:
            port = run.ports()["http"]
            run.wait_event("sandbox")
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
            conn.request("GET", "/software")
            body = conn.getresponse().read().decode()
            conn.close()
        finally:
            exit_event = run.stop()
    lock = {e.name: e for e in image.read_lock()}
    for line in body.splitlines():
        name, _, rest = line.partition(" ")
        if name in lock:
            assert rest.split("sha256:")[1] in lock[name].hashes
    assert "cryptography" in body and "sha256:" in body
    assert "filtered" not in exit_event


def test_the_toy_image_is_the_size_the_readmes_state(toy: image.Built) -> None:
    # Both READMEs give the compressed image's size to 0.1 MB: hold them to it
    # (within 0.1 MB, so that a small change to the code does not fail this).
    root = Path(__file__).resolve().parents[2]
    for readme, pattern in ((root / "README.md", r"an? ([\d.]+) MB image"),
                            (root / "unikernel" / "README.md", r"\| toy image \| ([\d.]+) MB")):
        found = re.search(pattern, readme.read_text())
        assert found, f"{readme.name} no longer states the image's size"
        assert abs(toy.size / 1_000_000 - float(found.group(1))) <= 0.1, (readme, toy.size)



def test_a_killed_runner_stops_the_image(toy: image.Built, tmp_path: Path) -> None:
    """`python -m unikernel run` killed outright cannot forward its signal: its
    launcher's parent-death signal stops the launcher, which stops its guest."""
    with listening_socket() as back:
        manifest = write_manifest(tmp_path, entry="appliance",
                                  connect_back_port=back.getsockname()[1])
        run = Launched([sys.executable, "-m", "unikernel", "run", str(toy.path),
                        "--manifest", str(manifest)])
        left: list[int] = []
        try:
            run.ports()
            guest = run.wait_event("listening")["pid"]
            run.wait_event("sandbox")
            found = state_and_parent(guest)
            assert found is not None
            launcher = found[1]
            assert launcher != run.process.pid  # the runner keeps the unpacked tree
            left = [guest, launcher]
            run.kill()
            deadline = time.monotonic() + 20
            for pid in left:
                while not ended(pid):
                    assert time.monotonic() < deadline, f"{pid} outlived the runner"
                    time.sleep(0.02)
        finally:
            run.kill()
            for pid in left:  # what this test looks for, should it have outlived
                if not ended(pid):
                    os.kill(pid, signal.SIGKILL)
