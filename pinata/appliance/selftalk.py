"""The piñata talking to itself through a relay that sees only ciphertext.

A connection to the TLS-client port (10002) makes the piñata send a
ClientHello; relayed to the TLS-server port (10000), it meets the piñata's
server, which asks for a client certificate and gets the piñata's own, which
validates. Both handshakes complete and each side sends the secret to the
other, encrypted. The relay records what crossed it (record types and sizes,
the cleartext handshake message names) and checks that the secret's bytes
never did.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field

import trio

from pinata.appliance.proxy_protocol import format_v1
from pinata.appliance.transport import SocketTransport, connect
from pinata.secret import Secret
from pinata.tls.constants import RECORD_HEADER_LEN, ContentType, HandshakeType, enum_name

MAX_TAPPED_RECORDS = 128
MAX_RELAYED_BYTES = 1 << 20
READ_SIZE = 1 << 16


@dataclass
class RecordTap:
    """Splits one direction's bytes into TLS records, keeping only their shape."""

    records: list[dict[str, object]] = field(default_factory=list)
    dropped: int = 0
    # Shared by both directions' taps: `seq` orders records across the two
    # legs as the relay saw them (the page draws them in that order).
    order: Iterator[int] = field(default_factory=itertools.count)
    _pending: bytearray = field(default_factory=bytearray)
    _encrypted: bool = False

    def feed(self, data: bytes | bytearray) -> None:
        self._pending += data
        while len(self._pending) >= RECORD_HEADER_LEN:
            length = int.from_bytes(self._pending[3:5], "big")
            end = RECORD_HEADER_LEN + length
            if len(self._pending) < end:
                break
            kind = self._pending[0]
            body = bytes(self._pending[RECORD_HEADER_LEN:end])
            del self._pending[:end]
            self._note(kind, body)

    def _note(self, kind: int, body: bytes) -> None:
        entry: dict[str, object] = {"type": enum_name(ContentType, kind), "length": len(body),
                                    "seq": next(self.order)}
        if kind in (ContentType.application_data, ContentType.change_cipher_spec):
            # TLS 1.2 encrypts what follows ChangeCipherSpec (RFC 5246 §7.1), its
            # Finished a handshake record; TLS 1.3 sends it, if at all, just
            # before its first protected record (RFC 8446 §D.4).
            self._encrypted = True
        elif kind == ContentType.handshake and not self._encrypted:
            # Until keys change, handshake records are cleartext (RFC 8446 §5.1,
            # RFC 5246 §6.2.1); list the message names (4-byte headers: type, u24 length).
            names, at = [], 0
            while at + 4 <= len(body):
                names.append(enum_name(HandshakeType, body[at]).removeprefix("0x"))
                at += 4 + int.from_bytes(body[at + 1 : at + 4], "big")
            entry["messages"] = names
        if len(self.records) < MAX_TAPPED_RECORDS:
            self.records.append(entry)
        else:
            self.dropped += 1


@dataclass
class Leg:
    """One direction of the relay."""

    name: str
    tap: RecordTap = field(default_factory=RecordTap)
    relayed: bytearray = field(default_factory=bytearray)
    total: int = 0

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {"direction": self.name, "bytes": self.total,
                                  "records": self.tap.records}
        if self.tap.dropped:
            out["records_dropped"] = self.tap.dropped
        return out


@dataclass
class RelayResult:
    client_leg_port: int  # our source port toward the piñata's TLS client port
    server_leg_port: int  # our source port toward the piñata's TLS server port
    legs: tuple[Leg, Leg]
    timed_out: bool

    def carried(self, secret: Secret) -> bool:
        """Whether the secret's bytes crossed the relay in the clear."""
        return any(secret.occurs_in(leg.relayed) for leg in self.legs)

    def to_json(self) -> dict[str, object]:
        return {
            "client_leg_source_port": self.client_leg_port,
            "server_leg_source_port": self.server_leg_port,
            "timed_out": self.timed_out,
            "legs": [leg.to_json() for leg in self.legs],
        }


async def _pipe(source: trio.abc.Stream, sink: trio.abc.HalfCloseableStream, leg: Leg) -> None:
    try:
        while True:
            data = await source.receive_some(READ_SIZE)
            if not data:
                break
            leg.total += len(data)
            leg.tap.feed(data)
            if len(leg.relayed) < MAX_RELAYED_BYTES:
                leg.relayed += data[: MAX_RELAYED_BYTES - len(leg.relayed)]
            await sink.send_all(data)
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        pass
    with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
        await sink.send_eof()


def _source_port(stream: SocketTransport) -> int:
    port: int = stream.socket.getsockname()[1]
    return port


async def _announce(stream: SocketTransport) -> None:
    # Our own address is a trusted proxy's: the listener waits for a PROXY
    # header, so each leg names itself as the client.
    source, destination = stream.socket.getsockname(), stream.socket.getpeername()
    await stream.send_all(format_v1((str(source[0]), int(source[1])),
                                    (str(destination[0]), int(destination[1]))))


async def relay(address: str, tls_client_port: int, tls_server_port: int,
                timeout: float, *, proxy_header: bool = False) -> RelayResult:
    """Relay between a connection to the TLS-client port and one to the TLS-server port.

    With `proxy_header`, each leg first sends a PROXY protocol line naming
    itself (for an appliance that counts `address` among its trusted proxies).
    """
    to_client = await connect(address, tls_client_port)
    try:
        to_server = await connect(address, tls_server_port)
    except BaseException:
        await trio.aclose_forcefully(to_client)
        raise
    order = itertools.count()
    legs = (Leg("piñata client -> piñata server", RecordTap(order=order)),
            Leg("piñata server -> piñata client", RecordTap(order=order)))
    try:
        with trio.move_on_after(timeout) as deadline:
            if proxy_header:
                await _announce(to_client)
                await _announce(to_server)
            async with trio.open_nursery() as nursery:
                nursery.start_soon(_pipe, to_client, to_server, legs[0])
                nursery.start_soon(_pipe, to_server, to_client, legs[1])
        return RelayResult(
            client_leg_port=_source_port(to_client),
            server_leg_port=_source_port(to_server),
            legs=legs,
            timed_out=deadline.cancelled_caught,
        )
    finally:
        await trio.aclose_forcefully(to_client)
        await trio.aclose_forcefully(to_server)
