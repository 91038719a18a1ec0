"""The README's figures, each enforced at the figure the README states.

Each test reads its figure (and, where the README names one, the alert)
out of README.md, so the text and the behaviour cannot drift apart: change
either and this fails. Figures enforced elsewhere, at the figure: x509-limbo's
counts (tests/x509/test_limbo.py), 10,000 connections without a leak
(tests/appliance/test_leaks.py), the record-size limits (tests/tls/test_record.py).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from pinata.appliance.settings import Limits, toy_settings
from pinata.tls.config import ClientConfig
from pinata.tls.connection import ClientConnection, ServerConnection
from pinata.tls.events import ConnectionFailed, Event, HandshakeComplete
from pinata.x509 import (
    Check,
    Purpose,
    TrustAnchor,
    ValidatedChain,
    ValidationFailure,
    authenticator,
    validate,
)
from tests.conformance.server import ConformancePki, make_pki, server_config
from unikernel import seccomp

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()
NOW = datetime.now(UTC)


def figure(pattern: str) -> re.Match[str]:
    """The README's match for `pattern`; fails the test if the text is gone."""
    found = re.search(pattern, README)
    assert found, f"the README no longer says {pattern!r}: update this test with it"
    return found


@cache
def _pki() -> ConformancePki:
    return make_pki(NOW)


def _client() -> ClientConnection:
    anchor = TrustAnchor.from_der(_pki().authority.certificate.public_bytes(Encoding.DER))
    config = ClientConfig(authenticate_server=authenticator(anchor, Purpose.SERVER_AUTH))
    return ClientConnection(config, now=NOW)


def _server() -> ServerConnection:
    return ServerConnection(server_config(_pki(), "ecdsa", client_auth=False), now=NOW)


def _pump(client: ClientConnection, server: ServerConnection, rounds: int = 4) -> list[Event]:
    """Move bytes both ways (never an empty read: b"" means end of stream);
    the client's events."""
    events: list[Event] = []
    for _ in range(rounds):
        if data := client.data_to_send():
            server.receive_data(data)
        if data := server.data_to_send():
            events += client.receive_data(data)
    return events


def _failure(events: list[Event]) -> ConnectionFailed | None:
    return next((e for e in events if isinstance(e, ConnectionFailed)), None)


def _alert_name(failure: ConnectionFailed | None) -> str | None:
    alert = None if failure is None else failure.alert
    return None if alert is None else getattr(alert, "name", str(alert))


# ---- the TLS engine ------------------------------------------------------------------


def test_trace_holds_exactly_its_stated_number_of_entries() -> None:
    bound = int(figure(r"bounded trace \((\d+) entries\)").group(1))
    client, server = _client(), _server()
    assert any(isinstance(e, HandshakeComplete) for e in _pump(client, server))
    # Every KeyUpdate adds trace entries on both sides: far past the bound.
    for _ in range(bound):
        client.update_keys(request_peer_update=True)
        _pump(client, server, rounds=1)
    assert len(server.trace.entries) == bound
    assert len(client.trace.entries) == bound


def _with_early_data(record: bytes) -> bytes:
    """Our client's ClientHello record with an empty early_data extension
    (RFC 8446 §4.2.10) appended to its extensions, the last field."""
    body = bytearray(record[9:])
    at = 2 + 32
    at += 1 + body[at]  # legacy_session_id
    at += 2 + int.from_bytes(body[at:at + 2], "big")  # cipher_suites
    at += 1 + body[at]  # legacy_compression_methods
    extensions = int.from_bytes(body[at:at + 2], "big") + 4
    body[at:at + 2] = extensions.to_bytes(2, "big")
    body += b"\x00\x2a\x00\x00"
    message = b"\x01" + len(body).to_bytes(3, "big") + bytes(body)
    return record[:3] + len(message).to_bytes(2, "big") + message


def _opaque_records(total: int, size: int) -> bytes:
    """`total` bytes of application_data records no key opens, `size` each."""
    out = b""
    while total > 0:
        n = min(size, total)
        out += b"\x17\x03\x03" + n.to_bytes(2, "big") + b"\xaa" * n
        total -= n
    return out


def test_early_data_is_skipped_up_to_the_stated_bound_then_refused() -> None:
    found = figure(r"early data skipped up to (\d+) KiB\) \| — / `(\w+)` past the bound")
    bound, alert = int(found.group(1)) * 1024, found.group(2)
    server = _server()
    hello = _with_early_data(_client().data_to_send())
    assert _failure(server.receive_data(hello)) is None
    assert server.data_to_send()  # ServerHello and its flight: the hello was taken
    assert _failure(server.receive_data(_opaque_records(bound, 4096))) is None
    assert _alert_name(_failure(server.receive_data(_opaque_records(1, 1)))) == alert


def test_client_hello_size_limit_is_the_stated_one() -> None:
    row = figure(r"\| a handshake message over \d+ KiB \((\d+) KiB for ClientHello and "
                 r"Certificate\).*\| `(\w+)` \|")
    limit, alert = int(row.group(1)) * 1024, row.group(2)

    def header(length: int) -> bytes:
        return b"\x16\x03\x01\x00\x04\x01" + length.to_bytes(3, "big")

    at_limit = _server()
    assert at_limit.receive_data(header(limit)) == []  # waits for the body
    over = _server()
    assert _alert_name(_failure(over.receive_data(header(limit + 1)))) == alert


def test_a_full_handshake_completes_with_these_helpers() -> None:
    # The figures above are only meaningful if this pair talks at all.
    client, server = _client(), _server()
    assert any(isinstance(e, HandshakeComplete) for e in _pump(client, server))
    assert not client.closed and not server.closed


# ---- the appliance and the unikernel -------------------------------------------------


def test_appliance_deadlines_are_the_stated_defaults() -> None:
    # Their effect is tested at short settings in tests/appliance/test_limits.py;
    # here, that `pinata toy` and a config without [limits] run with these.
    handshake, connection = figure(
        r"a handshake\s+deadline \((\d+) s\) and a connection deadline \((\d+) s\)").groups()
    connect = figure(r"a (\d+) s connect timeout").group(1)
    for limits in (Limits(), toy_settings().limits):
        assert limits.handshake_timeout == float(handshake)
        assert limits.connection_timeout == float(connection)
        assert limits.connect_timeout == float(connect)


def test_seccomp_allowlist_has_the_stated_number_of_calls() -> None:
    stated = int(figure(r"seccomp-bpf allowlist of (\d+) system calls").group(1))
    for arch in seccomp.ARCHES.values():
        rules = seccomp.policy(arch, (1, 2, 7))
        assert len({r.syscall for r in rules}) == stated, arch.name


# ---- the X.509 validator's bounds ----------------------------------------------------

_EPOCH = datetime(2025, 1, 1, tzinfo=UTC)


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _certificate(subject: str, key: ec.EllipticCurvePrivateKey, issuer: str,
                 issuer_key: ec.EllipticCurvePrivateKey, ca: bool,
                 padding: int = 0, key_id: bytes | None = None) -> bytes:
    """A certificate in the profile pinata.x509 accepts (RFC 5280 §4.2.1.2/3/9,
    key identifiers, keyUsage on issuers, clientAuth on the leaf); `padding`
    bytes of an unknown non-critical extension make it as large as needed."""
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject)).issuer_name(_name(issuer))
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(_EPOCH).not_valid_after(_EPOCH + timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(not ca, False, False, False, False, ca, ca, False, False),
                       critical=True)
        .add_extension(x509.SubjectKeyIdentifier(key_id) if key_id else
                       x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                       critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
            issuer_key.public_key()), critical=False)
    )
    if not ca:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
    if padding:
        builder = builder.add_extension(x509.UnrecognizedExtension(
            x509.ObjectIdentifier("1.3.6.1.4.1.55555.1"), b"\x04\x82" + padding.to_bytes(2, "big")
            + bytes(padding)), critical=False)
    return builder.sign(issuer_key, hashes.SHA256()).public_bytes(Encoding.DER)


@cache
def _anchor() -> tuple[ec.EllipticCurvePrivateKey, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    return key, _certificate("figures anchor", key, "figures anchor", key, ca=True)


def _validate(chain: list[bytes], max_depth: int = 8) -> object:
    anchor = TrustAnchor.from_der(_anchor()[1])
    return validate(anchor, chain, _EPOCH + timedelta(days=1), Purpose.CLIENT_AUTH,
                    max_depth=max_depth)


def _leaf_of_size(size: int) -> bytes:
    """A leaf under the anchor whose DER is exactly `size` bytes."""
    anchor_key, _ = _anchor()
    key = ec.generate_private_key(ec.SECP256R1())
    padding = 1000
    for _ in range(64):  # ECDSA signatures vary by a byte or two
        der = _certificate("leaf", key, "figures anchor", anchor_key, ca=False, padding=padding)
        if len(der) == size:
            return der
        padding += size - len(der)
    raise AssertionError(f"could not build a {size}-byte certificate")


def test_certificate_size_bound_is_the_stated_one() -> None:
    stated = int(figure(r"(\d+) KiB\s+per\s+certificate").group(1)) * 1024
    assert isinstance(_validate([_leaf_of_size(stated)]), ValidatedChain)
    refused = _validate([_leaf_of_size(stated + 1)])
    assert isinstance(refused, ValidationFailure) and refused.check == Check.too_large


def _intermediates(count: int) -> tuple[list[bytes], ec.EllipticCurvePrivateKey, str]:
    """`count` intermediates below the anchor, nearest the leaf first."""
    issuer_key, issuer = _anchor()[0], "figures anchor"
    chain: list[bytes] = []
    for i in range(count):
        key = ec.generate_private_key(ec.SECP256R1())
        chain.insert(0, _certificate(f"intermediate {i}", key, issuer, issuer_key, ca=True))
        issuer_key, issuer = key, f"intermediate {i}"
    return chain, issuer_key, issuer


def test_intermediate_bound_is_the_stated_one() -> None:
    stated = int(figure(r"(\d+) intermediates,\s+\d+ KiB\s+per\s+certificate").group(1))
    chain, key, name = _intermediates(stated + 1)
    leaf = _certificate("leaf", ec.generate_private_key(ec.SECP256R1()), name, key, ca=False)
    # Asking for more depth than the bound does not lift it.
    refused = _validate([leaf, *chain], max_depth=1000)
    assert isinstance(refused, ValidationFailure) and refused.check == Check.max_depth
    chain, key, name = _intermediates(stated)
    leaf = _certificate("leaf", ec.generate_private_key(ec.SECP256R1()), name, key, ca=False)
    assert isinstance(_validate([leaf, *chain], max_depth=1000), ValidatedChain)


def test_bag_bound_is_the_stated_one() -> None:
    stated = int(figure(r"(\d+) certificates\s+considered\s+after\s+the\s+leaf").group(1))
    (intermediate,), key, name = _intermediates(1)
    leaf = _certificate("leaf", ec.generate_private_key(ec.SECP256R1()), name, key, ca=False)
    junk_key = ec.generate_private_key(ec.SECP256R1())
    junk = _certificate("unrelated", junk_key, "unrelated", junk_key, ca=True)
    # The issuer as the bag's last considered certificate, then one past it.
    assert isinstance(_validate([leaf, *[junk] * (stated - 1), intermediate]), ValidatedChain)
    refused = _validate([leaf, *[junk] * stated, intermediate])
    assert isinstance(refused, ValidationFailure) and refused.check == Check.no_path


def _look_alikes_then_issuer(count: int) -> list[bytes]:
    """A leaf, `count` CAs bearing its issuer's name and key identifier but
    other keys (each costs a failed signature check), then the issuer."""
    anchor_key = _anchor()[0]
    issuer_key = ec.generate_private_key(ec.SECP256R1())
    key_id = x509.SubjectKeyIdentifier.from_public_key(issuer_key.public_key()).digest
    issuer = _certificate("look-alike", issuer_key, "figures anchor", anchor_key, ca=True)
    fakes = [_certificate("look-alike", ec.generate_private_key(ec.SECP256R1()),
                          "figures anchor", anchor_key, ca=True, key_id=key_id)
             for _ in range(count)]
    leaf = _certificate("leaf", ec.generate_private_key(ec.SECP256R1()), "look-alike",
                        issuer_key, ca=False)
    return [leaf, *fakes, issuer]


def test_signature_verification_bound_is_the_stated_one() -> None:
    stated = int(figure(r"(\d+)\s+signature\s+verifications").group(1))
    # The leaf against each look-alike and the issuer, the issuer against
    # the anchor: count + 2 verifications.
    assert isinstance(_validate(_look_alikes_then_issuer(stated - 2)), ValidatedChain)
    refused = _validate(_look_alikes_then_issuer(stated - 1))
    assert isinstance(refused, ValidationFailure) and refused.check == Check.budget
