"""One signing-credentials type: built only from a certificate and its key,
checked to match, with the schemes it may sign with derived from the key
(RFC 8446 §4.2.3: an id-RSASSA-PSS key signs only with rsa_pss_pss_*)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import subprocess
from collections.abc import Sequence
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, rsa

from pinata.appliance.settings import ConfigError, credentials_from_pem
from pinata.tls.config import (
    ClientConfig,
    Credentials,
    InvalidCredentials,
    PeerRejected,
    ServerConfig,
    VerifiedPeer,
    spki_is_rsassa_pss,
)
from pinata.tls.connection import ClientConnection, ServerConnection
from pinata.tls.constants import SignatureScheme as S
from pinata.tls.errors import LocalProtocolError
from tests.tls import peers
from tests.tls.pairs import completed, pump
from tests.tls.peers import NOW, cert_pem, key_pem, leaf, pinned_authenticator


def _self_signed(key: ed448.Ed448PrivateKey | rsa.RSAPrivateKey) -> bytes:
    name = x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, "odd key")])
    algorithm = None if isinstance(key, ed448.Ed448PrivateKey) else hashes.SHA256()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(dt.datetime(2020, 1, 1))
        .not_valid_after(dt.datetime(2040, 1, 1))
        .sign(key, algorithm)
    )
    return cert.public_bytes(serialization.Encoding.DER)


def test_a_key_that_is_not_the_leafs_is_refused() -> None:
    server, _ = leaf("server", "p256")
    client, _ = leaf("client", "p256")
    with pytest.raises(InvalidCredentials, match="does not match"):
        Credentials(server.chain, client.private_key)


def test_an_empty_or_unreadable_chain_is_refused() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    with pytest.raises(InvalidCredentials):
        Credentials((), key)
    with pytest.raises(InvalidCredentials):
        Credentials((b"\x30\x03\x02\x01\x00",), key)


@pytest.mark.parametrize("kind", ["ed448", "rsa1024"])
def test_a_key_that_can_sign_no_tls13_scheme_is_refused(kind: str) -> None:
    key = (
        ed448.Ed448PrivateKey.generate()
        if kind == "ed448"
        else rsa.generate_private_key(public_exponent=65537, key_size=1024)
    )
    with pytest.raises(InvalidCredentials, match=r"no TLS 1\.3 signature scheme"):
        Credentials((_self_signed(key),), key)


def test_schemes_are_derived_from_the_key() -> None:
    assert leaf("server", "p256")[0].schemes == (S.ecdsa_secp256r1_sha256,)
    assert leaf("server", "ed25519")[0].schemes == (S.ed25519,)
    rsa_credentials = leaf("server", "rsa2048")[0]
    assert rsa_credentials.schemes == (
        S.rsa_pss_rsae_sha256,
        S.rsa_pss_rsae_sha384,
        S.rsa_pss_rsae_sha512,
    )
    assert rsa_credentials.choose_scheme([S.rsa_pss_rsae_sha512, S.rsa_pss_rsae_sha384]) == (
        S.rsa_pss_rsae_sha384
    )
    assert rsa_credentials.choose_scheme([S.rsa_pkcs1_sha256, S.rsa_pss_pss_sha256]) is None
    with pytest.raises(LocalProtocolError):
        rsa_credentials.sign(S.rsa_pss_pss_sha256, b"message")


@functools.cache
def _rsassa_pss_files(directory: Path) -> tuple[bytes, bytes]:
    """An id-RSASSA-PSS leaf (issued by the test CA with openssl) and its key, as PEM."""
    ca = peers.test_ca()
    (directory / "ca.pem").write_bytes(ca.pem)
    (directory / "ca.key").write_bytes(
        ca.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    (directory / "leaf.ext").write_text(
        "basicConstraints=critical,CA:FALSE\nextendedKeyUsage=serverAuth,clientAuth\n"
    )
    d = str(directory)
    commands = (
        ["openssl", "genpkey", "-algorithm", "RSA-PSS", "-pkeyopt", "rsa_keygen_bits:2048",
         "-out", f"{d}/leaf.key"],
        ["openssl", "req", "-new", "-key", f"{d}/leaf.key", "-subj", "/CN=pinata pss",
         "-out", f"{d}/leaf.csr"],
        ["openssl", "x509", "-req", "-in", f"{d}/leaf.csr", "-CA", f"{d}/ca.pem",
         "-CAkey", f"{d}/ca.key", "-set_serial", "9", "-days", "365", "-sha256",
         "-extfile", f"{d}/leaf.ext", "-out", f"{d}/leaf.pem"],
    )  # fmt: skip
    for command in commands:
        subprocess.run(command, check=True, capture_output=True, timeout=60)
    return (directory / "leaf.pem").read_bytes(), (directory / "leaf.key").read_bytes()


@pytest.fixture(scope="module")
def rsassa_pss(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, bytes]:
    return _rsassa_pss_files(tmp_path_factory.mktemp("pss"))


def _pss_aware(certificates: Sequence[bytes], now: dt.datetime) -> VerifiedPeer | PeerRejected:
    verdict = pinned_authenticator()(certificates, now)
    if isinstance(verdict, PeerRejected):
        return verdict
    return dataclasses.replace(verdict, leaf_key_is_rsassa_pss=spki_is_rsassa_pss(certificates[0]))


def _server_scheme(credentials: Credentials) -> S | None:
    # The client offers rsae before pss (our default order): a server that
    # took the key for rsaEncryption would pick rsa_pss_rsae_sha256.
    client = ClientConnection(
        ClientConfig(authenticate_server=_pss_aware, credentials=None), now=NOW
    )
    server = ServerConnection(ServerConfig(credentials=credentials), now=NOW)
    client_events, _ = pump(client, server)
    done = completed(client_events)
    assert done is not None, client_events
    return done.peer_signature_scheme


def test_serve_config_credentials_of_an_rsassa_pss_key_sign_with_pss_schemes(
    rsassa_pss: tuple[bytes, bytes],
) -> None:
    # The path `pinata serve --config` and the unikernel's boot files take.
    chain_pem, key_pem_bytes = rsassa_pss
    credentials = credentials_from_pem(chain_pem, key_pem_bytes, "chain", "key")
    assert credentials.key_is_rsassa_pss
    assert credentials.schemes == (S.rsa_pss_pss_sha256, S.rsa_pss_pss_sha384, S.rsa_pss_pss_sha512)
    assert _server_scheme(credentials) == S.rsa_pss_pss_sha256


def test_the_unikernel_boot_files_take_the_same_path(rsassa_pss: tuple[bytes, bytes]) -> None:
    from pinata.appliance.settings import build_settings
    from unikernel.guest import BootFiles
    from unikernel.manifest import BootData

    chain_pem, key_pem_bytes = rsassa_pss
    client, _ = leaf("client", "p256")
    files = {
        "anchor": peers.test_ca().pem,
        "server_chain": chain_pem,
        "server_key": key_pem_bytes,
        "client_chain": cert_pem(client),
        "client_key": key_pem(client),
    }
    document = {
        "bitcoin_address": "x",
        "secret_file": "secret",
        "credentials": {name: name for name in files},
    }
    settings = build_settings(document, BootFiles(BootData(files, b"secret")), software=())
    server = settings.server_credentials
    assert server.schemes[0] == S.rsa_pss_pss_sha256
    assert _server_scheme(server) == S.rsa_pss_pss_sha256


def test_serve_config_refuses_a_key_for_another_certificate() -> None:
    a, _ = leaf("server", "p256")
    b, _ = leaf("client", "p256")
    with pytest.raises(ConfigError, match="does not match"):
        credentials_from_pem(cert_pem(a), key_pem(b), "chain", "key")
