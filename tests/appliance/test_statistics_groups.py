"""The original piñata's statistics groups, each provoked over the wire.

Each case sends hand-built bytes to port 10000 of a running toy appliance,
as the attackers of 2015 did (a record with an unknown version, a
heartbeat, an SSLv3 hello, a TLS 1.2 hello without RFC 5746, one offering
only CBC suites, ...), reads the alert the piñata answers with, and finds
the connection counted in its group: in its JSON line, in `/stats` and in
`/metrics`.
"""

from __future__ import annotations

import shutil
import socket
import struct
import subprocess
import time
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest

from pinata.appliance.outcome import REFUSED_GROUPS, StatGroup
from pinata.tls.errors import AlertDescription, Cause
from tests.appliance.harness import RunningAppliance, toy_path

HANDSHAKE, ALERT, HEARTBEAT = 22, 21, 24
TLS12, SSL3 = 0x0303, 0x0300
ECDHE_ECDSA_AES128_GCM = 0xC02B
ECDHE_RSA_AES128_GCM = 0xC02F
# RFC 4492 / RFC 5289 CBC suites, which we never speak.
CBC_ONLY = (0xC009, 0xC013, 0xC023, 0xC027, 0x002F)
FALLBACK_SCSV = 0x5600


def _vector(width: int, body: bytes) -> bytes:
    return len(body).to_bytes(width, "big") + body


def _extension(kind: int, body: bytes) -> bytes:
    return struct.pack(">H", kind) + _vector(2, body)


def record(content_type: int, body: bytes, version: int = 0x0301) -> bytes:
    return struct.pack(">BHH", content_type, version, len(body)) + body


def client_hello(*, version: int = TLS12, suites: tuple[int, ...] = (
        ECDHE_ECDSA_AES128_GCM, ECDHE_RSA_AES128_GCM),
        renegotiation_info: bool = True, extended_master_secret: bool = True) -> bytes:
    """A TLS 1.2 ClientHello (RFC 5246 §7.4.1.2), ECDHE over x25519 and P-256,
    without supported_versions; its record."""
    extensions = b"".join((
        _extension(10, _vector(2, bytes.fromhex("001d0017"))),      # supported_groups
        _extension(11, _vector(1, b"\x00")),                         # ec_point_formats
        _extension(13, _vector(2, bytes.fromhex("040308040401"))),  # signature_algorithms
        _extension(23, b"") if extended_master_secret else b"",      # RFC 7627
        _extension(0xFF01, b"\x00") if renegotiation_info else b"",  # RFC 5746 §3.2
    ))
    body = (struct.pack(">H", version) + bytes(range(32)) + _vector(1, b"")
            + _vector(2, b"".join(struct.pack(">H", s) for s in suites))
            + _vector(1, b"\x00") + (_vector(2, extensions) if version > SSL3 else b""))
    return record(HANDSHAKE, bytes((1,)) + _vector(3, body))


def first_alert(sock: socket.socket) -> int | None:
    """The description of the first alert record the piñata sends (None: none came)."""
    data = b""
    while True:
        while len(data) >= 5:
            length = int.from_bytes(data[3:5], "big")
            if len(data) < 5 + length:
                break
            if data[0] == ALERT and length == 2:
                return data[6]
            data = data[5 + length:]
        try:
            chunk = sock.recv(4096)
        except (ConnectionResetError, TimeoutError):
            return None
        if not chunk:
            return None
        data += chunk


@dataclass(frozen=True)
class Provocation:
    sent: bytes
    alert: AlertDescription
    cause: Cause
    group: StatGroup


PROVOCATIONS = {
    # The record layer refuses a version that is not 3.x before anything else.
    "record version 0x0400": Provocation(
        record(HANDSHAKE, b"\x01\x00\x00\x00", version=0x0400), AlertDescription.protocol_version,
        Cause.record_version_unknown, StatGroup.unknown_record_version),
    "heartbeat record": Provocation(
        record(HEARTBEAT, b"\x01\x00\x10" + bytes(16), version=TLS12),
        AlertDescription.unexpected_message, Cause.heartbeat_record, StatGroup.heartbeat),
    "SSLv3 hello": Provocation(
        client_hello(version=SSL3), AlertDescription.protocol_version,
        Cause.version_too_old, StatGroup.version_too_old),
    "TLS 1.2 hello without RFC 5746": Provocation(
        client_hello(renegotiation_info=False), AlertDescription.handshake_failure,
        Cause.no_secure_renegotiation, StatGroup.no_secure_renegotiation),
    "TLS 1.2 hello with only CBC suites": Provocation(
        client_hello(suites=CBC_ONLY), AlertDescription.handshake_failure,
        Cause.no_common_cipher_suite, StatGroup.no_common_cipher_suite),
    "TLS 1.2 hello without extended master secret": Provocation(
        client_hello(extended_master_secret=False), AlertDescription.handshake_failure,
        Cause.no_extended_master_secret, StatGroup.no_extended_master_secret),
    # RFC 7507 §3: a fallback to 1.2 while we speak 1.3.
    "TLS 1.2 hello with the fallback SCSV": Provocation(
        client_hello(suites=(ECDHE_ECDSA_AES128_GCM, FALLBACK_SCSV)),
        AlertDescription.inappropriate_fallback, Cause.inappropriate_fallback,
        StatGroup.inappropriate_fallback),
}


@pytest.mark.parametrize("case", sorted(PROVOCATIONS))
def test_each_group_is_provoked_over_the_wire(appliance: RunningAppliance, case: str) -> None:
    sent = PROVOCATIONS[case]
    with socket.create_connection(("127.0.0.1", appliance.ports["tls_server"]), timeout=10) as s:
        source_port = s.getsockname()[1]
        s.sendall(sent.sent)
        assert first_alert(s) == sent.alert
    line = appliance.record_from("tls_server", source_port)
    assert (line["outcome"], line["alert"]) == ("alert sent", sent.alert.name)
    assert (line["cause"], line["group"]) == (sent.cause.value, sent.group.value)


def test_every_group_provoked_is_in_stats_and_metrics(appliance: RunningAppliance) -> None:
    for case in sorted(PROVOCATIONS):
        with socket.create_connection(("127.0.0.1", appliance.ports["tls_server"]),
                                      timeout=10) as s:
            s.sendall(PROVOCATIONS[case].sent)
            first_alert(s)
    wanted = {p.group.value for p in PROVOCATIONS.values()}
    for _ in range(200):
        outcomes = appliance.stats()["listeners"]["tls_server"]["outcomes"]
        if wanted <= set(outcomes):
            break
        time.sleep(0.02)
    assert wanted <= set(outcomes)
    metrics = appliance.call(lambda: appliance.state.counters.to_prometheus(datetime.now(UTC)))
    for group in wanted:
        assert f'listener="tls_server",outcome="{group}"' in metrics


def test_the_page_shows_every_refused_group() -> None:
    assert {p.group for p in PROVOCATIONS.values()} <= set(REFUSED_GROUPS)


def server_hello_with_sentinel(client_hello_record: bytes) -> bytes:
    """A TLS 1.2 ServerHello whose random ends in RFC 8446 §4.1.3's DOWNGRD\\x01,
    echoing the ClientHello's session id; its record."""
    session_id_at = 5 + 4 + 2 + 32
    session_id = client_hello_record[session_id_at + 1:
                                     session_id_at + 1 + client_hello_record[session_id_at]]
    extensions = (_extension(0xFF01, b"\x00") + _extension(23, b"")
                  + _extension(11, _vector(1, b"\x00")))
    body = (struct.pack(">H", TLS12) + bytes(24) + b"DOWNGRD\x01" + _vector(1, session_id)
            + struct.pack(">HB", ECDHE_ECDSA_AES128_GCM, 0) + _vector(2, extensions))
    return record(HANDSHAKE, bytes((2,)) + _vector(3, body), version=TLS12)


def test_a_downgrade_sentinel_is_its_own_group(appliance: RunningAppliance) -> None:
    """Port 10002: the piñata offers 1.3 and 1.2, so a 1.2 ServerHello carrying
    the sentinel means someone stripped its 1.3 offer."""
    with socket.create_connection(("127.0.0.1", appliance.ports["tls_client"]), timeout=10) as s:
        source_port = s.getsockname()[1]
        hello = b""
        while len(hello) < 5 or len(hello) < 5 + int.from_bytes(hello[3:5], "big"):
            chunk = s.recv(4096)
            assert chunk, "the piñata sent no ClientHello"
            hello += chunk
        s.sendall(server_hello_with_sentinel(hello))
        assert first_alert(s) == AlertDescription.illegal_parameter
    line = appliance.record_from("tls_client", source_port)
    assert (line["cause"], line["group"]) == ("downgrade_sentinel", "downgrade detected")


@pytest.mark.skipif(shutil.which("openssl") is None, reason="no openssl")
def test_renegotiation_on_the_https_page_is_its_own_group(appliance: RunningAppliance) -> None:
    """The bounty ports read nothing after the secret; the page reads requests, so
    `openssl s_client -tls1_2`'s R command reaches the engine there."""
    def completed() -> int:
        count: int = appliance.stats()["handshakes_by_version"].get("TLS 1.2", 0)
        return count

    before = completed()
    client = subprocess.Popen(
        ["openssl", "s_client", "-connect", f"127.0.0.1:{appliance.ports['https']}", "-tls1_2",
         "-CAfile", toy_path("anchor.pem")],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 15
        while completed() == before:
            assert time.monotonic() < deadline, "no TLS 1.2 handshake on the page"
            time.sleep(0.02)
        assert client.stdin is not None
        client.stdin.write(b"R\n")
        client.stdin.flush()
        line = appliance.wait_for_record(lambda r: r.get("listener") == "https"
                                         and r.get("cause") == "renegotiation_refused")
    finally:
        client.kill()
        client.communicate()
    assert (line["alert"], line["group"]) == ("no_renegotiation", "renegotiation refused")
    assert line["version"] == "TLS 1.2"
