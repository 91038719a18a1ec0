"""The toy CA: public on purpose, rebuilt byte for byte from a published seed.

Researchers use the toy build to complete every handshake and watch the toy
secret come out; nothing here protects anything. Every key is derived from
`TOY_SEED` (HKDF-SHA256, one label per key), every ECDSA signature is
deterministic (RFC 6979), serials and dates are fixed, so `python -m bait_ca
toy --out DIR` reproduces the committed `bait_ca/toy/` files exactly.
"""

from __future__ import annotations

from datetime import UTC, datetime

from bait_ca.ca import CertificateAuthority, LeafRole
from bait_ca.issued import Issued
from bait_ca.keys import derive_key, derive_scalar, private_key_pem
from bait_ca.wallet import SECP256K1_ORDER, BitcoinKey

TOY_SEED = b"BTC Pinata toy CA v1: this seed is public, so nothing it makes protects anything"
# RFC 5280 §4.1.2.5: UTCTime for 2025, GeneralizedTime for 2099; far enough
# apart to outlive the project.
TOY_NOT_BEFORE = datetime(2025, 1, 1, tzinfo=UTC)
TOY_NOT_AFTER = datetime(2099, 12, 31, 23, 59, 59, tzinfo=UTC)
TOY_ANCHOR_NAME = "BTC Pinata toy CA (its key is public)"
TOY_HOSTS = ("localhost", "127.0.0.1")

# file stem → (role, subject common name, serial); the anchor is serial 1.
TOY_LEAVES: dict[str, tuple[LeafRole, str, int]] = {
    "server": ("server", "BTC Pinata toy server", 2),
    "client": ("client", "BTC Pinata toy client", 3),
    "web": ("web", "BTC Pinata toy web", 4),
    "researcher-client": ("client", "toy researcher client", 5),
    "researcher-server": ("server", "toy researcher server", 6),
}
ANCHOR_FILES = ("anchor.pem", "anchor.key")
SECRET_FILE = "secret.wif"
ADDRESS_FILE = "address.txt"
TOY_FILES: tuple[str, ...] = (
    *ANCHOR_FILES,
    *(f"{stem}{ext}" for stem in TOY_LEAVES for ext in (".pem", ".key")),
    SECRET_FILE,
    ADDRESS_FILE,
)


def toy_bitcoin_key() -> BitcoinKey:
    """The toy secret: a testnet key anyone can compute, worth nothing."""
    return BitcoinKey(derive_scalar(TOY_SEED, "bitcoin key", SECP256K1_ORDER), testnet=True)


def address_text(key: BitcoinKey) -> bytes:
    network = "testnet" if key.testnet else "mainnet"
    return (
        f"network: {network}\np2pkh: {key.p2pkh_address}\np2wpkh: {key.p2wpkh_address}\n".encode()
    )


def toy_files() -> dict[str, bytes]:
    """Every toy file, name → content, exactly as committed."""
    anchor_key = derive_key(TOY_SEED, "anchor", "p256")
    authority = CertificateAuthority.create(
        not_before=TOY_NOT_BEFORE,
        not_after=TOY_NOT_AFTER,
        name=TOY_ANCHOR_NAME,
        private_key=anchor_key,
        serial=1,
    )
    anchor = Issued(authority.certificate, anchor_key)
    files = {"anchor.pem": anchor.pem, "anchor.key": private_key_pem(anchor_key)}
    for stem, (role, name, serial) in TOY_LEAVES.items():
        hosts = () if role == "client" else TOY_HOSTS
        leaf = authority.issue(
            role, name, hosts=hosts, private_key=derive_key(TOY_SEED, stem, "p256"), serial=serial
        )
        files[f"{stem}.pem"] = leaf.pem
        files[f"{stem}.key"] = leaf.key_pem
    bitcoin = toy_bitcoin_key()
    files[SECRET_FILE] = bitcoin.wif.encode("ascii")
    files[ADDRESS_FILE] = address_text(bitcoin)
    assert tuple(files) == TOY_FILES
    return files
