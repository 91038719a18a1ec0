"""The trio adapter over our engine: both ends ours, over an in-memory stream pair."""

from __future__ import annotations

import os
from datetime import UTC, datetime

import pytest
import trio
import trio.testing

from pinata.appliance.tls_stream import SEND_SLICE, TLSFailed, TLSStream
from pinata.tls.config import ClientConfig, Credentials, ServerConfig
from pinata.tls.connection import ClientConnection, ServerConnection
from pinata.tls.errors import AlertDescription
from pinata.x509 import Purpose, TrustAnchor, authenticator
from tests.appliance.harness import TOY

ANCHOR = TrustAnchor.from_der(TOY.anchor.der)
SERVER = Credentials(chain=(TOY.server.der,), private_key=TOY.server.private_key)
CLIENT = Credentials(chain=(TOY.client.der,), private_key=TOY.client.private_key)


def pair(client_credentials: Credentials | None = CLIENT) -> tuple[TLSStream, TLSStream]:
    now = datetime.now(UTC)
    server_config = ServerConfig(credentials=SERVER,
                                 authenticate_client=authenticator(ANCHOR, Purpose.CLIENT_AUTH))
    client_config = ClientConfig(authenticate_server=authenticator(ANCHOR, Purpose.SERVER_AUTH),
                                 credentials=client_credentials)
    left, right = trio.testing.memory_stream_pair()
    return (
        TLSStream(left, ServerConnection(server_config, random=os.urandom, now=now)),
        TLSStream(right, ClientConnection(client_config, random=os.urandom, now=now)),
    )


async def receive_all(stream: TLSStream) -> bytes:
    data = b""
    while chunk := await stream.receive_some():
        data += chunk
    return data


def test_handshake_data_both_ways_and_close() -> None:
    big = os.urandom(100_000)  # several records in one send_all

    async def main() -> None:
        server, client = pair()
        received: dict[str, bytes] = {}

        async def server_side() -> None:
            done = await server.do_handshake()
            assert done.peer is not None
            await server.send_all(big)
            received["server"] = await server.receive_some(10)
            await server.aclose()

        async def client_side() -> None:
            await client.do_handshake()
            await client.send_all(b"hello")
            received["client"] = await receive_all(client)
            await client.aclose()

        with trio.fail_after(20):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(server_side)
                nursery.start_soon(client_side)
        assert received == {"server": b"hello", "client": big}
        assert client.peer_closed is not None and client.peer_closed.clean

    trio.run(main)


def test_failure_raises_tls_failed_on_both_sides() -> None:
    async def main() -> None:
        server, client = pair(client_credentials=None)
        failures: dict[str, TLSFailed] = {}

        async def side(name: str, stream: TLSStream) -> None:
            try:
                await stream.do_handshake()
                await receive_all(stream)
            except TLSFailed as exc:
                failures[name] = exc
            finally:
                await stream.aclose()

        with trio.fail_after(20):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(side, "server", server)
                nursery.start_soon(side, "client", client)
        sent, got = failures["server"].failure, failures["client"].failure
        assert sent.sent and sent.alert == AlertDescription.certificate_required
        assert not got.sent and got.alert == AlertDescription.certificate_required

    trio.run(main)


def test_eof_during_handshake_is_a_failure_without_alert() -> None:
    async def main() -> None:
        server, client = pair()
        await client.transport.aclose()
        with pytest.raises(TLSFailed) as failed:
            await server.do_handshake()
        assert failed.value.failure.sent is False

    trio.run(main)


def test_a_second_task_driving_the_same_handshake_is_refused() -> None:
    async def main() -> None:
        server, client = pair()
        refused: list[trio.BusyResourceError] = []
        with trio.fail_after(20):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(server.do_handshake)
                # The server now waits for a ClientHello that nobody sent yet.
                await trio.testing.wait_all_tasks_blocked()
                try:
                    await server.receive_some()
                except trio.BusyResourceError as exc:
                    refused.append(exc)
                nursery.start_soon(client.do_handshake)
        assert len(refused) == 1 and server.handshake is not None

    trio.run(main)


def test_one_sender_and_one_receiver_at_once_after_the_handshake() -> None:
    # trio's stream contract: a sender and a receiver may run together; a
    # receiver's flight must never interleave with a sender's records.
    chunks = [os.urandom(40_000) for _ in range(5)]

    async def main() -> None:
        server, client = pair()
        got: dict[str, bytes] = {}
        with trio.fail_after(20):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(server.do_handshake)
                nursery.start_soon(client.do_handshake)

            async def send_many(stream: TLSStream) -> None:
                for chunk in chunks:
                    await stream.send_all(chunk)
                await stream.transport.send_eof()  # type: ignore[attr-defined]

            async def read(name: str, stream: TLSStream) -> None:
                data = b""
                while len(data) < sum(map(len, chunks)):
                    data += await stream.receive_some()
                got[name] = data

            async with trio.open_nursery() as nursery:
                nursery.start_soon(send_many, server)
                nursery.start_soon(read, "server", server)
                nursery.start_soon(send_many, client)
                nursery.start_soon(read, "client", client)
        assert got == {"server": b"".join(chunks), "client": b"".join(chunks)}

    trio.run(main)


class _CountingWrites(trio.abc.Stream):
    """A stream that counts the writes made through it."""

    def __init__(self, inner: trio.abc.Stream) -> None:
        self.inner = inner
        self.writes = 0

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        self.writes += 1
        await self.inner.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        await self.inner.wait_send_all_might_not_block()

    async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray:
        return await self.inner.receive_some(max_bytes)

    async def aclose(self) -> None:
        await self.inner.aclose()


@pytest.mark.parametrize("size", [0, 5, 300_000])
def test_send_last_writes_the_data_and_close_notify_together(size: int) -> None:
    data = os.urandom(size)  # nothing, one record, several slices

    async def main() -> None:
        server, client = pair()
        counted = _CountingWrites(server.transport)
        server.transport = counted
        received: dict[str, bytes] = {}

        async def server_side() -> None:
            await server.do_handshake()
            before = counted.writes
            await server.send_last(data)
            # One write per slice; the close_notify rides in the last one.
            assert counted.writes - before == max(1, -(-size // SEND_SLICE))

        async def client_side() -> None:
            await client.do_handshake()
            received["client"] = await receive_all(client)

        with trio.fail_after(20):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(server_side)
                nursery.start_soon(client_side)
        assert received == {"client": data}
        # The client read every byte, then our close_notify: a clean close.
        assert client.peer_closed is not None and client.peer_closed.clean

    trio.run(main)
