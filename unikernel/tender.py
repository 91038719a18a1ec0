"""The tender's side of the filter: who the guest may dial, and the calls it may not make.

Seccomp sees a call's arguments as numbers, never the address a pointer
points to, and Landlock's network rules know ports, not addresses. So the
filter hands two calls to the tender (`unikernel.notify`):

- `accept` on the connect-back listener: the tender accepts, notes the
  initiator's address, and installs the connection in the guest. Each
  accepted connection licenses one dial of that address.
- `connect`: the tender reads the address from the guest's memory and
  connects the guest's socket itself, with the bytes it checked, only for
  loopback (or our listener's own address) at one of our own ports
  (self-talk), or for a licensed initiator at the manifest's connect-back
  port. Anything else fails with EACCES, as Landlock's refusals do.

Every other call the filter hands over is one off the list: the tender kills
the guest and names it.
"""

from __future__ import annotations

import collections
import errno
import ipaddress
import os
import select
import signal
import socket
import struct
import threading
from dataclasses import dataclass, field

from unikernel import notify, seccomp

# Licences kept for initiators the appliance has not dialled back (say, over its rate).
MAX_LICENCES = 1024
MAX_SOCKADDR = 128
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def parse_sockaddr(raw: bytes) -> tuple[IPAddress, int] | None:
    """(address, port) of a sockaddr_in or sockaddr_in6, v4-mapped IPv6 as IPv4; None for
    any other family or a short buffer."""
    if len(raw) < 2:
        return None
    family = struct.unpack_from("=H", raw)[0]
    if family == socket.AF_INET and len(raw) >= 8:
        port = struct.unpack_from("!H", raw, 2)[0]
        return ipaddress.IPv4Address(raw[4:8]), port
    if family == socket.AF_INET6 and len(raw) >= 24:
        port = struct.unpack_from("!H", raw, 2)[0]
        return plain(ipaddress.IPv6Address(raw[8:24])), port
    return None


def plain(address: IPAddress) -> IPAddress:
    """A v4-mapped IPv6 address as the IPv4 address it is."""
    mapped = address.ipv4_mapped if isinstance(address, ipaddress.IPv6Address) else None
    return mapped or address


def sockaddr_of(address: tuple[str, int] | tuple[str, int, int, int]) -> bytes:
    """The struct sockaddr for a Python socket address (what accept writes back)."""
    host = ipaddress.ip_address(address[0])
    if isinstance(host, ipaddress.IPv4Address):
        return struct.pack("=H", socket.AF_INET) + struct.pack("!H", address[1]) + \
            host.packed + bytes(8)
    flowinfo, scope = (address[2], address[3]) if len(address) == 4 else (0, 0)
    return (struct.pack("=H", socket.AF_INET6) + struct.pack("!HI", address[1], flowinfo)
            + host.packed + struct.pack("=I", scope))


@dataclass
class Dialing:
    """Where the guest may connect: the rule the tender applies to each connect(2)."""

    connect_back_port: int
    # Our own ports self-talk dials, on loopback only; empty when self-talk is off.
    selftalk_ports: frozenset[int]
    # Our listeners' own addresses when not loopback or the wildcard: the kernel
    # delivers a dial to them locally, and self-talk can reach them no other way.
    own_addresses: frozenset[IPAddress] = frozenset()
    licences: collections.deque[IPAddress] = field(
        default_factory=lambda: collections.deque(maxlen=MAX_LICENCES)
    )

    def initiated(self, address: IPAddress) -> None:
        """An accepted connect-back: that address may be dialled once."""
        self.licences.append(address)

    def check(self, target: tuple[IPAddress, int] | None) -> int:
        """0 to let the connect go on, else the errno to fail it with."""
        if target is None:
            return errno.EAFNOSUPPORT
        address, port = target
        if port in self.selftalk_ports and (address.is_loopback or address in self.own_addresses):
            return 0
        if port == self.connect_back_port and address in self.licences:
            self.licences.remove(address)
            return 0
        return errno.EACCES


@dataclass
class Tender:
    """Answers the guest's handed-over calls until it ends; `filtered` is the call that
    ended it, if the filter did."""

    pid: int
    listener: int
    arch: seccomp.Arch
    dialing: Dialing
    # The tender's own copy of each listener whose accept it makes, by the guest's fd.
    accepting: dict[int, socket.socket]
    filtered: notify.Call | None = None

    def run(self) -> None:
        """Serve until the guest exits (or is killed for a call off the list)."""
        pidfd = os.pidfd_open(self.pid)
        try:
            poller = select.poll()
            poller.register(self.listener, select.POLLIN)
            poller.register(pidfd, select.POLLIN)
            while True:
                for fd, _events in poller.poll():
                    if fd == pidfd:
                        return
                    call = notify.receive(self.listener)
                    if call is not None:
                        self._answer(call)
        finally:
            os.close(pidfd)

    def _answer(self, call: notify.Call) -> None:
        name = self.arch.name_of(call.nr) if call.arch == self.arch.audit else ""
        if name == "connect":
            self._connect(call)
        elif name == "accept4" and call.args[0] in self.accepting:
            self._accept(call)
        elif self.filtered is None:
            self.filtered = call
            # The guest waits in the call: it dies there, before the call runs.
            os.kill(self.pid, signal.SIGKILL)

    def _connect(self, call: notify.Call) -> None:
        fd, pointer, length = call.args[:3]
        try:
            raw = notify.read_memory(call.pid, pointer, min(length, MAX_SOCKADDR))
            verdict = self.dialing.check(parse_sockaddr(raw))
            own = notify.take_fd(call.pid, fd) if not verdict else -1
        except OSError as e:
            notify.refuse(self.listener, call, e.errno or errno.EFAULT)
            return
        if verdict:
            notify.refuse(self.listener, call, verdict)
            return
        if not notify.still_waiting(self.listener, call):
            os.close(own)  # the caller died: its pid may be another process's now
            return
        # The connect itself, with the bytes checked, on the guest's own socket; in a
        # thread, since a blocking socket blocks until the peer answers.
        threading.Thread(target=self._dial, args=(call, own, raw), daemon=True).start()

    def _dial(self, call: notify.Call, own: int, raw: bytes) -> None:
        try:
            notify.answer(self.listener, call, notify.connect(own, raw))
        except OSError:
            pass  # the guest is gone: nobody waits for the answer
        finally:
            os.close(own)

    def _accept(self, call: notify.Call) -> None:
        fd, address_out, length_out, flags = call.args[:4]
        own = self.accepting[fd]
        # Only the tender accepts on this socket, so readable means accept will not
        # block, even if the guest made the shared socket blocking.
        ready, _, _ = select.select([own], [], [], 0)
        if not ready:
            notify.refuse(self.listener, call, errno.EAGAIN)
            return
        try:
            conn, peer = own.accept()
        except OSError as e:
            notify.refuse(self.listener, call, e.errno or errno.EIO)
            return
        with conn:
            conn.setblocking(not flags & socket.SOCK_NONBLOCK)
            try:
                if address_out:
                    self._write_address(call, address_out, length_out, sockaddr_of(peer))
            except OSError:
                notify.refuse(self.listener, call, errno.EFAULT)
                return
            self.dialing.initiated(plain(ipaddress.ip_address(peer[0])))
            notify.complete_with_fd(
                self.listener, call, conn.fileno(), cloexec=bool(flags & socket.SOCK_CLOEXEC)
            )

    def _write_address(self, call: notify.Call, address: int, length: int, raw: bytes) -> None:
        room = struct.unpack("=I", notify.read_memory(call.pid, length, 4))[0]
        notify.write_memory(call.pid, address, raw[:room])
        notify.write_memory(call.pid, length, struct.pack("=I", len(raw)))
