"""The filter's decisions, read by a BPF interpreter, for every rule and its arguments."""

from __future__ import annotations

import signal
import socket

import pytest
from hypothesis import given
from hypothesis import strategies as st

from unikernel import bpf, seccomp

CONSOLE = (1, 2, 7)
ARCHES = sorted(seccomp.ARCHES.values(), key=lambda a: a.name)


def decide(arch: seccomp.Arch, name: str, *args: int, audit: int | None = None) -> int:
    program = seccomp.compile_filter(arch, seccomp.policy(arch, CONSOLE))
    data = seccomp.seccomp_data(arch, name, *args)
    if audit is not None:
        data = data[:4] + audit.to_bytes(4, "little") + data[8:]
    return bpf.run(program, data)


ALLOW = seccomp.SECCOMP_RET_ALLOW
TRAP = seccomp.SECCOMP_RET_TRAP
KILL = seccomp.SECCOMP_RET_KILL_PROCESS


@pytest.mark.parametrize("arch", ARCHES, ids=lambda a: a.name)
def test_the_allowlist_stays_within_thirty_calls(arch: seccomp.Arch) -> None:
    rules = seccomp.policy(arch, CONSOLE)
    names = [r.syscall for r in rules]
    assert len(names) == len(set(names)) <= 30
    program = seccomp.compile_filter(arch, rules)
    assert len(program) // 8 < 200


@pytest.mark.parametrize("arch", ARCHES, ids=lambda a: a.name)
@pytest.mark.parametrize(
    "name", ["openat", "execve", "clone", "bind", "listen", "prlimit64", "ptrace", "chroot",
             "setuid", "kill", "mprotect", "unshare", "getdents64", "seccomp"]
)
def test_what_a_compromised_unikernel_would_call_traps(arch: seccomp.Arch, name: str) -> None:
    assert decide(arch, name) == TRAP


@pytest.mark.parametrize("arch", ARCHES, ids=lambda a: a.name)
def test_write_is_allowed_only_to_the_console_fds(arch: seccomp.Arch) -> None:
    for fd in CONSOLE:
        assert decide(arch, "write", fd, 0, 10) == ALLOW
    for fd in (0, 3, 5, 8, 1 << 20):
        assert decide(arch, "write", fd, 0, 10) == TRAP


@pytest.mark.parametrize("arch", ARCHES, ids=lambda a: a.name)
def test_socket_is_allowed_only_for_ip_streams(arch: seccomp.Arch) -> None:
    flags = seccomp.SOCK_TYPE_FLAGS
    for family in (socket.AF_INET, socket.AF_INET6):
        assert decide(arch, "socket", family, socket.SOCK_STREAM) == ALLOW
        assert decide(arch, "socket", family, socket.SOCK_STREAM | flags) == ALLOW
        assert decide(arch, "socket", family, socket.SOCK_DGRAM) == TRAP
        assert decide(arch, "socket", family, socket.SOCK_RAW) == TRAP
    for family in (socket.AF_UNIX, socket.AF_PACKET, socket.AF_NETLINK):
        assert decide(arch, "socket", family, socket.SOCK_STREAM) == TRAP


@pytest.mark.parametrize("arch", ARCHES, ids=lambda a: a.name)
def test_nothing_is_mapped_executable(arch: seccomp.Arch) -> None:
    prot_rw = 0x1 | 0x2
    assert decide(arch, "mmap", 0, 4096, prot_rw, 0x22) == ALLOW
    assert decide(arch, "mmap", 0, 4096, prot_rw | seccomp.PROT_EXEC, 0x22) == TRAP


@pytest.mark.parametrize("arch", ARCHES, ids=lambda a: a.name)
def test_the_sigsys_handler_cannot_be_replaced(arch: seccomp.Arch) -> None:
    assert decide(arch, "rt_sigaction", signal.SIGINT, 0, 0, 8) == ALLOW
    assert decide(arch, "rt_sigaction", signal.SIGSYS, 0, 0, 8) == TRAP


@pytest.mark.parametrize("arch", ARCHES, ids=lambda a: a.name)
def test_ioctl_fcntl_and_fstat_are_narrowed(arch: seccomp.Arch) -> None:
    assert decide(arch, "ioctl", 3, seccomp.FIONBIO) == ALLOW
    assert decide(arch, "ioctl", 3, 0x5412) == TRAP  # TIOCSTI: type into a terminal
    assert decide(arch, "fcntl", 3, seccomp.F_SETFL) == ALLOW
    assert decide(arch, "fcntl", 3, 0) == TRAP  # F_DUPFD
    assert decide(arch, "newfstatat", 3, 0, 0, seccomp.AT_EMPTY_PATH) == ALLOW
    assert decide(arch, "newfstatat", seccomp.AT_FDCWD, 0, 0, seccomp.AT_EMPTY_PATH) == TRAP
    assert decide(arch, "newfstatat", 3, 0, 0, 0) == TRAP


@pytest.mark.parametrize("arch", ARCHES, ids=lambda a: a.name)
def test_another_architecture_is_killed(arch: seccomp.Arch) -> None:
    assert decide(arch, "write", 1, 0, 0, audit=0x40000003) == KILL  # i386
    other = next(a for a in seccomp.ARCHES.values() if a is not arch)
    assert decide(arch, "write", 1, 0, 0, audit=other.audit) == KILL


def test_x32_calls_trap() -> None:
    arch = seccomp.ARCHES["x86_64"]
    program = seccomp.compile_filter(arch, seccomp.policy(arch, CONSOLE))
    data = bytearray(seccomp.seccomp_data(arch, "write", 1))
    nr = arch.number("write") | seccomp.X32_SYSCALL_BIT
    data[0:4] = nr.to_bytes(4, "little")
    assert bpf.run(program, bytes(data)) == TRAP
    assert arch.name_of(nr) == "x32:write"


@pytest.mark.parametrize("arch", ARCHES, ids=lambda a: a.name)
@given(nr=st.integers(0, 1023))
def test_any_call_off_the_list_traps(arch: seccomp.Arch, nr: int) -> None:
    rules = seccomp.policy(arch, CONSOLE)
    allowed = {arch.number(r.syscall) for r in rules if not r.checks}
    checked = {arch.number(r.syscall) for r in rules if r.checks}
    program = seccomp.compile_filter(arch, rules)
    data = bytearray(seccomp.seccomp_data(arch, "write", 99))
    data[0:4] = nr.to_bytes(4, "little")
    verdict = bpf.run(program, bytes(data))
    if nr in allowed:
        assert verdict == ALLOW
    elif nr not in checked:
        assert verdict == TRAP


def test_a_report_line_names_the_call() -> None:
    arch = seccomp.ARCHES["x86_64"]
    parsed = seccomp.parse_report(b"SIGSYS 59 %d" % arch.audit)
    assert parsed == (59, arch.audit)
    assert seccomp.arch_by_audit(parsed[1]) is arch
    assert arch.name_of(parsed[0]) == "execve"
    assert seccomp.parse_report(b"hello") is None
    assert seccomp.parse_report(b"SIGSYS x y") is None


def test_the_assembler_refuses_what_it_cannot_encode() -> None:
    far = bpf.Label("far")
    items: list[bpf.Item] = [bpf.jeq(1, jt=far), *[bpf.ret(0)] * 300, far, bpf.ret(1)]
    with pytest.raises(ValueError, match="spans"):
        bpf.assemble(items)
    with pytest.raises(ValueError, match="not defined"):
        bpf.assemble([bpf.jeq(1, jt=bpf.Label("nowhere")), bpf.ret(0)])
    back = bpf.Label("back")
    with pytest.raises(ValueError, match="spans"):
        bpf.assemble([back, bpf.ret(0), bpf.jeq(1, jt=back)])
