"""The README's figures, each enforced at the figure the README states.

Each test reads its figure (and, where the README names one, the alert)
out of README.md, so the text and the behaviour cannot drift apart: change
either and this fails. Figures enforced elsewhere, at the figure: x509-limbo's
counts (tests/x509/test_limbo.py), 10,000 connections without a leak
(tests/appliance/test_leaks.py), the record-size limits (tests/tls/test_record.py).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from functools import cache
from pathlib import Path

import trio
from cryptography.hazmat.primitives.serialization import Encoding

from pinata.appliance.journal import WRITE_INTERVAL
from pinata.appliance.settings import Limits, toy_settings
from pinata.tls.config import ClientConfig
from pinata.tls.connection import ClientConnection, ServerConnection
from pinata.tls.events import ConnectionFailed, Event, HandshakeComplete
from pinata.tls.record import MAX_CIPHERTEXT, MAX_PLAINTEXT, RECORD_HEADER_LEN
from pinata.x509 import (
    Purpose,
    TrustAnchor,
    authenticator,
)
from tests.appliance.test_tls_stream import pair
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
        # Application data between KeyUpdates, both ways: a run of them
        # alone is refused (README: KeyUpdates in a row).
        client.send_application_data(b"x")
        _pump(client, server, rounds=1)
        server.send_application_data(b"y")
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
    found = figure(r"early data skipped up to (\d+) KiB[^|]*\| — / `(\w+)` past the bound")
    bound, alert = int(found.group(1)) * 1024, found.group(2)
    server = _server()
    hello = _with_early_data(_client().data_to_send())
    assert _failure(server.receive_data(hello)) is None
    assert server.data_to_send()  # ServerHello and its flight: the hello was taken
    assert _failure(server.receive_data(_opaque_records(bound, 4096))) is None
    assert _alert_name(_failure(server.receive_data(_opaque_records(1, 1)))) == alert


def test_client_hello_size_limit_is_the_stated_one() -> None:
    row = figure(r"ClientHello over its grammar's ([\d,]+)\), refused at the header \| `(\w+)` \|")
    limit, alert = int(row.group(1).replace(",", "")), row.group(2)

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
        r"inside the (\d+) s handshake and (\d+) s connection deadlines").groups()
    connect = figure(r"[Tt]he (\d+) s connect timeout").group(1)
    for limits in (Limits(), toy_settings().limits):
        assert limits.handshake_timeout == float(handshake)
        assert limits.connection_timeout == float(connection)
        assert limits.connect_timeout == float(connect)


def test_seccomp_allowlist_has_the_stated_number_of_calls() -> None:
    stated = int(figure(r"seccomp-bpf allowlist of (\d+)\s+system\s+calls").group(1))
    for arch in seccomp.ARCHES.values():
        rules = seccomp.policy(arch, (1, 2, 7))
        assert len({r.syscall for r in rules}) == stated, arch.name


# The X.509 validator's bounds are tested at the README's figures by
# tests/x509/test_bounds.py, which its table names.


def test_small_chains_are_validated_on_the_loop_up_to_the_stated_size() -> None:
    # What happens either side of it: tests/appliance/test_hostile_load.py.
    from pinata.appliance.guard import SMALL_CHAIN_BYTES

    stated = int(figure(r"once the chain's bytes pass (\d+) KiB").group(1))
    assert stated * 1024 == SMALL_CHAIN_BYTES


# ---- the bulk path and the log writers (issue 18) --------------------------------------


class _AskedSizes(trio.abc.Stream):
    """A stream that keeps the sizes each read asked for and each write made."""

    def __init__(self, inner: trio.abc.Stream) -> None:
        self.inner = inner
        self.asked: list[int | None] = []
        self.written: list[int] = []

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        self.written.append(len(data))
        await self.inner.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        await self.inner.wait_send_all_might_not_block()

    async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray:
        self.asked.append(max_bytes)
        return await self.inner.receive_some(max_bytes)

    async def aclose(self) -> None:
        await self.inner.aclose()


def test_bulk_writes_and_reads_are_the_stated_sizes() -> None:
    write_kib = int(figure(r"(\d+) KiB per write").group(1))
    words = {"two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "eight": 8}
    records = words[figure(r"reads (\w+) records per\s+receive").group(1)]
    data = bytes(3 * write_kib * 1024 + 100)

    async def main() -> None:
        server, client = pair()
        sender, receiver = _AskedSizes(server.transport), _AskedSizes(client.transport)
        server.transport, client.transport = sender, receiver
        got = bytearray()

        async def server_side() -> None:
            await server.do_handshake()
            sender.written.clear()
            await server.send_all(data)

        async def client_side() -> None:
            await client.do_handshake()
            while len(got) < len(data):
                got.extend(await client.receive_some())

        with trio.fail_after(20):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(server_side)
                nursery.start_soon(client_side)
        assert bytes(got) == data
        # Each write carries the stated content, sealed in full records
        # (header, inner type and tag on each 2^14 bytes).
        full = write_kib * 1024 // MAX_PLAINTEXT * (MAX_PLAINTEXT + RECORD_HEADER_LEN + 1 + 16)
        assert sender.written[:3] == [full, full, full]
        # Every read asks for the stated number of the largest records.
        assert set(receiver.asked) == {records * (MAX_CIPHERTEXT + RECORD_HEADER_LEN)}

    trio.run(main)


def test_log_writers_rest_the_stated_interval() -> None:
    assert int(figure(r"log writers wake once per (\d+) ms").group(1)) == WRITE_INTERVAL * 1000
