"""Headless Chromium, driven from the command line: load a URL, give back the
DOM after scripts ran, the console messages and load failures it logged, or a
screenshot. One process per load, with its own throwaway profile."""

from __future__ import annotations

import base64
import hashlib
import re
import shutil
import struct
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

CANDIDATES = ("chromium", "chromium-browser")
TIMEOUT = 90
# Chromium's own log lines for page console messages and failed loads
# (`--enable-logging=stderr --v=0`), e.g. `[..:INFO:CONSOLE:1] "Uncaught ..."`.
PROBLEM = re.compile(r":CONSOLE[:(]|Page load failed|ERR_[A-Z_]+")


def find_chromium() -> str | None:
    for name in CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    return None


def spki_hash(certificate_pem: bytes) -> str:
    """base64(SHA-256(SubjectPublicKeyInfo)), as --ignore-certificate-errors-spki-list wants."""
    public = x509.load_pem_x509_certificate(certificate_pem).public_key()
    spki = public.public_bytes(serialization.Encoding.DER,
                               serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(hashlib.sha256(spki).digest()).decode()


@dataclass(frozen=True)
class Load:
    dom: str
    problems: tuple[str, ...]


@dataclass(frozen=True)
class Chromium:
    binary: str
    trusted_spki: str | None = None

    def _run(self, url: str, width: int, height: int,
             *extra: str) -> subprocess.CompletedProcess[str]:
        with tempfile.TemporaryDirectory(prefix="pinata-chromium-") as profile:
            command = [
                self.binary, "--headless", "--no-sandbox", "--disable-gpu",
                "--no-first-run", "--disable-extensions", "--disable-sync",
                f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0",
                f"--window-size={width},{height}", "--hide-scrollbars",
                "--virtual-time-budget=3000", *extra,
            ]
            if self.trusted_spki:
                command.append(f"--ignore-certificate-errors-spki-list={self.trusted_spki}")
            return subprocess.run([*command, url], capture_output=True, text=True,
                                  timeout=TIMEOUT, check=False)

    def load(self, url: str, width: int, height: int = 900) -> Load:
        """The DOM after load and scripts, and any problem logged."""
        done = self._run(url, width, height, "--dump-dom")
        problems = tuple(line for line in done.stderr.splitlines() if PROBLEM.search(line))
        return Load(done.stdout, problems)

    def screenshot(self, url: str, path: Path, width: int, height: int) -> tuple[int, int]:
        """Writes a PNG of the first `height` pixels; returns its (width, height)."""
        self._run(url, width, height, f"--screenshot={path}")
        return png_size(path.read_bytes())


def png_size(data: bytes) -> tuple[int, int]:
    """(width, height) from a PNG's IHDR chunk; ValueError if it is not a PNG."""
    if data[:8] != b"\x89PNG\r\n\x1a\n" or data[12:16] != b"IHDR":
        raise ValueError("not a PNG")
    width, height = struct.unpack(">II", data[16:24])
    return int(width), int(height)
