"""The committed toy credentials are exactly what the published seed rebuilds."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID, ExtensionOID

from bait_ca import toy
from bait_ca.keys import same_public_key
from bait_ca.toy_ca import TOY_FILES, TOY_NOT_AFTER, TOY_NOT_BEFORE, toy_files
from bait_ca.wallet import BitcoinKey

REPO = Path(__file__).resolve().parents[2]
_SPKI = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def test_committed_files_equal_a_fresh_regeneration() -> None:
    fresh = toy_files()
    assert tuple(fresh) == TOY_FILES
    for name, data in fresh.items():
        assert (toy.DIRECTORY / name).read_bytes() == data, name


def test_the_toy_directory_holds_nothing_unexplained() -> None:
    present = {p.name for p in toy.DIRECTORY.iterdir() if p.name != "__pycache__"}
    assert present == {*TOY_FILES, "README.md", "__init__.py"}


def test_cli_regenerates_byte_for_byte(tmp_path: Path) -> None:
    out = tmp_path / "toy"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, "-m", "bait_ca", "toy", "--out", str(out)],
        env=env,
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in out.iterdir()) == sorted(TOY_FILES)
    for name in TOY_FILES:
        assert (out / name).read_bytes() == (toy.DIRECTORY / name).read_bytes(), name
        mode = (out / name).stat().st_mode & 0o777
        assert mode == (0o600 if name.endswith((".key", ".wif")) else 0o644), name


@pytest.fixture(scope="module")
def credentials() -> toy.ToyCredentials:
    return toy.load()


def test_anchor_profile(credentials: toy.ToyCredentials) -> None:
    anchor = credentials.anchor.certificate
    constraints = anchor.extensions.get_extension_for_oid(ExtensionOID.BASIC_CONSTRAINTS).value
    assert isinstance(constraints, x509.BasicConstraints)
    assert constraints.ca and constraints.path_length == 0
    usage = anchor.extensions.get_extension_for_oid(ExtensionOID.KEY_USAGE).value
    assert isinstance(usage, x509.KeyUsage) and usage.key_cert_sign and usage.crl_sign
    assert anchor.not_valid_before_utc == TOY_NOT_BEFORE
    assert anchor.not_valid_after_utc == TOY_NOT_AFTER
    assert anchor.serial_number == 1
    assert same_public_key(anchor.public_key(), credentials.anchor.public_key)


@pytest.mark.parametrize(
    ("attribute", "eku", "hosts"),
    [
        ("server", ExtendedKeyUsageOID.SERVER_AUTH, True),
        ("client", ExtendedKeyUsageOID.CLIENT_AUTH, False),
        ("web", ExtendedKeyUsageOID.SERVER_AUTH, True),
        ("researcher_client", ExtendedKeyUsageOID.CLIENT_AUTH, False),
        ("researcher_server", ExtendedKeyUsageOID.SERVER_AUTH, True),
    ],
)
def test_leaves(
    credentials: toy.ToyCredentials, attribute: str, eku: x509.ObjectIdentifier, hosts: bool
) -> None:
    leaf = getattr(credentials, attribute).certificate
    leaf.verify_directly_issued_by(credentials.anchor.certificate)
    usage = leaf.extensions.get_extension_for_oid(ExtensionOID.EXTENDED_KEY_USAGE).value
    assert isinstance(usage, x509.ExtendedKeyUsage) and list(usage) == [eku]
    key_usage = leaf.extensions.get_extension_for_oid(ExtensionOID.KEY_USAGE).value
    assert isinstance(key_usage, x509.KeyUsage) and key_usage.digital_signature
    if hosts:
        san = leaf.extensions.get_extension_for_oid(ExtensionOID.SUBJECT_ALTERNATIVE_NAME).value
        assert isinstance(san, x509.SubjectAlternativeName)
        assert san.get_values_for_type(x509.DNSName) == ["localhost"]
        assert [str(ip) for ip in san.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]


def test_every_toy_key_is_distinct(credentials: toy.ToyCredentials) -> None:
    pairs = [
        credentials.anchor,
        credentials.server,
        credentials.client,
        credentials.web,
        credentials.researcher_client,
        credentials.researcher_server,
    ]
    spkis = {p.certificate.public_key().public_bytes(*_SPKI) for p in pairs}
    assert len(spkis) == len(pairs)


def test_toy_secret_and_its_addresses(credentials: toy.ToyCredentials) -> None:
    key = BitcoinKey.from_wif(credentials.secret_wif.decode("ascii"))
    assert key.testnet and key.compressed
    assert key.p2pkh_address == credentials.p2pkh_address
    assert key.p2wpkh_address == credentials.p2wpkh_address


def test_load_refuses_a_mismatched_pair(tmp_path: Path) -> None:
    for name in TOY_FILES:
        (tmp_path / name).write_bytes((toy.DIRECTORY / name).read_bytes())
    (tmp_path / "client.key").write_bytes((toy.DIRECTORY / "server.key").read_bytes())
    with pytest.raises(ValueError, match="does not match"):
        toy.load(tmp_path)
