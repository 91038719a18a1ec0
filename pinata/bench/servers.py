"""The servers a handshake or throughput benchmark compares, each run alone in
a worker process so that its CPU time can be read from outside.

`ours` and `ssl` share everything but the TLS layer: the same trio accept
loop, the same request handling, TLS 1.3 only, client certificate required
and validated against the one anchor, no session tickets. tlslite-ng has no
trio adapter; it runs a blocking loop, one connection at a time.
"""

from __future__ import annotations

import contextlib
import cProfile
import os
import signal
import socket
import ssl
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

import trio

from pinata.appliance.settings import ApplianceSettings
from pinata.appliance.tls_stream import TLSFailed, TLSStream
from pinata.bench import wire
from pinata.bench.creds import read_pki
from pinata.tls.config import DEFAULT_CIPHER_SUITES, ServerConfig
from pinata.tls.connection import ServerConnection
from pinata.tls.constants import CipherSuite
from pinata.x509 import Purpose, TrustAnchor, authenticator

Handler = Callable[[trio.abc.HalfCloseableStream], Awaitable[None]]
_EXPECTED = (TLSFailed, trio.BrokenResourceError, trio.ClosedResourceError, OSError,
             ssl.SSLError, ValueError)

SUITES: dict[str, CipherSuite] = {
    "aes128gcm": CipherSuite.TLS_AES_128_GCM_SHA256,
    "chacha20": CipherSuite.TLS_CHACHA20_POLY1305_SHA256,
}


async def _read_request(stream: trio.abc.Stream) -> bytes:
    data = bytearray()
    while b"\n" not in data and len(data) <= wire.MAX_REQUEST:
        chunk = await stream.receive_some(wire.MAX_REQUEST)
        if not chunk:
            break
        data += chunk
    return bytes(data).partition(b"\n")[0]


async def _answer(stream: trio.abc.Stream) -> None:
    request = await _read_request(stream)
    size = wire.parse_bulk(request)
    if size is None:
        await stream.send_all(wire.reply_to(request))
        return
    chunk = bytes(wire.BULK_CHUNK)
    while size > 0:
        await stream.send_all(chunk if size >= len(chunk) else chunk[:size])
        size -= len(chunk)


def ours_handler(pki_dir: Path, suite: str | None) -> Handler:
    pki = read_pki(pki_dir)
    config = ServerConfig(
        credentials=pki.server,
        authenticate_client=authenticator(TrustAnchor.from_der(pki.anchor_der),
                                          Purpose.CLIENT_AUTH),
        certificate_authorities=(pki.anchor_subject_der,),
        cipher_suites=(SUITES[suite],) if suite else DEFAULT_CIPHER_SUITES,
    )

    async def handle(stream: trio.abc.HalfCloseableStream) -> None:
        engine = ServerConnection(config, random=os.urandom, now=datetime.now(UTC))
        tls = TLSStream(stream, engine)
        try:
            with trio.move_on_after(wire.IO_TIMEOUT):
                done = await tls.do_handshake()
                if done.peer is None:  # refuse by default, as the appliance does
                    return
                await _answer(tls)
                await tls.aclose()
        except _EXPECTED:
            pass
        finally:
            await trio.aclose_forcefully(stream)

    return handle


# What the plain `ssl` server sends in the appliance scenario: as many bytes
# as the toy's secret, which itself stays where it is (never in the bench).
SECRET_STAND_IN = b"x" * 64


def ssl_secret_handler(pki_dir: Path) -> Handler:
    """The appliance's port 10000 as a minimal `ssl`-on-trio server: handshake
    (client certificate required), some bytes, close; nothing else."""

    async def send_stand_in(tls: trio.SSLStream[trio.abc.HalfCloseableStream]) -> None:
        await tls.send_all(SECRET_STAND_IN)

    return ssl_handler(pki_dir, send_stand_in)


def plain_handler() -> Handler:
    """No TLS at all: what the trio shell alone costs per connection."""

    async def handle(stream: trio.abc.HalfCloseableStream) -> None:
        try:
            with trio.move_on_after(wire.IO_TIMEOUT):
                await _answer(stream)
        except _EXPECTED:
            pass
        finally:
            await trio.aclose_forcefully(stream)

    return handle


def ssl_server_context(pki_dir: Path, *, tls12: bool = False) -> ssl.SSLContext:
    """Python's ssl as a server configured like ours: TLS 1.3 (and with `tls12`
    TLS 1.2 too, as ours), client certificate required against the same
    anchor, no tickets (we issue none either)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2 if tls12 else ssl.TLSVersion.TLSv1_3
    context.load_cert_chain(pki_dir / "server.pem", pki_dir / "server.key")
    context.load_verify_locations(pki_dir / "anchor.pem")
    context.verify_mode = ssl.CERT_REQUIRED
    context.num_tickets = 0
    return context


SSLAnswer = Callable[[trio.SSLStream[trio.abc.HalfCloseableStream]], Awaitable[None]]


def ssl_handler(pki_dir: Path, answer: SSLAnswer = _answer, *, tls12: bool = False) -> Handler:
    """Python's ssl on trio: handshake, `answer` (the bench protocol by default), close."""
    context = ssl_server_context(pki_dir, tls12=tls12)

    async def handle(stream: trio.abc.HalfCloseableStream) -> None:
        tls = trio.SSLStream(stream, context, server_side=True)
        try:
            with trio.move_on_after(wire.IO_TIMEOUT):
                await tls.do_handshake()
                await answer(tls)
                await tls.aclose()
        except _EXPECTED:
            pass
        finally:
            await trio.aclose_forcefully(stream)

    return handle


class _Profiling:
    """cProfile on CPU time (not wall time: on a shared machine a descheduled
    function would be charged for the wait), restarted on SIGUSR1 so that the
    parent can leave start-up and warm-up out."""

    def __init__(self) -> None:
        self.profiler = cProfile.Profile(time.process_time)

    def restart(self) -> None:
        self.profiler.disable()
        self.profiler = cProfile.Profile(time.process_time)
        self.profiler.enable()


async def _serve(handler: Handler, profiling: _Profiling | None,
                 appliance_transport: bool = False) -> None:
    if appliance_transport:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.bind(("127.0.0.1", 0))
        listener.listen(1024)
        listener.setblocking(False)
        port = listener.getsockname()[1]
    else:
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1", backlog=1024)
        port = listeners[0].socket.getsockname()[1]
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT, signal.SIGUSR1) as signals:
        async with trio.open_nursery() as nursery:
            if appliance_transport:
                nursery.start_soon(_accept_on_transport, handler, listener, nursery)
            else:
                nursery.start_soon(trio.serve_listeners, handler, listeners)
            wire.announce({"port": port, "pid": os.getpid()})
            async for signum in signals:
                if signum == signal.SIGUSR1:
                    if profiling is not None:
                        profiling.restart()
                    continue
                nursery.cancel_scope.cancel()
                break


async def _accept_on_transport(handler: Handler, listener: socket.socket,
                               nursery: trio.Nursery) -> None:
    """The appliance's own accept and stream (`pinata.appliance.transport`)
    instead of trio's SocketListener and SocketStream; the rest is the same."""
    from pinata.appliance.transport import accept

    while True:
        stream, _ = await accept(listener)
        nursery.start_soon(handler, stream)


def run_trio_server(handler: Handler, profile: Path | None = None, *,
                    appliance_transport: bool = False) -> None:
    """Serve until SIGTERM; with `profile`, write cProfile stats there at the
    end; with `appliance_transport`, on the appliance's accept and stream
    (`SocketTransport`) rather than trio's SocketListener and SocketStream."""
    profiling = _Profiling() if profile is not None else None
    if profiling is not None:
        profiling.profiler.enable()
    try:
        trio.run(_serve, handler, profiling, appliance_transport)
    finally:
        if profiling is not None and profile is not None:
            profiling.profiler.disable()
            profiling.profiler.dump_stats(str(profile))


def serve_until_signalled(settings: ApplianceSettings, write_line: Callable[[str], None],
                          on_usr1: Callable[[], None] | None = None) -> None:
    """Run the appliance until SIGTERM or SIGINT; SIGUSR1 calls `on_usr1` (a
    benchmark's mark between its warm-up and its measured phase)."""
    from pinata.appliance import serve

    async def until_signalled() -> None:
        with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT, signal.SIGUSR1) as signals:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(lambda: serve(settings, write_line=write_line))
                async for signum in signals:
                    if signum == signal.SIGUSR1:
                        if on_usr1 is not None:
                            on_usr1()
                        continue
                    nursery.cancel_scope.cancel()
                    break

    trio.run(until_signalled)


def run_appliance_server(profile: Path | None = None, validation_threads: int | None = None
                         ) -> None:
    """The toy appliance as `pinata toy` runs it (validator, guard, journal,
    counters, trace), on ephemeral ports; its port 10000 is announced as the
    port. Its log lines go to /dev/null, as fast as a terminal never is."""
    import json
    from dataclasses import replace

    from pinata.appliance import toy_settings
    from pinata.appliance.settings import Ports

    toy = toy_settings()
    settings = replace(toy, ports=Ports(tls_server=0, connect_back=0, tls_client=0, http=0,
                                        https=0), selftalk_interval=0.0)
    if validation_threads is not None:
        settings = replace(settings, budgets=replace(toy.budgets,
                                                     validation_threads=validation_threads))
    profiling = _Profiling() if profile is not None else None
    sink = open(os.devnull, "w")  # noqa: SIM115 -- lives as long as the process

    def write_line(line: str) -> None:
        if line.startswith('{"listening"'):
            port = json.loads(line)["listening"]["tls_server"]["port"]
            wire.announce({"port": port, "pid": os.getpid()})
        else:
            sink.write(line + "\n")

    if profiling is not None:
        profiling.profiler.enable()
    try:
        serve_until_signalled(settings, write_line,
                              profiling.restart if profiling is not None else None)
    finally:
        if profiling is not None and profile is not None:
            profiling.profiler.disable()
            profiling.profiler.dump_stats(str(profile))


def run_tlslite_server(pki_dir: Path) -> None:
    """tlslite-ng, TLS 1.3, client certificate required, serving until killed.

    tlslite checks the client's CertificateVerify but builds no path to an
    anchor: it does less than the other servers, which flatters it.
    """
    from tlslite import api as tlslite  # type: ignore[import-untyped]

    chain = tlslite.X509CertChain()
    chain.parsePemList((pki_dir / "server.pem").read_text())
    key = tlslite.parsePEMKey((pki_dir / "server.key").read_text(), private=True)
    settings = tlslite.HandshakeSettings()
    settings.minVersion = settings.maxVersion = (3, 4)
    settings.cipherNames = ["aes128gcm", "chacha20-poly1305", "aes256gcm"]
    settings.keyShares = ["x25519"]
    # RFC 8879 compression is not something the other servers do either.
    settings.certificate_compression_send = []
    settings.certificate_compression_receive = []
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(1024)
    wire.announce({"port": listener.getsockname()[1], "pid": os.getpid()})
    while True:
        raw, _ = listener.accept()
        raw.settimeout(wire.IO_TIMEOUT)
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        connection = tlslite.TLSConnection(raw)
        try:
            connection.handshakeServer(certChain=chain, privateKey=key, reqCert=True,
                                       settings=settings)
            request = bytearray()
            while b"\n" not in request and len(request) <= wire.MAX_REQUEST:
                chunk = connection.read(max=wire.MAX_REQUEST)
                if not chunk:
                    break
                request += chunk
            connection.write(wire.reply_to(bytes(request).partition(b"\n")[0]))
            connection.close()
        except Exception:  # a benchmark peer: failures are counted on the client side
            pass
        finally:
            with contextlib.suppress(OSError):
                raw.close()
