"""The committed toy credentials (see README.md here) and their loader."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bait_ca.issued import Issued

DIRECTORY = Path(__file__).resolve().parent


@dataclass(frozen=True)
class ToyCredentials:
    """The toy CA and every certificate built under it; all of it public."""

    directory: Path
    anchor: Issued
    server: Issued
    client: Issued
    web: Issued
    researcher_client: Issued
    researcher_server: Issued
    # The toy secret: a testnet WIF whose key anyone can recompute.
    secret_wif: bytes
    p2pkh_address: str
    p2wpkh_address: str

    def path(self, name: str) -> Path:
        return self.directory / name


def _pair(directory: Path, stem: str) -> Issued:
    return Issued.from_pem(
        (directory / f"{stem}.pem").read_bytes(), (directory / f"{stem}.key").read_bytes()
    )


def addresses(directory: Path = DIRECTORY) -> dict[str, str]:
    """`address.txt`'s fields ("network", "p2pkh", "p2wpkh": the toy secret's
    addresses), without loading any key."""
    found: dict[str, str] = {}
    for line in (directory / "address.txt").read_text("ascii").splitlines():
        field, _, value = line.partition(": ")
        found[field] = value
    return found


def load(directory: Path = DIRECTORY) -> ToyCredentials:
    """Read the toy files; ValueError if any key does not match its certificate."""
    address = addresses(directory)
    return ToyCredentials(
        directory=directory,
        anchor=_pair(directory, "anchor"),
        server=_pair(directory, "server"),
        client=_pair(directory, "client"),
        web=_pair(directory, "web"),
        researcher_client=_pair(directory, "researcher-client"),
        researcher_server=_pair(directory, "researcher-server"),
        secret_wif=(directory / "secret.wif").read_bytes(),
        p2pkh_address=address["p2pkh"],
        p2wpkh_address=address["p2wpkh"],
    )
