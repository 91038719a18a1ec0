"""TLSStream's data path (issue 18): bulk sends sealed into the engine's
reused buffer, and received records handed out whole or in the pieces the
reader asks for, byte-exact either way."""

from __future__ import annotations

import os

import pytest
import trio

from pinata.appliance.tls_stream import SEND_SLICE, TLSStream
from tests.appliance.test_tls_stream import pair


async def _read(stream: TLSStream, sizes: list[int | None], total: int) -> bytes:
    data = bytearray()
    turn = 0
    while len(data) < total:
        chunk = await stream.receive_some(sizes[turn % len(sizes)])
        assert chunk, "EOF before everything arrived"
        size = sizes[turn % len(sizes)]
        assert size is None or len(chunk) <= max(1, size)
        data += chunk
        turn += 1
    return bytes(data)


@pytest.mark.parametrize("sizes", [[None], [1, 7, 16383, None], [0, 40_000], [16384]])
def test_what_is_sent_in_bulk_is_received_whole_at_any_read_size(
    sizes: list[int | None],
) -> None:
    # Three slices and a ragged end, sent twice (the second through the same
    # reused buffer), and a last small message.
    big = os.urandom(3 * SEND_SLICE + 12_345)
    messages = [big, big[::-1], b"tail"]
    total = sum(len(m) for m in messages)

    async def main() -> None:
        server, client = pair()
        got: dict[str, bytes] = {}

        async def server_side() -> None:
            await server.do_handshake()
            for message in messages:
                await server.send_all(message)

        async def client_side() -> None:
            await client.do_handshake()
            got["data"] = await _read(client, sizes, total)

        with trio.fail_after(20):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(server_side)
                nursery.start_soon(client_side)
        assert got["data"] == b"".join(messages)

    trio.run(main)


def test_a_caller_buffer_reused_after_send_all_does_not_change_what_was_sent() -> None:
    # send_all returns only once its bytes are written: the caller may then
    # overwrite its buffer, and the engine its own.
    async def main() -> None:
        server, client = pair()
        buffer = bytearray(os.urandom(SEND_SLICE + 100))
        first = bytes(buffer)
        got: dict[str, bytes] = {}

        async def server_side() -> None:
            await server.do_handshake()
            await server.send_all(buffer)
            buffer[:] = bytes(len(buffer))
            await server.send_all(buffer)

        async def client_side() -> None:
            await client.do_handshake()
            got["data"] = await _read(client, [None], 2 * len(first))

        with trio.fail_after(20):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(server_side)
                nursery.start_soon(client_side)
        assert got["data"] == first + bytes(len(first))

    trio.run(main)
