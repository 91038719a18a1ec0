"""The filter's decisions, read by a BPF interpreter, for every rule and its arguments."""

from __future__ import annotations

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
DENY = seccomp.DENY
KILL = seccomp.SECCOMP_RET_KILL_PROCESS


@pytest.mark.parametrize("arch", ARCHES, ids=lambda a: a.name)
def test_the_allowlist_stays_within_thirty_calls(arch: seccomp.Arch) -> None:
    rules = seccomp.policy(arch, CONSOLE)
    assert len({r.syscall for r in rules}) <= 30
    assert all(rule.reason for rule in rules), "every allowed call says why"
    program = seccomp.compile_filter(arch, rules)
    assert len(program) // 8 < 200


@pytest.mark.parametrize("arch", ARCHES, ids=lambda a: a.name)
@pytest.mark.parametrize(
    "name", ["openat", "execve", "clone", "bind", "listen", "prlimit64", "ptrace", "chroot",
             "setuid", "kill", "mprotect", "unshare", "getdents64", "seccomp"]
)
def test_what_a_compromised_unikernel_would_call_is_denied(arch: seccomp.Arch, name: str) -> None:
    assert decide(arch, name) == DENY


@pytest.mark.parametrize("arch", ARCHES, ids=lambda a: a.name)
def test_write_is_allowed_only_to_the_console_fds(arch: seccomp.Arch) -> None:
    for fd in CONSOLE:
        assert decide(arch, "write", fd, 0, 10) == ALLOW
    for fd in (0, 3, 5, 8, 1 << 20):
        assert decide(arch, "write", fd, 0, 10) == DENY


@pytest.mark.parametrize("arch", ARCHES, ids=lambda a: a.name)
def test_socket_is_allowed_only_for_ip_streams(arch: seccomp.Arch) -> None:
    flags = seccomp.SOCK_TYPE_FLAGS
    for family in (socket.AF_INET, socket.AF_INET6):
        assert decide(arch, "socket", family, socket.SOCK_STREAM) == ALLOW
        assert decide(arch, "socket", family, socket.SOCK_STREAM | flags) == ALLOW
        assert decide(arch, "socket", family, socket.SOCK_DGRAM) == DENY
        assert decide(arch, "socket", family, socket.SOCK_RAW) == DENY
    for family in (socket.AF_UNIX, socket.AF_PACKET, socket.AF_NETLINK):
        assert decide(arch, "socket", family, socket.SOCK_STREAM) == DENY


@pytest.mark.parametrize("arch", ARCHES, ids=lambda a: a.name)
def test_nothing_is_mapped_executable(arch: seccomp.Arch) -> None:
    prot_rw = 0x1 | 0x2
    assert decide(arch, "mmap", 0, 4096, prot_rw, 0x22) == ALLOW
    assert decide(arch, "mmap", 0, 4096, prot_rw | seccomp.PROT_EXEC, 0x22) == DENY


@pytest.mark.parametrize("arch", ARCHES, ids=lambda a: a.name)
def test_ioctl_and_fcntl_are_narrowed_and_fstat_is_gone(arch: seccomp.Arch) -> None:
    assert decide(arch, "ioctl", 3, seccomp.FIONBIO) == ALLOW
    assert decide(arch, "ioctl", 3, 0x5412) == DENY  # TIOCSTI: type into a terminal
    assert decide(arch, "fcntl", 3, seccomp.F_SETFL) == ALLOW
    assert decide(arch, "fcntl", 3, 0) == DENY  # F_DUPFD
    # newfstatat(dirfd, "/etc/shadow", AT_EMPTY_PATH) ignores dirfd: no stat at all.
    assert decide(arch, "newfstatat", 3, 0, 0, 0x1000) == DENY


MPTCP = 262


@pytest.mark.parametrize("arch", ARCHES, ids=lambda a: a.name)
def test_socket_protocol_is_tcp_only(arch: seccomp.Arch) -> None:
    for family in (socket.AF_INET, socket.AF_INET6):
        for proto in (0, socket.IPPROTO_TCP):
            assert decide(arch, "socket", family, socket.SOCK_STREAM, proto) == ALLOW
        for proto in (MPTCP, socket.IPPROTO_UDP, socket.IPPROTO_SCTP, 1 << 32 | MPTCP):
            assert decide(arch, "socket", family, socket.SOCK_STREAM, proto) == DENY
    for family in (socket.AF_VSOCK, socket.AF_ALG, socket.AF_PACKET, socket.AF_NETLINK):
        assert decide(arch, "socket", family, socket.SOCK_STREAM, 0) == DENY


@pytest.mark.parametrize("arch", ARCHES, ids=lambda a: a.name)
def test_socketpair_is_the_wakeup_pair_only(arch: seccomp.Arch) -> None:
    flags = seccomp.SOCK_TYPE_FLAGS
    assert decide(arch, "socketpair", socket.AF_UNIX, socket.SOCK_STREAM | flags, 0) == ALLOW
    assert decide(arch, "socketpair", socket.AF_UNIX, socket.SOCK_DGRAM, 0) == DENY
    assert decide(arch, "socketpair", socket.AF_UNIX, socket.SOCK_SEQPACKET, 0) == DENY
    assert decide(arch, "socketpair", socket.AF_INET, socket.SOCK_STREAM, 0) == DENY
    assert decide(arch, "socketpair", socket.AF_UNIX, socket.SOCK_STREAM, 1) == DENY


@pytest.mark.parametrize("arch", ARCHES, ids=lambda a: a.name)
def test_sendto_and_recvfrom_take_no_address(arch: seccomp.Arch) -> None:
    address = 0x7FFD_1234_5000
    assert decide(arch, "sendto", 5, 0, 10, 0, 0, 0) == ALLOW
    assert decide(arch, "sendto", 5, 0, 10, socket.MSG_NOSIGNAL, 0, 0) == ALLOW
    assert decide(arch, "sendto", 5, 0, 10, 0, address, 16) == DENY
    # A pointer whose low half is zero is still a pointer.
    assert decide(arch, "sendto", 5, 0, 10, 0, 0x7FFD_0000_0000, 16) == DENY
    assert decide(arch, "sendto", 5, 0, 10, seccomp.MSG_FASTOPEN, 0, 0) == DENY
    assert decide(arch, "recvfrom", 5, 0, 10, 0, 0, 0) == ALLOW
    assert decide(arch, "recvfrom", 5, 0, 10, 0, address, 0) == DENY


@pytest.mark.parametrize("arch", ARCHES, ids=lambda a: a.name)
def test_setsockopt_only_the_pairs_in_use(arch: seccomp.Arch) -> None:
    tcp, sol = socket.IPPROTO_TCP, socket.SOL_SOCKET
    for level, option in ((tcp, socket.TCP_NODELAY), (tcp, seccomp.TCP_NOTSENT_LOWAT),
                          (sol, socket.SO_SNDBUF), (sol, socket.SO_RCVBUF)):
        assert decide(arch, "setsockopt", 5, level, option) == ALLOW
    tcp_fastopen_connect, tcp_ulp, so_bindtodevice = 30, 31, 25
    for level, option in ((tcp, tcp_fastopen_connect), (tcp, tcp_ulp),
                          (sol, so_bindtodevice), (sol, socket.TCP_NODELAY),
                          (tcp, socket.SO_SNDBUF), (socket.IPPROTO_IP, 24)):
        assert decide(arch, "setsockopt", 5, level, option) == DENY
    assert decide(arch, "getsockopt", 5, sol, socket.SO_ERROR) == ALLOW
    assert decide(arch, "getsockopt", 5, tcp, 11) == DENY  # TCP_INFO


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
    assert bpf.run(program, bytes(data)) == DENY
    assert arch.name_of(nr) == "x32:write"


@pytest.mark.parametrize("arch", ARCHES, ids=lambda a: a.name)
@given(nr=st.integers(0, 1023))
def test_any_call_off_the_list_is_denied(arch: seccomp.Arch, nr: int) -> None:
    rules = seccomp.policy(arch, CONSOLE)
    allowed = {arch.number(r.syscall) for r in rules if not r.checks and not r.tender}
    checked = {arch.number(r.syscall) for r in rules if r.checks or r.tender}
    program = seccomp.compile_filter(arch, rules)
    data = bytearray(seccomp.seccomp_data(arch, "write", 99))
    data[0:4] = nr.to_bytes(4, "little")
    verdict = bpf.run(program, bytes(data))
    if nr in allowed:
        assert verdict == ALLOW
    elif nr not in checked:
        assert verdict == DENY


@pytest.mark.parametrize("arch", ARCHES, ids=lambda a: a.name)
def test_connect_and_the_connect_back_accept_go_to_the_tender(arch: seccomp.Arch) -> None:
    program = seccomp.compile_filter(arch, seccomp.policy(arch, CONSOLE, (9,)))
    run = lambda name, *args: bpf.run(program, seccomp.seccomp_data(arch, name, *args))  # noqa: E731
    assert run("connect", 5, 0x7FFD_0000_1000, 16) == seccomp.TENDER
    assert run("accept4", 9, 0, 0, 0) == seccomp.TENDER
    assert run("accept4", 8, 0, 0, 0) == ALLOW
    assert seccomp.TENDER != DENY and seccomp.TENDER & 0xFFFF0000 == DENY


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


def test_the_figures_the_readme_gives() -> None:
    """unikernel/README.md: 27 system calls, 144 BPF instructions on x86-64."""
    arch = seccomp.ARCHES["x86_64"]
    rules = seccomp.policy(arch, CONSOLE, (9,))
    assert len({r.syscall for r in rules}) == 27
    assert len(seccomp.compile_filter(arch, rules)) // 8 == 144
