"""SocketTransport and accept over real loopback TCP: the trio stream contract
(checkpoints, cancellation, EOF, reset, close, one task per direction)."""

from __future__ import annotations

import errno
import os
import socket
import struct
from collections.abc import Awaitable, Callable

import pytest
import trio
import trio.testing

from pinata.appliance.transport import SocketTransport, accept, connect


def _listener() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    sock.setblocking(False)
    return sock


Body = Callable[[SocketTransport, socket.socket, tuple[str, int]], Awaitable[object]]


def _with_connection(body: Body) -> object:
    """Run `body` with our accepted transport, the peer's blocking socket, and
    the peer address accept() reported."""

    async def main() -> object:
        listener = _listener()
        peer = socket.create_connection(listener.getsockname(), timeout=5)
        try:
            transport, address = await accept(listener)
            try:
                return await body(transport, peer, address)
            finally:
                await transport.aclose()
        finally:
            peer.close()
            listener.close()

    return trio.run(main)


def test_accept_names_the_peer_and_bytes_flow_both_ways() -> None:
    async def body(ours: SocketTransport, peer: socket.socket,
                   address: tuple[str, int]) -> object:
        assert address == peer.getsockname()
        peer.sendall(b"hello")
        assert await ours.receive_some() == b"hello"
        await ours.send_all(b"world")
        assert peer.recv(100) == b"world"
        peer.shutdown(socket.SHUT_WR)
        assert await ours.receive_some() == b""  # the peer's EOF
        await ours.send_eof()
        assert peer.recv(100) == b""  # ours
        with pytest.raises(trio.ClosedResourceError):
            await ours.send_all(b"after eof")
        return True

    assert _with_connection(body)


def test_a_large_send_waits_for_the_reader() -> None:
    """More than the kernel's buffers hold: send_all waits (wait_writable) until
    the peer has read, and everything arrives in order."""
    payload = bytes(range(256)) * (16 * 1024)  # 4 MiB

    async def body(ours: SocketTransport, peer: socket.socket,
                   address: tuple[str, int]) -> object:
        received = bytearray()

        def read_all() -> None:
            while len(received) < len(payload):
                chunk = peer.recv(1 << 16)
                if not chunk:
                    break
                received.extend(chunk)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(trio.to_thread.run_sync, read_all)
            await ours.send_all(payload)
        return bytes(received) == payload

    assert _with_connection(body)


def test_a_reset_is_a_broken_stream() -> None:
    async def body(ours: SocketTransport, peer: socket.socket,
                   address: tuple[str, int]) -> object:
        # SO_LINGER 0: close sends a reset instead of a FIN.
        peer.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        peer.close()
        with pytest.raises(trio.BrokenResourceError):
            await ours.receive_some()
        return True

    assert _with_connection(body)


def test_ready_bytes_still_make_a_checkpoint() -> None:
    """As trio's socket methods: a cancelled scope cancels a receive whose bytes
    are already there, and a receive that completes at once still yields, so a
    peer that always has bytes ready cannot starve the other tasks."""

    async def body(ours: SocketTransport, peer: socket.socket,
                   address: tuple[str, int]) -> object:
        peer.sendall(b"x" * 1000)
        await trio.sleep(0.05)  # the bytes are in our kernel buffer now
        with trio.CancelScope() as scope:
            scope.cancel()
            await ours.receive_some(1)
        assert scope.cancelled_caught
        ran: list[int] = []

        async def other() -> None:
            ran.append(1)

        receives = 0
        async with trio.open_nursery() as nursery:
            nursery.start_soon(other)
            while not ran and receives < 10:
                await ours.receive_some(1)  # ready each time, never waits
                receives += 1
        return receives < 10

    assert _with_connection(body)


def test_a_wait_is_cancellable_and_one_task_per_direction() -> None:
    async def body(ours: SocketTransport, peer: socket.socket,
                   address: tuple[str, int]) -> object:
        with trio.move_on_after(0.05) as scope:
            await ours.receive_some()
        assert scope.cancelled_caught
        async with trio.open_nursery() as nursery:
            nursery.start_soon(ours.receive_some)
            await trio.testing.wait_all_tasks_blocked()
            with pytest.raises(trio.BusyResourceError):
                await ours.receive_some()
            peer.sendall(b"wake")
        return True

    assert _with_connection(body)


def test_closing_wakes_a_waiting_receiver() -> None:
    async def body(ours: SocketTransport, peer: socket.socket,
                   address: tuple[str, int]) -> object:
        async def receive() -> None:
            with pytest.raises(trio.ClosedResourceError):
                await ours.receive_some()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(receive)
            await trio.testing.wait_all_tasks_blocked()
            await ours.aclose()
        with pytest.raises(trio.ClosedResourceError):
            await ours.receive_some()
        with pytest.raises(trio.ClosedResourceError):
            await ours.send_all(b"x")
        return True

    assert _with_connection(body)


# connect: our outbound connections (connect-back, self-talk) on the same transport.


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_connect_reaches_a_listener_and_bytes_flow_both_ways() -> None:
    async def main() -> None:
        listener = _listener()
        try:
            ours = await connect("127.0.0.1", listener.getsockname()[1])
            peer, address = listener.accept()
            with peer:
                assert address == ours.socket.getsockname()
                assert ours.socket.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
                await ours.send_all(b"hello")
                peer.setblocking(True)
                assert peer.recv(100) == b"hello"
                peer.sendall(b"world")
                assert await ours.receive_some() == b"world"
                await ours.aclose()
                assert peer.recv(100) == b""
        finally:
            listener.close()

    trio.run(main)


def test_connect_refused_is_an_oserror_and_leaves_no_socket() -> None:
    placeholder = _listener()
    port = placeholder.getsockname()[1]
    placeholder.close()  # nothing listens on `port` now
    before = _open_fds()
    with pytest.raises(OSError) as caught:
        trio.run(connect, "127.0.0.1", port)
    assert caught.value.errno == errno.ECONNREFUSED
    assert _open_fds() == before


def test_connect_takes_numeric_addresses_only() -> None:
    """No resolver is consulted: a name is refused before any socket exists."""
    with pytest.raises(socket.gaierror):
        trio.run(connect, "localhost", 9)


def test_connect_is_a_checkpoint_and_a_cancelled_wait_closes_its_socket() -> None:
    """A cancelled scope stops connect before its socket exists; a connect left
    in progress (the listener's accept queue is full, so its SYNs are dropped)
    is cancellable, and its socket is closed."""

    async def main() -> bool:
        before = _open_fds()
        with trio.CancelScope() as scope:
            scope.cancel()
            await connect("127.0.0.1", 9)
        assert scope.cancelled_caught and _open_fds() == before
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        held: list[SocketTransport] = []
        try:
            for _ in range(8):  # the queue of backlog 0 holds one or two
                opened = _open_fds()
                with trio.move_on_after(0.3) as waiting:
                    held.append(await connect("127.0.0.1", listener.getsockname()[1]))
                if waiting.cancelled_caught:
                    return _open_fds() == opened
            return False
        finally:
            for transport in held:
                transport.close()
            listener.close()

    assert trio.run(main)
