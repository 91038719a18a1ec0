"""Connections relayed by a trusted proxy (HAProxy's PROXY protocol).

A listener treats a connection by where it comes from, never by what it
says (spec §5: guessing whether a header is present would let any client
choose its own address):

- from an address in `trusted_proxies`, the connection must begin with a
  valid PROXY header within `HEADER_TIMEOUT`; the client it names is then
  the peer for admission, logs, counters and the connect-back target. A
  missing, late or malformed header, or one that names no IP client, closes
  the connection, counted as "PROXY header refused"; a LOCAL command (the
  proxy's health check) is answered by closing, counted as "health check";
- from anywhere else, the bytes are the protocol's own: a PROXY header
  fails as TLS or HTTP would fail on it, and is counted in the limit
  `untrusted_proxy_header` so an operator who forgot `trusted_proxies` sees
  why every client fails.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

import trio

from pinata.appliance.journal import ConnectionRecord
from pinata.appliance.outcome import Outcome
from pinata.appliance.proxy_protocol import (
    MAX_V2_HEADER,
    V1_PREFIX,
    V2_SIGNATURE,
    Endpoint,
    ProxiedConnection,
    ProxyHeaderError,
    ProxyLocal,
    parse_proxy_header,
)
from pinata.appliance.state import ApplianceState

# Spec §2: "a short timeout ... (at least 3 seconds to cover a TCP retransmit)".
HEADER_TIMEOUT = 3.0
UNTRUSTED_PROXY_HEADER = "untrusted_proxy_header"
PROXY_HEADERS_PENDING = "proxy_headers_pending"

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def trusts(networks: Sequence[Network], address: str) -> bool:
    """Whether `address` (a peer's numeric address) lies in one of `networks`."""
    if not networks:
        return False
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # a dual-stack listener sees IPv4 peers as ::ffff:a.b.c.d
    return any(ip in network for network in networks)


class _Wrapper(trio.abc.HalfCloseableStream):
    """A socket stream seen through a wrapper that changes only what is read.

    Half-closable like the socket under it: the TLS handlers send their last
    records, half-close and drain the peer before closing, and a wrapper
    without `send_eof` would turn that into an immediate close, whose reset
    can destroy the records still in flight.
    """

    def __init__(self, inner: trio.abc.HalfCloseableStream) -> None:
        self.inner = inner

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        await self.inner.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        await self.inner.wait_send_all_might_not_block()

    async def send_eof(self) -> None:
        await self.inner.send_eof()

    async def aclose(self) -> None:
        await self.inner.aclose()


class ReplayStream(_Wrapper):
    """A stream with bytes already read from it put back in front."""

    def __init__(self, inner: trio.abc.HalfCloseableStream, pending: bytes) -> None:
        super().__init__(inner)
        self._pending = pending

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        if not self._pending:
            return bytes(await self.inner.receive_some(max_bytes))
        await trio.lowlevel.checkpoint()
        size = len(self._pending) if max_bytes is None else max_bytes
        data, self._pending = self._pending[:size], self._pending[size:]
        return data


def began_with_proxy_header(head: bytes) -> bool:
    """Whether `head`, the first bytes an untrusted peer sent (`GuardedStream.head`,
    at least as long as the v2 signature when the peer sent that many), begins
    with either PROXY signature: counted in `UNTRUSTED_PROXY_HEADER` when its
    connection ends. Nothing is changed or withheld: the protocol handler
    has failed on those bytes. Judged from bytes the guard keeps anyway, not
    by a wrapper around the socket: one object and one frame per read fewer
    (issue 18)."""
    return head.startswith(V1_PREFIX) or head.startswith(V2_SIGNATURE)


async def _read_header(stream: trio.abc.Stream) -> tuple[ProxiedConnection | ProxyLocal, bytes]:
    """The header and the client's bytes read after it; raises ProxyHeaderError,
    trio.TooSlowError, _NoClient, or _ClosedEarly when the proxy closes first."""
    received = b""
    with trio.fail_after(HEADER_TIMEOUT):
        while True:
            # parse_proxy_header refuses before the buffer passes its bounds,
            # so `received` stays under twice MAX_V2_HEADER.
            header = parse_proxy_header(received)
            if header is not None:
                break
            try:
                chunk = await stream.receive_some(MAX_V2_HEADER)
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
                chunk = b""
            if not chunk:
                raise _ClosedEarly(not received)
            received += chunk
    if not isinstance(header, ProxiedConnection | ProxyLocal):
        raise _NoClient
    return header, received[header.length:]


class _NoClient(Exception):
    """PROXY UNKNOWN, AF_UNSPEC or AF_UNIX: a valid header naming no IP client."""


class _ClosedEarly(Exception):
    """The proxy closed (or reset) before a whole header; `silent` if before any byte."""

    def __init__(self, silent: bool) -> None:
        super().__init__()
        self.silent = silent


def _refuse(state: ApplianceState, listener: str, proxy: Endpoint, started: float,
            outcome: Outcome, detail: str) -> None:
    record = ConnectionRecord(listener, state.bound[listener][1], proxy, state.now())
    record.finish(outcome, detail)
    record.duration = trio.current_time() - started
    state.counters.opened(listener)
    state.counters.finished(listener, record.stat_group)
    state.journal.write(record)


async def receive_proxy_header(
    state: ApplianceState, listener: str, stream: trio.abc.HalfCloseableStream, proxy: Endpoint
) -> tuple[trio.abc.HalfCloseableStream, Endpoint] | None:
    """Read the header a trusted proxy starts its connection with.

    Takes the accepted stream and the proxy's own endpoint. Returns the
    stream positioned at the client's first byte and the client's endpoint;
    or None once the connection has been refused (logged and counted; the
    caller closes it). Never raises for anything the proxy sends.
    """
    started = trio.current_time()
    limits = state.settings.limits
    if state.proxy_headers_pending >= limits.max_connections:
        state.counters.limit_hit(PROXY_HEADERS_PENDING)
        _refuse(state, listener, proxy, started, Outcome.limit, PROXY_HEADERS_PENDING)
        return None
    state.proxy_headers_pending += 1
    try:
        header, rest = await _read_header(stream)
    except ProxyHeaderError as exc:
        detail = f"PROXY header: {exc.reason.name}"
    except trio.TooSlowError:
        detail = f"PROXY header: none within {HEADER_TIMEOUT:g} s"
    except _ClosedEarly as exc:
        if exc.silent:
            # HAProxy's layer-4 check connects, may send LOCAL, and resets at
            # once: a close before any byte is that check, not an error.
            _refuse(state, listener, proxy, started, Outcome.health_check, "closed before a byte")
            return None
        detail = "PROXY header: closed before a complete header"
    except _NoClient:
        detail = "PROXY header: names no IP client (UNKNOWN, AF_UNSPEC or AF_UNIX)"
    else:
        if isinstance(header, ProxyLocal):
            # §2.2: LOCAL is the proxy's own connection; a health check needs
            # no more than the accept it already got.
            _refuse(state, listener, proxy, started, Outcome.health_check, "PROXY LOCAL")
            return None
        return (ReplayStream(stream, rest) if rest else stream), header.source
    finally:
        state.proxy_headers_pending -= 1
    _refuse(state, listener, proxy, started, Outcome.proxy_refused, detail)
    return None
