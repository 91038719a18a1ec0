"""Writing results: all or nothing, keys readable by their owner only.

Every command builds its output in a fresh temporary directory beside the
destination and renames it into place at the end, so a failure halfway
leaves nothing behind; an existing non-empty destination is refused, never
merged into or overwritten.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path

KEY_MODE = 0o600
PUBLIC_MODE = 0o644


class OutputError(Exception):
    """The destination cannot be written as asked."""


def check_output_dir(out: Path) -> None:
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise OutputError(f"{out} exists and is not an empty directory; refusing to write into it")
    if not out.parent.is_dir():
        raise OutputError(f"{out.parent} is not a directory")


def _write(path: Path, data: bytes, mode: int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        os.fchmod(fd, mode)  # exactly this mode, whatever the umask
        with os.fdopen(fd, "wb", closefd=False) as stream:
            stream.write(data)
    finally:
        os.close(fd)


def is_key_file(name: str) -> bool:
    return name.endswith((".key", ".wif"))


@contextlib.contextmanager
def staged_directory(out: Path) -> Iterator[Path]:
    """A temporary directory that becomes `out` if the block succeeds."""
    check_output_dir(out)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        yield staging
        check_output_dir(out)  # someone may have written there meanwhile
        if out.exists():
            out.rmdir()
        os.rename(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def write_directory(out: Path, files: Mapping[str, bytes]) -> None:
    """Write `files` (name → content) as the new directory `out`; keys get mode 0600."""
    with staged_directory(out) as staging:
        for name, data in files.items():
            _write(staging / name, data, KEY_MODE if is_key_file(name) else PUBLIC_MODE)
        os.chmod(staging, 0o755)


def write_new_file(out: Path, data: bytes, mode: int = KEY_MODE) -> None:
    """Create `out` with `data`, atomically, refusing to replace anything."""
    if out.exists() or out.is_symlink():
        raise OutputError(f"{out} exists; refusing to overwrite it")
    if not out.parent.is_dir():
        raise OutputError(f"{out.parent} is not a directory")
    fd, temp_name = tempfile.mkstemp(prefix=f".{out.name}.", dir=out.parent)
    temp = Path(temp_name)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb", closefd=False) as stream:
            stream.write(data)
        os.close(fd)
        fd = -1
        # link() fails if `out` appeared meanwhile: no clobbering, no partial file.
        os.link(temp, out)
    except FileExistsError:
        raise OutputError(f"{out} exists; refusing to overwrite it") from None
    finally:
        if fd >= 0:
            os.close(fd)
        temp.unlink(missing_ok=True)
