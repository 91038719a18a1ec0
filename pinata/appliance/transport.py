"""TCP connections as trio streams, a system call first and a wait only if it would block.

`trio.SocketStream` spends, around every send and receive, an async context
manager (`_try_sync`), two conflict detectors, an error-translating context
manager and the socket wrapper's indirections, and every stalled connection
holds the stream and the socket wrapper with their dicts (issue 18; `pinata
bench handshake` runs the no-TLS floor on both, side by side).
`SocketTransport` keeps the same contract on a plain non-blocking socket:

- every operation is a checkpoint, as trio's socket methods are: it raises
  `Cancelled` first if its scope is cancelled, and one that completes without
  waiting still yields once (`cancel_shielded_checkpoint`), so a connection
  whose peer always has bytes ready cannot starve the others;
- when the call would block it waits with `wait_readable`/`wait_writable`,
  cancellable as trio's own waits are;
- errors become `trio.BrokenResourceError` (a reset, a broken pipe) or
  `trio.ClosedResourceError` (our own close, a send after `send_eof`);
- one task at a time sends and one receives (`trio.BusyResourceError`).

Both directions use it: `accept` takes the connections peers open, `connect`
opens ours (the connect-back, self-talk), so one stream type, one error
mapping and one set of socket options serve every TCP connection.
"""

from __future__ import annotations

import errno
import os
import socket

import trio
from trio.lowlevel import (
    cancel_shielded_checkpoint,
    checkpoint,
    checkpoint_if_cancelled,
    notify_closing,
    wait_readable,
    wait_writable,
)

# trio's own default for a read with no size.
DEFAULT_RECEIVE_SIZE = 65536
# The errors that mean the socket is ours and closed, not the peer's doing.
_CLOSED = frozenset({errno.EBADF, errno.ENOTSOCK})
# As trio.SocketStream: no Nagle delay (a flight is written whole, once), and
# wait_writable returns while at most 16 KiB wait unsent in the kernel.
NOTSENT_LOWAT = 2**14


def _stream_error(exc: OSError) -> trio.BrokenResourceError | trio.ClosedResourceError:
    if exc.errno in _CLOSED:
        return trio.ClosedResourceError("this socket was already closed")
    return trio.BrokenResourceError(f"socket connection broken: {exc}")


# The system calls, with "would block" as a value: a coroutine that waits
# inside an `except` block keeps the exception and its traceback alive (about
# 0.8 KiB held by every connection waiting for its peer).
def _received(sock: socket.socket, size: int) -> bytes | None:
    try:
        return sock.recv(size)
    except BlockingIOError:
        return None


def _sent(sock: socket.socket, view: memoryview) -> int:
    try:
        return sock.send(view)
    except BlockingIOError:
        return 0


class SocketTransport(trio.abc.HalfCloseableStream):
    """A connected TCP socket as a half-closable trio stream (see the module).

    Takes ownership of `sock`, which it makes non-blocking.
    """

    # One per connection, held through a stalled handshake: no __dict__.
    __slots__ = ("_receiving", "_sending", "_write_closed", "socket")

    def __init__(self, sock: socket.socket) -> None:
        sock.setblocking(False)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, True)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NOTSENT_LOWAT, NOTSENT_LOWAT)
        except OSError:
            pass  # not TCP (a test's socketpair), or already reset: nothing to tune
        self.socket = sock
        self._sending = False
        self._receiving = False
        self._write_closed = False

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        """Write all of `data`; raises BrokenResourceError, ClosedResourceError."""
        if self._sending:
            raise trio.BusyResourceError("another task is sending on this stream")
        if self._write_closed or self.socket.fileno() == -1:
            raise trio.ClosedResourceError("can't send after send_eof or close")
        await checkpoint_if_cancelled()
        self._sending = True
        waited = False
        try:
            with memoryview(data) as view:
                sent = _sent(self.socket, view)
                while sent < len(view):
                    waited = True
                    await wait_writable(self.socket)
                    sent += _sent(self.socket, view[sent:])
        except OSError as exc:
            raise _stream_error(exc) from exc
        finally:
            self._sending = False
        if not waited:
            await cancel_shielded_checkpoint()

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        """Up to `max_bytes` (65,536 by default), or b"" at the peer's EOF;
        raises BrokenResourceError, ClosedResourceError."""
        size = DEFAULT_RECEIVE_SIZE if max_bytes is None else max_bytes
        if size < 1:
            raise ValueError("max_bytes must be >= 1")
        if self._receiving:
            raise trio.BusyResourceError("another task is receiving on this stream")
        await checkpoint_if_cancelled()
        self._receiving = True
        try:
            data = _received(self.socket, size)
            if data is None:
                while data is None:
                    await wait_readable(self.socket)  # the checkpoint
                    data = _received(self.socket, size)  # None: a spurious wake-up
            else:
                await cancel_shielded_checkpoint()
        except OSError as exc:
            raise _stream_error(exc) from exc
        finally:
            self._receiving = False
        return data

    async def wait_send_all_might_not_block(self) -> None:
        if self.socket.fileno() == -1:
            raise trio.ClosedResourceError
        try:
            await wait_writable(self.socket)
        except OSError as exc:
            raise _stream_error(exc) from exc

    async def send_eof(self) -> None:
        """Half-close: the peer reads EOF once it has read what we sent."""
        await checkpoint()
        if self._write_closed:
            return
        self._write_closed = True
        try:
            self.socket.shutdown(socket.SHUT_WR)
        except OSError as exc:
            raise _stream_error(exc) from exc

    def close(self) -> None:
        """Close now, without the checkpoint `aclose` makes: for the owner of a
        connection whose task ends right after, or refuses it at accept (where
        `trio.aclose_forcefully` cost a cancel scope and two scheduler trips)."""
        if self.socket.fileno() != -1:
            # Wakes any task waiting on the socket with ClosedResourceError.
            notify_closing(self.socket)
            self.socket.close()

    async def aclose(self) -> None:
        self.close()
        await checkpoint()


# accept() errors that mean one connection died before we took it, not that
# the listener is broken (as trio.SocketListener ignores them; Linux reports a
# pending connection's own error from accept()).
_DIED_BEFORE_ACCEPT = frozenset(
    getattr(errno, name) for name in (
        "EPERM", "ECONNABORTED", "EPROTO", "ENETDOWN", "ENOPROTOOPT", "EHOSTDOWN", "ENONET",
        "EHOSTUNREACH", "EOPNOTSUPP", "ENETUNREACH", "ENOSR", "ESOCKTNOSUPPORT",
        "EPROTONOSUPPORT", "ETIMEDOUT", "ECONNRESET")
    if hasattr(errno, name))


def _accepted(listener: socket.socket) -> tuple[socket.socket, tuple[str, int]] | None:
    """A connection, or None if none is pending (or it died before we took it)."""
    try:
        sock, address = listener.accept()
    except BlockingIOError:
        return None
    except OSError as exc:
        if exc.errno in _DIED_BEFORE_ACCEPT:
            return None
        raise
    return sock, address


async def accept(listener: socket.socket) -> tuple[SocketTransport, tuple[str, int]]:
    """The next connection on the non-blocking `listener`, and its peer's
    (address, port) as accept() gave them (no getpeername call). A checkpoint
    like every operation here. Raises OSError for what is not one connection's
    own failure (EMFILE, ENFILE, ENOBUFS, ENOMEM: the caller backs off)."""
    await checkpoint_if_cancelled()
    waited = False
    while (accepted := _accepted(listener)) is None:
        waited = True
        await wait_readable(listener)
    sock, address = accepted
    try:
        transport = SocketTransport(sock)
    except BaseException:
        sock.close()
        raise
    if not waited:
        await cancel_shielded_checkpoint()
    return transport, (str(address[0]), int(address[1]))


def _numeric(address: str, port: int) -> tuple[int, tuple[object, ...]]:
    """The family and socket address of a numeric `address`: AI_NUMERICHOST
    consults no resolver, hosts file or gai.conf (only numeric addresses are
    ever dialled: an initiator's, or our own). Raises socket.gaierror (an
    OSError) for anything else."""
    family, _, _, _, sockaddr = socket.getaddrinfo(
        address, port, type=socket.SOCK_STREAM,
        flags=socket.AI_NUMERICHOST | socket.AI_NUMERICSERV)[0]
    return family, sockaddr


async def connect(address: str, port: int) -> SocketTransport:
    """A TCP connection to the numeric `address` at `port`, as a SocketTransport.

    A checkpoint like every operation here: a non-blocking connect(2), and if
    it is in progress (EINPROGRESS) a cancellable wait until the socket is
    writable, then its result (SO_ERROR), as trio's own connect. Cancelled or
    failed, the socket is closed. Raises OSError (refused, unreachable, a
    name rather than an address)."""
    family, sockaddr = _numeric(address, port)
    await checkpoint_if_cancelled()
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setblocking(False)
        error = sock.connect_ex(sockaddr)
        if error == errno.EINPROGRESS:
            await wait_writable(sock)
            error = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        else:
            await cancel_shielded_checkpoint()
        if error:
            raise OSError(error, os.strerror(error), f"{address}:{port}")
        return SocketTransport(sock)
    except BaseException:
        sock.close()
        raise
