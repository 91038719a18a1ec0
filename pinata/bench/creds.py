"""The certificates a benchmark serves and presents, as PEM files every peer
reads (ours, Python's ssl, openssl, tlslite-ng): one anchor, a server leaf
and a client leaf, each issued directly by the anchor.

ECDSA P-256 is the toy CA as committed; RSA-2048 is minted at bench start
(three keys, a fraction of a second) by the same ceremony the appliance uses.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from bait_ca import toy
from bait_ca.ca import ceremony
from bait_ca.issued import Issued
from pinata.tls.config import Credentials

KeyKind = Literal["ecdsa-p256", "rsa2048"]
KEY_KINDS: tuple[KeyKind, ...] = ("ecdsa-p256", "rsa2048")
# What the server leaves name; clients check it.
SERVER_NAME = "localhost"


def write_pki(kind: KeyKind, directory: Path) -> Path:
    """anchor.pem, server.pem/.key and client.pem/.key for `kind` in `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    if kind == "ecdsa-p256":
        toy_ca = toy.load()
        anchor_pem = toy_ca.anchor.pem
        server, client = toy_ca.server, toy_ca.client
    else:
        minted = ceremony(SERVER_NAME, now=datetime.now(UTC), key_type="rsa2048")
        anchor_pem = minted.anchor.public_bytes(serialization.Encoding.PEM)
        server, client = minted.server, minted.client
    (directory / "anchor.pem").write_bytes(anchor_pem)
    for name, issued in (("server", server), ("client", client)):
        (directory / f"{name}.pem").write_bytes(issued.pem)
        (directory / f"{name}.key").write_bytes(issued.key_pem)
    return directory


@dataclass(frozen=True)
class Pki:
    """The files of `write_pki`, read back (in a worker process)."""

    directory: Path
    anchor_der: bytes
    anchor_subject_der: bytes
    server: Credentials
    client: Credentials

    def path(self, name: str) -> str:
        return str(self.directory / name)


def _credentials(directory: Path, name: str) -> Credentials:
    issued = Issued.from_pem(
        (directory / f"{name}.pem").read_bytes(), (directory / f"{name}.key").read_bytes()
    )
    return Credentials((issued.der,), issued.private_key)


def read_pki(directory: Path) -> Pki:
    anchor = x509.load_pem_x509_certificate((directory / "anchor.pem").read_bytes())
    return Pki(
        directory=directory,
        anchor_der=anchor.public_bytes(serialization.Encoding.DER),
        anchor_subject_der=anchor.subject.public_bytes(),
        server=_credentials(directory, "server"),
        client=_credentials(directory, "client"),
    )
