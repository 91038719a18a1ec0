"""The system-call allowlist: what the unikernel may still ask of the kernel.

Solo5's spt tender allows about seven system calls plus two per device; a
trio + cryptography server needs more (an event loop, sockets, a memory
allocator, OpenSSL's random source). Each name below was seen under
`strace -f` after the sandbox closed, and each carries its argument rule and
the reason it is allowed at all (`python -m unikernel policy` prints them).
A call the filter cannot judge alone goes to the tender (connect: the
address; accept on the connect-back listener: who is calling). A call off
the list also goes to the tender, which kills the guest and names the call:
no code runs in the guest to report it, so no signal handler is involved.
A foreign architecture (the x32 ABI, a 32-bit entry) is killed outright.
"""

from __future__ import annotations

import ctypes
import errno
import os
import platform
import signal
import socket
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from unikernel import bpf, notify, syscall_table

# linux/seccomp.h
SECCOMP_SET_MODE_FILTER = 1
SECCOMP_FILTER_FLAG_TSYNC = 1 << 0
SECCOMP_RET_KILL_PROCESS = 0x80000000
SECCOMP_RET_TRAP = 0x00030000
SECCOMP_RET_ALLOW = 0x7FFF0000
# Both go to the tender (unikernel.notify), which tells them apart by the call: a
# call off the list, which it answers by killing the guest, and a call it checks
# (connect's address, accept on the connect-back listener). The data bits differ only
# so that tests of the filter can tell the two apart; the kernel ignores them.
DENY = notify.SECCOMP_RET_USER_NOTIF
TENDER = notify.SECCOMP_RET_USER_NOTIF | 1
PR_SET_NO_NEW_PRIVS = 38

# linux/audit.h
AUDIT_ARCH_X86_64 = 0xC000003E
AUDIT_ARCH_AARCH64 = 0xC00000B7
# x32 system calls share the x86_64 arch value and set this bit in nr.
X32_SYSCALL_BIT = 0x40000000

# asm-generic/mman-common.h, asm-generic/fcntl.h, asm-generic/ioctls.h
PROT_EXEC = 0x4
F_GETFD, F_SETFD, F_GETFL, F_SETFL = 1, 2, 3, 4
FIONBIO = 0x5421
SOCK_TYPE_FLAGS = 0o2000000 | 0o4000  # SOCK_CLOEXEC | SOCK_NONBLOCK

# The exit status of a unikernel that tripped the filter: 128 + SIGSYS, as a shell shows it.
EXIT_FILTERED = 128 + signal.SIGSYS


@dataclass(frozen=True)
class Arch:
    name: str
    audit: int
    syscall_seccomp: int
    table: Mapping[int, str]

    def number(self, name: str) -> int:
        for nr, known in self.table.items():
            if known == name:
                return nr
        raise KeyError(f"{name} is not a system call on {self.name}")

    def name_of(self, nr: int) -> str:
        if self.name == "x86_64" and nr & X32_SYSCALL_BIT:
            return f"x32:{self.table.get(nr & ~X32_SYSCALL_BIT, nr)}"
        return self.table.get(nr, f"syscall#{nr}")


ARCHES = {
    "x86_64": Arch("x86_64", AUDIT_ARCH_X86_64, 317, syscall_table.X86_64),
    "aarch64": Arch("aarch64", AUDIT_ARCH_AARCH64, 277, syscall_table.AARCH64),
}


def host_arch() -> Arch:
    machine = platform.machine()
    if machine not in ARCHES:
        raise OSError(errno.ENOSYS, f"no seccomp policy for {machine}")
    return ARCHES[machine]


def arch_by_audit(audit: int) -> Arch | None:
    return next((a for a in ARCHES.values() if a.audit == audit), None)


@dataclass(frozen=True)
class ArgCheck:
    """`(args[index] & mask)` must be one of `values` (or none of them, if not `allow`).

    The low 32 bits are read unless `high`: every int, flag word or fd is
    truncated to 32 bits by the kernel itself, while a pointer needs both
    halves checked (`null`).
    """

    index: int
    values: frozenset[int]
    mask: int = 0xFFFFFFFF
    allow: bool = True
    high: bool = False


@dataclass(frozen=True)
class Rule:
    """One allowed call, every check of which must pass, and why it is allowed at all."""

    syscall: str
    checks: tuple[ArgCheck, ...] = ()
    reason: str = ""
    # Passed to the tender, which checks what the filter cannot see, instead of allowed.
    tender: bool = False


def one_of(index: int, *values: int, mask: int = 0xFFFFFFFF) -> ArgCheck:
    return ArgCheck(index, frozenset(values), mask)


def none_of(index: int, *values: int, mask: int = 0xFFFFFFFF) -> ArgCheck:
    return ArgCheck(index, frozenset(values), mask, allow=False)


def null(index: int) -> tuple[ArgCheck, ArgCheck]:
    """args[index] is a NULL pointer: both 32-bit halves are zero."""
    return (one_of(index, 0), ArgCheck(index, frozenset({0}), high=True))


# linux/in.h, linux/tcp.h, asm-generic/socket.h, linux/socket.h
IPPROTO_TCP = 6
TCP_NODELAY = 1
TCP_NOTSENT_LOWAT = 25
SOL_SOCKET = 1
SO_TYPE, SO_ERROR, SO_SNDBUF, SO_RCVBUF = 3, 4, 7, 8
SO_ACCEPTCONN, SO_PROTOCOL, SO_DOMAIN = 30, 38, 39
MSG_FASTOPEN = 0x20000000
SOCK_TYPE_MASK = ~SOCK_TYPE_FLAGS & 0xFFFFFFFF


def _network_rules(tender_listeners: Sequence[int]) -> tuple[Rule, ...]:
    stream = one_of(1, int(socket.SOCK_STREAM), mask=SOCK_TYPE_MASK)
    accepts: tuple[Rule, ...] = ()
    if tender_listeners:
        accepts = (
            Rule("accept4", (one_of(0, *tender_listeners),),
                 "the tender accepts on the connect-back listener and hands the connection "
                 "in: it then knows the initiator, the one address connect-back may dial",
                 tender=True),
        )
    return (
        *accepts,
        Rule("accept4", reason="serving the preopened listeners"),
        Rule(
            "socket",
            (one_of(0, int(socket.AF_INET), int(socket.AF_INET6)), stream,
             one_of(2, 0, IPPROTO_TCP)),
            "the connect-back and self-talk dials: IPv4/IPv6 TCP only; a protocol other "
            "than 0 or TCP (IPPROTO_MPTCP = 262) escapes Landlock, which governs TCP only",
        ),
        Rule(
            "socketpair",
            (one_of(0, int(socket.AF_UNIX)), stream, one_of(2, 0)),
            "trio.run's wakeup pair, AF_UNIX SOCK_STREAM (trio/_core/_wakeup_socketpair.py): "
            "born connected to itself, it reaches nothing; a datagram pair could sendto "
            "any pathname socket",
        ),
        Rule(
            "connect",
            reason="the tender reads the address: loopback at our own ports (self-talk), or "
            "an initiator of the connect-back port at the manifest's port; Landlock also "
            "allows only those ports",
            tender=True,
        ),
        Rule("getsockname", reason="the bound ports, for the page and the logs"),
        Rule("getpeername", reason="the initiator's address, for connect-back and the logs"),
        Rule(
            "getsockopt",
            (one_of(1, SOL_SOCKET),
             one_of(2, SO_TYPE, SO_ERROR, SO_ACCEPTCONN, SO_PROTOCOL, SO_DOMAIN)),
            "trio reads a socket's kind and a non-blocking connect's result (SO_ERROR)",
        ),
        Rule(
            "setsockopt",
            (one_of(1, IPPROTO_TCP), one_of(2, TCP_NODELAY, TCP_NOTSENT_LOWAT)),
            "trio's SocketStream sets these two (trio/_highlevel_socket.py), and tries "
            "TCP_NODELAY on its wakeup pair; not TCP_FASTOPEN_CONNECT or TCP_ULP",
        ),
        Rule(
            "setsockopt",
            (one_of(1, SOL_SOCKET), one_of(2, SO_SNDBUF, SO_RCVBUF)),
            "trio shrinks its wakeup pair's buffers (trio/_core/_wakeup_socketpair.py); "
            "not SO_BINDTODEVICE or anything else",
        ),
        Rule(
            "recvfrom",
            null(4),
            "recv(2) as glibc spells it, on a connected socket: no source address",
        ),
        Rule(
            "sendto",
            (none_of(3, MSG_FASTOPEN, mask=MSG_FASTOPEN), *null(4)),
            "send(2) as glibc spells it: no destination address (which would dial with "
            "TCP Fast Open, past Landlock's connect rule) and no MSG_FASTOPEN",
        ),
        Rule("shutdown", reason="half-close after close_notify"),
    )


def policy(
    arch: Arch, console_fds: Iterable[int], tender_listeners: Sequence[int] = ()
) -> tuple[Rule, ...]:
    """The allowlist, for the fds the unikernel may `write` to and the listeners whose
    accepts the tender makes itself."""
    epoll_wait = "epoll_wait" if arch.name == "x86_64" else "epoll_pwait"
    return (
        Rule("write", (one_of(0, *sorted(set(console_fds))),),
             "the console and the launcher's report pipe; sockets use sendto"),
        Rule("close", reason="every connection ends"),
        Rule("epoll_create1", reason="trio's event loop (trio/_core/_io_epoll.py)"),
        Rule("epoll_ctl", reason="trio's event loop"),
        Rule(epoll_wait, reason="trio's event loop"),
        *_network_rules(tender_listeners),
        Rule("ioctl", (one_of(1, FIONBIO),), "non-blocking mode only; not TIOCSTI"),
        Rule("fcntl", (one_of(1, F_GETFD, F_SETFD, F_GETFL, F_SETFL),),
             "descriptor flags only; not F_DUPFD or F_SETOWN"),
        Rule("getrandom", reason="OpenSSL's DRBG reseeds from it"),
        Rule("getpid", reason="OpenSSL's DRBG checks it to detect a fork"),
        Rule("mmap", (one_of(2, 0, mask=PROT_EXEC),),
             "the allocator; nothing executable, and with no mprotect nothing becomes so"),
        Rule("munmap", reason="the allocator"),
        Rule("brk", reason="the allocator"),
        Rule("futex", reason="the interpreter's and OpenSSL's locks"),
        Rule("rt_sigaction", reason="trio probes for the main thread by setting SIGINT's "
             "handler to itself; a handler changes nothing the filter decides"),
        Rule("rt_sigreturn", reason="return from a signal handler"),
        Rule("exit_group", reason="the end"),
    )


def _goto(label: bpf.Label) -> bpf.Insn:
    # An unconditional jump: our assembler resolves labels in jt/jf only.
    return bpf.jeq(0, jt=label, jf=label)


def _alternatives(
    rules: Sequence[Rule], nr: int, body: bpf.Label, deny: bpf.Label
) -> list[bpf.Item]:
    """The argument checks of every rule for one call: the first rule that passes allows;
    a failed check falls through to the next rule, and after the last to `deny`."""
    out: list[bpf.Item] = [body]
    for i, rule in enumerate(rules):
        failed = deny if i == len(rules) - 1 else bpf.Label(f"nr{nr}.alt{i + 1}")
        for j, check in enumerate(rule.checks):
            passed = bpf.Label(f"nr{nr}.alt{i}.check{j}")
            offset = bpf.offset_arg_high if check.high else bpf.offset_arg_low
            out.append(bpf.load(offset(check.index)))
            if check.mask != 0xFFFFFFFF:
                out.append(bpf.and_(check.mask))
            for value in sorted(check.values):
                out.append(bpf.jeq(value, jt=passed if check.allow else failed))
            if check.allow:
                out.append(_goto(failed))
            out.append(passed)
        out.append(bpf.ret(TENDER if rule.tender else SECCOMP_RET_ALLOW))
        if failed is not deny:
            out.append(failed)
    return out


def compile_filter(arch: Arch, rules: Sequence[Rule]) -> bytes:
    """Build the BPF program: check the arch, dispatch on nr, check the arguments.

    Several rules for one call are alternatives (setsockopt's level and option
    go in pairs); a rule without checks allows the call whatever its arguments.
    """
    # Classic BPF jumps only forward: the shared exits come last.
    deny = bpf.Label("deny")
    kill = bpf.Label("kill")
    items: list[bpf.Item] = [bpf.load(bpf.OFFSET_ARCH), bpf.jeq(arch.audit, jf=kill)]
    items.append(bpf.load(bpf.OFFSET_NR))
    grouped: dict[int, list[Rule]] = {}
    for rule in rules:
        grouped.setdefault(arch.number(rule.syscall), []).append(rule)
    bodies: list[bpf.Item] = []
    for nr, group in grouped.items():
        body = bpf.Label(f"nr{nr}")
        items.append(bpf.jeq(nr, jt=body))
        bodies += _alternatives(group, nr, body, deny)
    # Anything that matched no rule: the x32 bit on x86_64 included.
    items.append(bpf.ret(DENY))
    items += bodies
    items += [deny, bpf.ret(DENY), kill, bpf.ret(SECCOMP_RET_KILL_PROCESS)]
    return bpf.assemble(items)


def seccomp_data(arch: Arch, name: str, *args: int) -> bytes:
    """A `struct seccomp_data` for the interpreter in tests."""
    import struct

    padded = [*args, *([0] * (6 - len(args)))]
    return struct.pack("=iIQ6Q", arch.number(name), arch.audit, 0, *padded)


class _SockFilter(ctypes.Structure):
    _fields_ = [
        ("code", ctypes.c_uint16),
        ("jt", ctypes.c_uint8),
        ("jf", ctypes.c_uint8),
        ("k", ctypes.c_uint32),
    ]


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(_SockFilter))]


def _libc() -> ctypes.CDLL:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    return libc


def prctl(option: int, value: int) -> None:
    """prctl(option, value); raises OSError on failure."""
    if _libc().prctl(option, value, 0, 0, 0) != 0:
        e = ctypes.get_errno()
        raise OSError(e, f"prctl({option}, {value}): {os.strerror(e)}")


def set_no_new_privs() -> None:
    """PR_SET_NO_NEW_PRIVS: exec can never gain privilege, and seccomp needs it unprivileged."""
    prctl(PR_SET_NO_NEW_PRIVS, 1)


def install(arch: Arch, program: bytes) -> int:
    """seccomp(SECCOMP_SET_MODE_FILTER, TSYNC | NEW_LISTENER): every thread, for good.

    Returns the listener fd through which the tender answers the calls the
    filter sends it (`unikernel.notify`). Raises OSError if the kernel refuses
    either flag: the launcher does not run without them.
    """
    count = len(program) // 8
    insns = (_SockFilter * count).from_buffer_copy(program)
    prog = _SockFprog(count, ctypes.cast(insns, ctypes.POINTER(_SockFilter)))
    libc = _libc()
    rc = libc.syscall(
        ctypes.c_long(arch.syscall_seccomp),
        ctypes.c_long(SECCOMP_SET_MODE_FILTER),
        ctypes.c_long(
            SECCOMP_FILTER_FLAG_TSYNC
            | notify.SECCOMP_FILTER_FLAG_NEW_LISTENER
            # TSYNC and a listener together need TSYNC failures as ESRCH, not a thread id.
            | notify.SECCOMP_FILTER_FLAG_TSYNC_ESRCH
        ),
        ctypes.byref(prog),
    )
    if rc < 0:
        e = ctypes.get_errno()
        raise OSError(e, f"seccomp(SET_MODE_FILTER): {os.strerror(e)}")
    return int(rc)
