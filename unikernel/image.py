"""Images: one reproducible tarball holding everything the unikernel runs, and its list.

`build` installs the exact wheels of `requirements.lock` (hash-checked, no
dependency resolution) for this Python, adds our packages, compiles every
module with unchecked-hash invalidation (no source mtime in a `.pyc`), and
packs the tree sorted, owned by 0:0, dated SOURCE_DATE_EPOCH, gzipped with
no timestamp: two builds of one commit give the same bytes, so a researcher
can rebuild the published image and compare one SHA-256.

Layout of an image:

    software.json      Python version; each distribution, version, wheel SHA-256
    manifest.toml      toy only: the manifest that runs the toy as published
    site/              the import path: dependencies and our packages, compiled

The toy image carries the toy CA (public on purpose) and its dummy secret;
the real image carries no key and no secret: the manifest supplies them at
boot.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from pinata.lifetime import end_with_parent

REPO = Path(__file__).resolve().parent.parent
LOCK = Path(__file__).resolve().parent / "requirements.lock"
OUR_PACKAGES = ("pinata", "bait_ca", "unikernel")
# Package data beside the modules (pyproject's package-data).
OUR_DATA = ("py.typed", "*.toml", "*.txt", "toy/*")
TOY_DIR = "site/bait_ca/toy"
# 2015-02-10, the day the original piñata went live; used when SOURCE_DATE_EPOCH is unset.
DEFAULT_EPOCH = 1423526400
TARBALL = "pinata-unikernel-{kind}.tar.gz"
# Where `python -m unikernel build` keeps the locked wheels it fetched, by default.
WHEEL_CACHE = Path("~/.cache/pinata-unikernel").expanduser()
_REQUIREMENT = re.compile(r"^([A-Za-z0-9._-]+)==([A-Za-z0-9.+!_-]+)")


class ImageError(Exception):
    pass


@dataclass(frozen=True)
class Locked:
    name: str
    version: str
    hashes: frozenset[str]


@dataclass(frozen=True)
class Built:
    path: Path
    sha256: str
    size: int


def read_lock(path: Path = LOCK) -> list[Locked]:
    """Requirements with their allowed wheel hashes (pip's `--require-hashes` format)."""
    entries: list[Locked] = []
    text = path.read_text("utf-8").replace("\\\n", " ")
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        match = _REQUIREMENT.match(line)
        if match is None:
            raise ImageError(f"{path}: not a pinned requirement: {line}")
        hashes = frozenset(re.findall(r"--hash=sha256:([0-9a-f]{64})", line))
        if not hashes:
            raise ImageError(f"{path}: {match.group(1)} has no hash")
        entries.append(Locked(match.group(1), match.group(2), hashes))
    return entries


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "_", name).lower()


def fetch_wheels(cache: Path, lock: list[Locked]) -> dict[str, Path]:
    """The locked wheels, from the cache or downloaded into it; each checked by hash."""
    cache.mkdir(parents=True, exist_ok=True)

    def cached() -> dict[str, Path]:
        found: dict[str, Path] = {}
        for wheel in sorted(cache.glob("*.whl")):
            dist = _normal(wheel.name.split("-")[0])
            for entry in lock:
                if _normal(entry.name) == dist and _sha256(wheel) in entry.hashes:
                    found[entry.name] = wheel
        return found

    found = cached()
    if len(found) < len(lock):
        subprocess.run(
            [
                sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
                "--no-deps", "--only-binary=:all:", "--require-hashes",
                "-r", str(LOCK), "-d", str(cache),
            ],
            check=True,
        )
        found = cached()
    missing = sorted({e.name for e in lock} - set(found))
    if missing:
        raise ImageError(f"no wheel matching the lock for {', '.join(missing)}")
    return found


def _install(site: Path, wheels: dict[str, Path]) -> None:
    # --no-deps + the exact wheel files: nothing is resolved, nothing else comes in.
    # --no-compile: pip's .pyc would carry timestamps; we compile below.
    subprocess.run(
        [
            sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
            "--no-deps", "--no-index", "--no-compile", "--no-warn-script-location",
            "--target", str(site), *[str(w) for w in wheels.values()],
        ],
        check=True,
        env={**os.environ, "PIP_CONSTRAINT": "", "PIP_FIND_LINKS": ""},
    )
    # Console scripts would be launchers with this machine's interpreter path in them.
    shutil.rmtree(site / "bin", ignore_errors=True)


def _our_files(kind: str, source: Path) -> Iterator[tuple[Path, str]]:
    """(file, path in site/) for our packages; the real image leaves out the toy CA."""
    for package in OUR_PACKAGES:
        root = source / package
        for path in sorted(root.rglob("*")):
            if not path.is_file() or "__pycache__" in path.parts:
                continue
            relative = path.relative_to(source).as_posix()
            inside = path.relative_to(root).as_posix()
            if kind == "real" and relative.startswith("bait_ca/toy/"):
                continue
            if path.suffix == ".py" or any(Path(inside).match(p) for p in OUR_DATA):
                yield path, relative


def _tree_hash(files: list[tuple[Path, str]]) -> str:
    h = hashlib.sha256()
    for file, name in sorted(files, key=lambda f: f[1]):
        h.update(name.encode() + b"\0" + hashlib.sha256(file.read_bytes()).digest())
    return h.hexdigest()


def _compile(site: Path) -> None:
    # A fresh interpreter with a fixed hash seed: marshal's output depends on the
    # objects the compiling process already holds. `-d site` puts a path that is
    # the same on every machine into each code object instead of the staging dir.
    subprocess.run(
        [
            sys.executable, "-I", "-m", "compileall", "-q", "-j", "1",
            "--invalidation-mode", "unchecked-hash", "-d", "site", str(site),
        ],
        check=True,
        env={"PYTHONHASHSEED": "0", "PATH": os.environ.get("PATH", "")},
    )


def _toy_manifest(address_txt: str) -> str:
    address = ""
    for line in address_txt.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "p2pkh":
            address = value.strip()
    if not address:
        raise ImageError("the toy CA's address.txt names no p2pkh address")
    return f"""# The toy piñata as published: toy CA, dummy secret, ports of the original.
entry = "appliance"

[listeners]
tls_server = {{ address = "127.0.0.1", port = 10000 }}
connect_back = {{ address = "127.0.0.1", port = 10001 }}
tls_client = {{ address = "127.0.0.1", port = 10002 }}
http = {{ address = "127.0.0.1", port = 8080 }}
https = {{ address = "127.0.0.1", port = 8443 }}

[connect_back]
port = 40001

[selftalk]
interval = 600

[limits]
memory_mib = 1024
open_files = 512
max_connections = 128

[boot]
credentials = "files"
anchor = "{TOY_DIR}/anchor.pem"
server_chain = "{TOY_DIR}/server.pem"
server_key = "{TOY_DIR}/server.key"
client_chain = "{TOY_DIR}/client.pem"
client_key = "{TOY_DIR}/client.key"
secret = "{TOY_DIR}/secret.wif"
bitcoin_address = "{address}"
"""


def _software(
    wheels: dict[str, Path], lock: list[Locked], ours: str, version: str
) -> dict[str, object]:
    versions = {e.name: e.version for e in lock}
    return {
        "python": platform.python_version(),
        "implementation": sys.implementation.name,
        "platform": f"{platform.system().lower()}-{platform.machine()}",
        "distributions": [
            {"name": name, "version": versions[name], "wheel": wheel.name,
             "sha256": _sha256(wheel)}
            for name, wheel in sorted(wheels.items(), key=lambda item: item[0].lower())
        ],
        # One hash over our three packages' files (name and content, sorted by name).
        "ours": [{"name": p, "version": version, "sha256": ours} for p in OUR_PACKAGES],
    }


def _our_version(source: Path) -> str:
    text = (source / "pyproject.toml").read_text("utf-8")
    match = re.search(r'^version\s*=\s*"([^"]+)"', text, re.M)
    return match.group(1) if match else "0"


def _epoch() -> int:
    value = os.environ.get("SOURCE_DATE_EPOCH", "")
    return int(value) if value.isdigit() else DEFAULT_EPOCH


def pack(tree: Path, out: Path, epoch: int) -> None:
    """A tar.gz of `tree` whose bytes depend only on file names, contents and exec bits."""
    paths = sorted(tree.rglob("*"), key=lambda p: p.relative_to(tree).as_posix())
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for path in paths:
            name = path.relative_to(tree).as_posix()
            info = tarfile.TarInfo(name)
            info.mtime = epoch
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            if path.is_symlink():
                raise ImageError(f"{name}: symlinks are not packed")
            if path.is_dir():
                info.type = tarfile.DIRTYPE
                info.mode = 0o755
                tar.addfile(info)
            else:
                info.size = path.stat().st_size
                info.mode = 0o755 if os.access(path, os.X_OK) else 0o644
                with path.open("rb") as content:
                    tar.addfile(info, content)
    with out.open("wb") as sink, gzip.GzipFile(
        filename="", mode="wb", fileobj=sink, mtime=0, compresslevel=9
    ) as gz:
        gz.write(raw.getvalue())


def build(kind: str, out: Path, *, cache: Path, source: Path = REPO) -> Built:
    """Build the image from the packages under `source` (a checkout); the tarball's path,
    SHA-256 and size."""
    if kind not in ("toy", "real"):
        raise ImageError(f"no image kind {kind!r}: toy or real")
    lock = read_lock()
    wheels = fetch_wheels(cache / "wheels", lock)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="pinata-image-") as staging_name:
        tree = Path(staging_name) / "image"
        site = tree / "site"
        site.mkdir(parents=True)
        _install(site, wheels)
        ours = list(_our_files(kind, source))
        for file, name in ours:
            target = site / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(file, target)
        _compile(site)
        software = _software(wheels, lock, _tree_hash(ours), _our_version(source))
        (tree / "software.json").write_text(json.dumps(software, indent=2) + "\n", "utf-8")
        if kind == "toy":
            address = (source / "bait_ca" / "toy" / "address.txt").read_text("utf-8")
            (tree / "manifest.toml").write_text(_toy_manifest(address), "utf-8")
        target = out / TARBALL.format(kind=kind)
        pack(tree, target, _epoch())
    return Built(target, _sha256(target), target.stat().st_size)


# --- running an image ---------------------------------------------------------------

# What the image's interpreter runs: only the image's site/ on the path (-I -S: no
# user or system site-packages, no environment), no bytecode written (-B).
_BOOT = (
    "import sys; sys.path[:0] = [sys.argv[1] + '/site']; "
    "from unikernel.__main__ import main; "
    "sys.exit(main(['launch', '--manifest', sys.argv[2], '--software', "
    "sys.argv[1] + '/software.json']))"
)


def boot_command(tree: Path, manifest: Path) -> list[str]:
    """The command line that launches an unpacked image's `manifest` under the image's
    own import path (what `run` starts; `pinata bench startup` times it)."""
    return [sys.executable, "-I", "-S", "-B", "-c", _BOOT, str(tree.resolve()),
            str(manifest.resolve())]


def unpack(image: Path, into: Path) -> Path:
    with tarfile.open(image, "r:gz") as tar:
        tar.extractall(into, filter="data")
    return into


def check_python(tree: Path) -> None:
    doc = json.loads((tree / "software.json").read_text("utf-8"))
    built_for = ".".join(str(doc["python"]).split(".")[:2])
    here = f"{sys.version_info.major}.{sys.version_info.minor}"
    if built_for != here:
        raise ImageError(f"the image was built for Python {built_for}, this is {here}")


def run(image: Path, manifest: Path | None) -> int:
    """Launch an image (tarball or unpacked directory) under its own import path."""
    with tempfile.TemporaryDirectory(prefix="pinata-run-") as scratch:
        tree = image if image.is_dir() else unpack(image, Path(scratch))
        check_python(tree)
        chosen = manifest if manifest is not None else tree / "manifest.toml"
        if not chosen.is_file():
            raise ImageError(f"no manifest: {chosen} (the real image needs --manifest)")
        runner = os.getpid()

        def end_with_runner() -> None:
            # In the child, before exec: if this process is killed outright (it
            # cannot forward that), the launcher gets SIGTERM and stops its guest
            # as it does for ours, instead of serving on from a deleted tree.
            end_with_parent(runner, signal.SIGTERM)

        child = subprocess.Popen(boot_command(tree, chosen), preexec_fn=end_with_runner)

        def forward(signum: int, frame: object) -> None:
            child.send_signal(signal.SIGTERM)

        previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            return child.wait()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
