"""The system-call allowlist: what the unikernel may still ask of the kernel.

Solo5's spt tender allows about seven system calls plus two per device; a
trio + cryptography server needs more (an event loop, sockets, a memory
allocator, OpenSSL's random source). Each name below was seen under
`strace -f` after the sandbox closed, and each carries argument checks where
the arguments decide the harm: `write` only to the console and report fds,
`socket` only IPv4/IPv6 streams, no executable mappings, no SIGSYS handler
but ours. Anything else traps; the trap handler reports the system call to
the launcher over a pipe and exits, and if SIGSYS is blocked or its handler
replaced the kernel kills the process instead (kernel/seccomp.c,
force_sig_seccomp). A foreign architecture (say, the x32 ABI or a 32-bit
entry) is killed outright.
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

from unikernel import bpf, syscall_table

# linux/seccomp.h
SECCOMP_SET_MODE_FILTER = 1
SECCOMP_FILTER_FLAG_TSYNC = 1 << 0
SECCOMP_RET_KILL_PROCESS = 0x80000000
SECCOMP_RET_TRAP = 0x00030000
SECCOMP_RET_ALLOW = 0x7FFF0000
PR_SET_NO_NEW_PRIVS = 38

# linux/audit.h
AUDIT_ARCH_X86_64 = 0xC000003E
AUDIT_ARCH_AARCH64 = 0xC00000B7
# x32 system calls share the x86_64 arch value and set this bit in nr.
X32_SYSCALL_BIT = 0x40000000

# asm-generic/mman-common.h, asm-generic/fcntl.h, asm-generic/ioctls.h
PROT_EXEC = 0x4
AT_FDCWD = -100 & 0xFFFFFFFF
AT_EMPTY_PATH = 0x1000
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

    Only the low 32 bits are read: every checked argument is an int, a flag
    word or an fd that the kernel itself truncates to 32 bits.
    """

    index: int
    values: frozenset[int]
    mask: int = 0xFFFFFFFF
    allow: bool = True


@dataclass(frozen=True)
class Rule:
    syscall: str
    checks: tuple[ArgCheck, ...] = ()


def one_of(index: int, *values: int, mask: int = 0xFFFFFFFF) -> ArgCheck:
    return ArgCheck(index, frozenset(values), mask)


def none_of(index: int, *values: int, mask: int = 0xFFFFFFFF) -> ArgCheck:
    return ArgCheck(index, frozenset(values), mask, allow=False)


def policy(arch: Arch, console_fds: Iterable[int]) -> tuple[Rule, ...]:
    """The allowlist, for the given fds the unikernel may `write` to."""
    no_exec = one_of(2, 0, mask=PROT_EXEC)
    epoll_wait = "epoll_wait" if arch.name == "x86_64" else "epoll_pwait"
    return (
        # The console and the launcher's report pipe; sockets use sendto.
        Rule("write", (one_of(0, *sorted(set(console_fds))),)),
        Rule("close"),
        # trio's event loop (trio/_core/_io_epoll.py).
        Rule("epoll_create1"),
        Rule("epoll_ctl"),
        Rule(epoll_wait),
        # Serving the preopened listeners and the connect-back client.
        Rule("accept4"),
        Rule(
            "socket",
            (
                one_of(0, int(socket.AF_INET), int(socket.AF_INET6)),
                one_of(1, int(socket.SOCK_STREAM), mask=~SOCK_TYPE_FLAGS & 0xFFFFFFFF),
            ),
        ),
        # trio.run makes one AF_UNIX pair to wake itself (trio/_core/_wakeup_socketpair.py).
        Rule("socketpair", (one_of(0, int(socket.AF_UNIX)),)),
        Rule("connect"),
        Rule("getsockname"),
        Rule("getpeername"),
        Rule("getsockopt"),
        Rule("setsockopt"),
        Rule("recvfrom"),
        Rule("sendto"),
        Rule("shutdown"),
        Rule("ioctl", (one_of(1, FIONBIO),)),
        Rule("fcntl", (one_of(1, F_GETFD, F_SETFD, F_GETFL, F_SETFL),)),
        # OpenSSL's DRBG reseeds from getrandom and checks getpid to detect a fork.
        Rule("getrandom"),
        Rule("getpid"),
        # The allocator; nothing may be mapped executable once the sandbox is closed
        # (and with no mprotect, nothing mapped can become executable).
        Rule("mmap", (no_exec,)),
        Rule("munmap"),
        Rule("brk"),
        Rule("futex"),
        # Our SIGSYS handler stays: replacing it would turn a kill into a shrug.
        Rule("rt_sigaction", (none_of(0, int(signal.SIGSYS)),)),
        Rule("rt_sigreturn"),
        # fstat, as glibc spells it: trio.run's signal.set_wakeup_fd checks its fd once.
        # A relative path is harmless only from a directory fd, and the unikernel holds
        # none; AT_FDCWD (the working directory) is refused.
        Rule(
            "newfstatat",
            (none_of(0, AT_FDCWD), one_of(3, AT_EMPTY_PATH, mask=AT_EMPTY_PATH)),
        ),
        Rule("exit_group"),
    )


def compile_filter(arch: Arch, rules: Sequence[Rule]) -> bytes:
    """Build the BPF program: check the arch, dispatch on nr, check the arguments."""
    # Classic BPF jumps only forward: the shared exits come last.
    trap = bpf.Label("trap")
    kill = bpf.Label("kill")
    items: list[bpf.Item] = [bpf.load(bpf.OFFSET_ARCH), bpf.jeq(arch.audit, jf=kill)]
    items.append(bpf.load(bpf.OFFSET_NR))
    bodies: list[bpf.Item] = []
    for i, rule in enumerate(rules):
        nr = arch.number(rule.syscall)
        if not rule.checks:
            allow = bpf.Label(f"allow{i}")
            items.append(bpf.jeq(nr, jt=allow))
            bodies += [allow, bpf.ret(SECCOMP_RET_ALLOW)]
            continue
        body = bpf.Label(f"rule{i}")
        items.append(bpf.jeq(nr, jt=body))
        bodies.append(body)
        for j, check in enumerate(rule.checks):
            passed = bpf.Label(f"rule{i}.{j}")
            bodies.append(bpf.load(bpf.offset_arg_low(check.index)))
            if check.mask != 0xFFFFFFFF:
                bodies.append(bpf.and_(check.mask))
            for value in sorted(check.values):
                if check.allow:
                    bodies.append(bpf.jeq(value, jt=passed))
                else:
                    bodies.append(bpf.jeq(value, jt=trap))
            if check.allow:
                bodies.append(bpf.ret(SECCOMP_RET_TRAP))
            bodies.append(passed)
        bodies.append(bpf.ret(SECCOMP_RET_ALLOW))
    # Anything that matched no rule: the x32 bit on x86_64 included.
    items.append(bpf.ret(SECCOMP_RET_TRAP))
    items += bodies
    items += [trap, bpf.ret(SECCOMP_RET_TRAP), kill, bpf.ret(SECCOMP_RET_KILL_PROCESS)]
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


def set_no_new_privs() -> None:
    """PR_SET_NO_NEW_PRIVS: exec can never gain privilege, and seccomp needs it unprivileged."""
    libc = _libc()
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        e = ctypes.get_errno()
        raise OSError(e, f"prctl(PR_SET_NO_NEW_PRIVS): {os.strerror(e)}")


def install(arch: Arch, program: bytes) -> None:
    """seccomp(SECCOMP_SET_MODE_FILTER, TSYNC): every thread of the process, for good."""
    count = len(program) // 8
    insns = (_SockFilter * count).from_buffer_copy(program)
    prog = _SockFprog(count, ctypes.cast(insns, ctypes.POINTER(_SockFilter)))
    libc = _libc()
    rc = libc.syscall(
        ctypes.c_long(arch.syscall_seccomp),
        ctypes.c_long(SECCOMP_SET_MODE_FILTER),
        ctypes.c_long(SECCOMP_FILTER_FLAG_TSYNC),
        ctypes.byref(prog),
    )
    if rc != 0:
        e = ctypes.get_errno()
        raise OSError(e, f"seccomp(SET_MODE_FILTER): {os.strerror(e)}")


# glibc's struct sigaction on x86_64 and aarch64: handler, sa_mask (1024 bits), flags, restorer.
class _Sigaction(ctypes.Structure):
    _fields_ = [
        ("sa_sigaction", ctypes.c_void_p),
        ("sa_mask", ctypes.c_uint64 * 16),
        ("sa_flags", ctypes.c_int),
        ("sa_restorer", ctypes.c_void_p),
    ]


SA_SIGINFO = 4
_HANDLER = ctypes.CFUNCTYPE(None, ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p)


class SigsysReporter:
    """A SIGSYS handler that writes `SIGSYS <nr> <arch>` to the report fd and exits.

    SIGSYS from a seccomp trap is synchronous: it arrives on the thread that
    made the denied call, at the call, so running Python here does not
    interrupt the allocator or the interpreter half-way through an operation
    of its own. siginfo_t for SIGSYS holds `_syscall` at byte 24 and `_arch`
    at 28 (asm-generic/siginfo.h).
    """

    def __init__(self, report_fd: int) -> None:
        self.report_fd = report_fd
        # Must outlive the process: a freed callback would be a jump into nothing.
        self._callback = _HANDLER(self._on_sigsys)

    def _on_sigsys(self, signum: int, info: int | None, context: int | None) -> None:
        nr = ctypes.c_int.from_address((info or 0) + 24).value if info else -1
        arch = ctypes.c_uint32.from_address(info + 28).value if info else 0
        try:
            os.write(self.report_fd, b"SIGSYS %d %d\n" % (nr, arch))
        finally:
            os._exit(EXIT_FILTERED)

    def install(self) -> None:
        action = _Sigaction()
        action.sa_sigaction = ctypes.cast(self._callback, ctypes.c_void_p).value
        action.sa_flags = SA_SIGINFO
        if _libc().sigaction(signal.SIGSYS, ctypes.byref(action), None) != 0:
            e = ctypes.get_errno()
            raise OSError(e, f"sigaction(SIGSYS): {os.strerror(e)}")


def parse_report(line: bytes) -> tuple[int, int] | None:
    """(nr, audit arch) from a reporter line, or None if the line is not one."""
    parts = line.split()
    if len(parts) != 3 or parts[0] != b"SIGSYS":
        return None
    try:
        return int(parts[1]), int(parts[2])
    except ValueError:
        return None
