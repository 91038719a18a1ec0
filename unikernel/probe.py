"""The probe: a stand-in unikernel that behaves as a compromised one would.

The launcher runs it in place of the appliance, inside the same sandbox.
Each attempt prints `{"attempt": name, "outcome": "trying"}` before it
acts and `denied` (with the error) or `allowed` after, as one JSON line on
the console; an attempt the filter stops ends the process, and the launcher
names the system call. `EXPECTED` is the matrix: for each attempt, the
dangerous variant of a call's arguments it makes and what must happen
(killed by the filter at a named call, refused with EACCES by Landlock or
the tender, or allowed, for the controls that show the sandbox still lets
the unikernel do its job). The attempts that dial back need a knock on the
connect-back port first (`NEEDS_KNOCK`), as the appliance's connect-back does.
"""

from __future__ import annotations

import ctypes
import json
import os
import resource
import select
import socket
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from unikernel import seccomp

# How long a dial-back attempt waits for the test to knock on the connect-back port.
KNOCK_TIMEOUT = 20.0
# Bound before the filter: dlopen(NULL) later would be a call off the list.
_LIBC = ctypes.CDLL(None, use_errno=True)
_LIBC.syscall.restype = ctypes.c_long
_ARCH = seccomp.host_arch()

# linux/prctl.h, linux/ptrace.h, asm-generic/mman-common.h, linux/in.h, linux/tcp.h
PR_SET_NO_NEW_PRIVS = 38
PTRACE_ATTACH = 16
PROT_RWX = 0x7
MAP_PRIVATE_ANONYMOUS = 0x22
AT_EMPTY_PATH = 0x1000
IPPROTO_MPTCP = 262
TCP_FASTOPEN_CONNECT = 30
TCP_ULP = 31
SO_BINDTODEVICE = 25
MSG_FASTOPEN = 0x20000000
# RFC 5737 TEST-NET-1: not loopback, and nobody answers there.
NOT_LOOPBACK = "192.0.2.1"


@dataclass(frozen=True)
class ProbeContext:
    sockets: Mapping[str, socket.socket]
    connect_back_port: int
    # The tender, which a compromised guest would most like to reach.
    tender_pid: int


@dataclass(frozen=True)
class Expect:
    """`killed` (by the filter at one of `calls`), `EACCES`, or `allowed`."""

    outcome: str
    calls: frozenset[str] = frozenset()
    # Which layer decides, for the README's matrix.
    by: str = ""


def killed(*calls: str) -> Expect:
    return Expect("killed", frozenset(calls), "seccomp")


def refused(by: str) -> Expect:
    return Expect("EACCES", by=by)


ALLOWED = Expect("allowed", by="control")


def _raw(name: str, *args: int | bytes | ctypes.Array[ctypes.c_char]) -> int:
    """A system call by number, as an attacker with ctypes would make it."""
    converted = [ctypes.c_long(a) if isinstance(a, int) else a for a in args]
    rc = int(_LIBC.syscall(ctypes.c_long(_ARCH.number(name)), *converted))
    if rc < 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))
    return rc


def _port(ctx: ProbeContext, role: str) -> int:
    return int(ctx.sockets[role].getsockname()[1])


def _connect(host: str, port: int) -> str:
    # Blocking, with no timeout: a timeout would need poll(2), which is not on the list;
    # the expected refusals come at once.
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.connect((host, port))
        return f"connected to [{host}]:{port}"


def _accept_initiator(ctx: ProbeContext) -> str:
    """Wait (epoll, bounded) for a knock on the connect-back port; the initiator's address."""
    listener = ctx.sockets["connect_back"]
    with select.epoll() as poller:
        poller.register(listener.fileno(), select.EPOLLIN)
        if not poller.poll(KNOCK_TIMEOUT):
            raise TimeoutError("nobody knocked on the connect-back port")
    conn, peer = listener.accept()
    conn.close()
    return str(peer[0])


def _files() -> dict[str, Callable[[ProbeContext], str]]:
    def open_passwd(ctx: ProbeContext) -> str:
        with open("/etc/passwd", "rb") as f:
            return f"read {len(f.read())} bytes"

    def write_file(ctx: ProbeContext) -> str:
        with open(f"/tmp/pinata-probe-{os.getpid()}", "wb") as f:
            return f"wrote {f.write(b'written from inside the sandbox')} bytes"

    def stat_shadow(ctx: ProbeContext) -> str:
        # An absolute path makes newfstatat ignore the directory fd (AT_EMPTY_PATH or not).
        buf = ctypes.create_string_buffer(256)
        _raw("newfstatat", 0, b"/etc/shadow", buf, AT_EMPTY_PATH)
        return "read /etc/shadow's metadata"

    return {
        "open_passwd": open_passwd,
        "list_root": lambda ctx: f"listed {len(os.listdir('/'))} entries",
        "write_file": write_file,
        "stat_shadow": stat_shadow,
    }


def _processes() -> dict[str, Callable[[ProbeContext], str]]:
    def fork(ctx: ProbeContext) -> str:
        pid = os.fork()
        if pid == 0:
            os._exit(0)
        os.waitpid(pid, 0)
        return f"forked {pid}"

    def mprotect_exec(ctx: ProbeContext) -> str:
        heap = ctypes.create_string_buffer(3 * 4096)
        page = (ctypes.addressof(heap) + 4095) & ~4095
        _raw("mprotect", page, 4096, PROT_RWX)
        return "made a heap page executable"

    def raise_rlimits(ctx: ProbeContext) -> str:
        _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard + 1024, hard + 1024))
        return "raised RLIMIT_NOFILE"

    return {
        "exec_shell": lambda ctx: str(os.execv("/bin/sh", ["sh", "-c", "echo shell"])),
        "fork": fork,
        "memfd_create": lambda ctx: f"memfd {_raw('memfd_create', b'x', 0)}",
        "execveat": lambda ctx: str(_raw("execveat", 3, b"", 0, 0, AT_EMPTY_PATH)),
        "ptrace_tender": lambda ctx: str(_raw("ptrace", PTRACE_ATTACH, ctx.tender_pid, 0, 0)),
        "process_vm_readv": lambda ctx: str(_raw("process_vm_readv", ctx.tender_pid, 0, 0,
                                                 0, 0, 0)),
        "kill_tender": lambda ctx: str(_raw("kill", ctx.tender_pid, 0)),
        "undo_no_new_privs": lambda ctx: str(_raw("prctl", PR_SET_NO_NEW_PRIVS, 0, 0, 0, 0)),
        "mmap_exec": lambda ctx: str(_raw("mmap", 0, 4096, PROT_RWX, MAP_PRIVATE_ANONYMOUS,
                                          -1, 0)),
        "mprotect_exec": mprotect_exec,
        "io_uring_setup": lambda ctx: str(_raw("io_uring_setup", 8, 0)),
        "bpf": lambda ctx: str(_raw("bpf", 0, 0, 0)),
        "userfaultfd": lambda ctx: str(_raw("userfaultfd", 0)),
        "raise_rlimits": raise_rlimits,
    }


def _socket(family: int, kind: int, proto: int = 0) -> Callable[[ProbeContext], str]:
    def attempt(ctx: ProbeContext) -> str:
        with socket.socket(family, kind, proto):
            return f"opened a socket ({family}, {kind}, {proto})"

    return attempt


def _on_tcp(action: Callable[[socket.socket, ProbeContext], object]) -> Callable[
    [ProbeContext], str
]:
    def attempt(ctx: ProbeContext) -> str:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            return f"done: {action(s, ctx)}"

    return attempt


def _sockets() -> dict[str, Callable[[ProbeContext], str]]:
    def listen(ctx: ProbeContext) -> str:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            s.listen(1)
            return f"listening on {s.getsockname()[1]}"

    def socketpair_dgram(ctx: ProbeContext) -> str:
        a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        a.close()
        b.close()
        return "made a datagram pair (sendto could reach /dev/log)"

    return {
        "listen": listen,
        "raw_socket": _socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP),
        "packet_socket": _socket(socket.AF_PACKET, socket.SOCK_RAW),
        "netlink_socket": _socket(socket.AF_NETLINK, socket.SOCK_RAW),
        "vsock_socket": _socket(socket.AF_VSOCK, socket.SOCK_STREAM),
        "alg_socket": _socket(socket.AF_ALG, socket.SOCK_SEQPACKET),
        "unix_socket": _socket(socket.AF_UNIX, socket.SOCK_DGRAM),
        "udp_socket": _socket(socket.AF_INET, socket.SOCK_DGRAM),
        "mptcp_socket": _socket(socket.AF_INET, socket.SOCK_STREAM, IPPROTO_MPTCP),
        "mptcp6_socket": _socket(socket.AF_INET6, socket.SOCK_STREAM, IPPROTO_MPTCP),
        "socketpair_dgram": socketpair_dgram,
        "sendto_fastopen": _on_tcp(lambda s, ctx: s.sendto(
            b"x", MSG_FASTOPEN, ("127.0.0.1", _port(ctx, "http")))),
        "sendto_address": _on_tcp(lambda s, ctx: s.sendto(
            b"x", 0, ("127.0.0.1", _port(ctx, "http")))),
        "bind_to_device": _on_tcp(
            lambda s, ctx: s.setsockopt(socket.SOL_SOCKET, SO_BINDTODEVICE, b"lo")),
        "tcp_ulp": _on_tcp(lambda s, ctx: s.setsockopt(socket.IPPROTO_TCP, TCP_ULP, b"tls")),
        "tcp_fastopen_connect": _on_tcp(
            lambda s, ctx: s.setsockopt(socket.IPPROTO_TCP, TCP_FASTOPEN_CONNECT, 1)),
    }


def _dials() -> dict[str, Callable[[ProbeContext], str]]:
    def back_to(host: str) -> Callable[[ProbeContext], str]:
        def attempt(ctx: ProbeContext) -> str:
            _accept_initiator(ctx)
            return _connect(host, ctx.connect_back_port)

        return attempt

    def connect_back(ctx: ProbeContext) -> str:
        return _connect(_accept_initiator(ctx), ctx.connect_back_port)

    return {
        # Another of our own ports (not a self-talk one), over each address form.
        "connect_other_v4": lambda ctx: _connect("127.0.0.1", _port(ctx, "http")),
        "connect_other_v6": lambda ctx: _connect("::1", _port(ctx, "http")),
        "connect_other_v4mapped": lambda ctx: _connect("::ffff:127.0.0.1", _port(ctx, "http")),
        # The connect-back port, with nobody having knocked.
        "connect_back_unknocked": lambda ctx: _connect("127.0.0.1", ctx.connect_back_port),
        # After a knock from 127.0.0.1: another address at the connect-back port.
        "connect_back_other_address": back_to("127.0.0.2"),
        # Self-talk's port, but not on loopback.
        "selftalk_not_loopback": lambda ctx: _connect(NOT_LOOPBACK, _port(ctx, "tls_server")),
        # The controls: the unikernel's own dials still work.
        "connect_back": connect_back,
        "connect_back_v4mapped": back_to("::ffff:127.0.0.1"),
        "selftalk_loopback": lambda ctx: _connect("127.0.0.1", _port(ctx, "tls_server")),
    }


ATTEMPTS: dict[str, Callable[[ProbeContext], str]] = {
    **_files(), **_processes(), **_sockets(), **_dials()
}
NEEDS_KNOCK = frozenset({"connect_back", "connect_back_v4mapped", "connect_back_other_address"})

EXPECTED: dict[str, Expect] = {
    "open_passwd": killed("openat"),
    "list_root": killed("openat"),
    "write_file": killed("openat"),
    "stat_shadow": killed("newfstatat"),
    "exec_shell": killed("execve"),
    "fork": killed("clone", "clone3"),
    "memfd_create": killed("memfd_create"),
    "execveat": killed("execveat"),
    "ptrace_tender": killed("ptrace"),
    "process_vm_readv": killed("process_vm_readv"),
    "kill_tender": killed("kill"),
    "undo_no_new_privs": killed("prctl"),
    "mmap_exec": killed("mmap"),
    "mprotect_exec": killed("mprotect"),
    "io_uring_setup": killed("io_uring_setup"),
    "bpf": killed("bpf"),
    "userfaultfd": killed("userfaultfd"),
    "raise_rlimits": killed("prlimit64"),
    "listen": killed("bind"),
    "raw_socket": killed("socket"),
    "packet_socket": killed("socket"),
    "netlink_socket": killed("socket"),
    "vsock_socket": killed("socket"),
    "alg_socket": killed("socket"),
    "unix_socket": killed("socket"),
    "udp_socket": killed("socket"),
    "mptcp_socket": killed("socket"),
    "mptcp6_socket": killed("socket"),
    "socketpair_dgram": killed("socketpair"),
    "sendto_fastopen": killed("sendto"),
    "sendto_address": killed("sendto"),
    "bind_to_device": killed("setsockopt"),
    "tcp_ulp": killed("setsockopt"),
    "tcp_fastopen_connect": killed("setsockopt"),
    "connect_other_v4": refused("tender (port); Landlock without the filter"),
    "connect_other_v6": refused("tender (port); Landlock without the filter"),
    "connect_other_v4mapped": refused("tender (port); Landlock without the filter"),
    "connect_back_unknocked": refused("tender (no initiator)"),
    "connect_back_other_address": refused("tender (not the initiator)"),
    "selftalk_not_loopback": refused("tender (not loopback)"),
    "connect_back": ALLOWED,
    "connect_back_v4mapped": ALLOWED,
    "selftalk_loopback": ALLOWED,
}


def _say(line: dict[str, object]) -> None:
    # One write(2) per line, as the launcher's events: the console is shared.
    sys.stdout.flush()
    os.write(1, (json.dumps(line, sort_keys=True) + "\n").encode())


def run(ctx: ProbeContext, attempts: Sequence[str]) -> int:
    """Try each attempt in order; exit status 0 whatever happens (the verdict is the test's)."""
    for name in attempts or list(ATTEMPTS):
        _say({"event": "probe", "attempt": name, "outcome": "trying"})
        try:
            detail = ATTEMPTS[name](ctx)
        except (OSError, ValueError) as e:
            # resource.setrlimit reports EPERM as ValueError.
            reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
            _say(
                {
                    "event": "probe",
                    "attempt": name,
                    "outcome": "denied",
                    "error": f"{type(e).__name__}: {reason}",
                }
            )
        else:
            _say({"event": "probe", "attempt": name, "outcome": "allowed", "detail": detail})
    return 0
