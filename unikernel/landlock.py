"""Landlock: no file system at all, no bind, TCP connect to the connect-back port only.

A ruleset "handles" the access rights it names; every handled right is
denied unless a rule grants it. We handle every file-system right the
kernel knows and grant none, handle bind and connect and grant connect on
one port, and (ABI 6) scope abstract unix sockets and signals to the
sandbox. Rights a kernel does not know are left out by ABI, so an older
kernel still gets what it can enforce, and the report says what that was
(Documentation/userspace-api/landlock.rst, "Backward and forward
compatibility").
"""

from __future__ import annotations

import ctypes
import errno
import os
from collections.abc import Sequence
from dataclasses import dataclass

# include/uapi/asm-generic/unistd.h: the same numbers on every architecture.
SYS_LANDLOCK_CREATE_RULESET = 444
SYS_LANDLOCK_ADD_RULE = 445
SYS_LANDLOCK_RESTRICT_SELF = 446

# include/uapi/linux/landlock.h
LANDLOCK_CREATE_RULESET_VERSION = 1 << 0
LANDLOCK_RULE_NET_PORT = 2
ACCESS_FS_BY_ABI = {
    1: (1 << 13) - 1,  # EXECUTE .. MAKE_SYM
    2: 1 << 13,  # REFER
    3: 1 << 14,  # TRUNCATE
    5: 1 << 15,  # IOCTL_DEV
}
ACCESS_NET_BIND_TCP = 1 << 0
ACCESS_NET_CONNECT_TCP = 1 << 1
SCOPE_ABSTRACT_UNIX_SOCKET = 1 << 0
SCOPE_SIGNAL = 1 << 1
# The first ABI with network rules.
NET_ABI = 4


class _RulesetAttr(ctypes.Structure):
    _fields_ = [
        ("handled_access_fs", ctypes.c_uint64),
        ("handled_access_net", ctypes.c_uint64),
        ("scoped", ctypes.c_uint64),
    ]


class _NetPortAttr(ctypes.Structure):
    _fields_ = [("allowed_access", ctypes.c_uint64), ("port", ctypes.c_uint64)]


@dataclass(frozen=True)
class Restriction:
    """What was enforced: zero fields mean the kernel could not enforce that part."""

    abi: int
    handled_access_fs: int
    handled_access_net: int
    scoped: int
    connect_ports: tuple[int, ...]

    def describe(self) -> str:
        if self.abi == 0:
            return "landlock unavailable: file system and network rely on seccomp alone"
        parts = [f"landlock ABI {self.abi}", "file system denied"]
        if self.handled_access_net:
            ports = ", ".join(map(str, self.connect_ports)) or "none"
            parts.append(f"bind denied, connect only to port {ports}")
        else:
            parts.append("network not restricted by Landlock")
        if self.scoped:
            parts.append("signals and abstract sockets scoped")
        return "; ".join(parts)


def _libc() -> ctypes.CDLL:
    """libc with errno kept, for the calls Python's os module does not wrap."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    return libc


def abi_version() -> int:
    """The kernel's Landlock ABI, or 0 when it has none or it is disabled."""
    rc = _libc().syscall(
        ctypes.c_long(SYS_LANDLOCK_CREATE_RULESET),
        None,
        ctypes.c_size_t(0),
        ctypes.c_uint32(LANDLOCK_CREATE_RULESET_VERSION),
    )
    if rc < 0:
        if ctypes.get_errno() in (errno.ENOSYS, errno.EOPNOTSUPP):
            return 0
        e = ctypes.get_errno()
        raise OSError(e, f"landlock_create_ruleset(VERSION): {os.strerror(e)}")
    return int(rc)


def ruleset_for(abi: int, connect_ports: Sequence[int] | None) -> Restriction:
    """The rights to handle at `abi`: pure, so tests can check degradation by ABI.
    `connect_ports` None leaves the network unhandled (the manifest allowed it)."""
    fs = 0
    for since, bits in ACCESS_FS_BY_ABI.items():
        if abi >= since:
            fs |= bits
    net = ACCESS_NET_BIND_TCP | ACCESS_NET_CONNECT_TCP
    if abi < NET_ABI or connect_ports is None:
        net = 0
    scoped = SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL if abi >= 6 else 0
    ports = tuple(sorted(set(connect_ports or ()))) if net else ()
    return Restriction(abi, fs, net, scoped, ports)


def restrict_self(connect_ports: Sequence[int] | None) -> Restriction:
    """Enforce the ruleset on this thread and its future children; needs no_new_privs first."""
    abi = abi_version()
    plan = ruleset_for(abi, connect_ports)
    if abi == 0:
        return plan
    libc = _libc()
    attr = _RulesetAttr(plan.handled_access_fs, plan.handled_access_net, plan.scoped)
    # The struct grew with the ABI; a kernel refuses a size with unknown non-zero fields.
    size = 8 if abi < 4 else 16 if abi < 6 else 24
    fd = libc.syscall(
        ctypes.c_long(SYS_LANDLOCK_CREATE_RULESET),
        ctypes.byref(attr),
        ctypes.c_size_t(size),
        ctypes.c_uint32(0),
    )
    if fd < 0:
        e = ctypes.get_errno()
        raise OSError(e, f"landlock_create_ruleset: {os.strerror(e)}")
    try:
        for port in plan.connect_ports:
            rule = _NetPortAttr(ACCESS_NET_CONNECT_TCP, port)
            rc = libc.syscall(
                ctypes.c_long(SYS_LANDLOCK_ADD_RULE),
                ctypes.c_int(fd),
                ctypes.c_int(LANDLOCK_RULE_NET_PORT),
                ctypes.byref(rule),
                ctypes.c_uint32(0),
            )
            if rc != 0:
                e = ctypes.get_errno()
                raise OSError(e, f"landlock_add_rule(port {port}): {os.strerror(e)}")
        rc = libc.syscall(
            ctypes.c_long(SYS_LANDLOCK_RESTRICT_SELF), ctypes.c_int(fd), ctypes.c_uint32(0)
        )
        if rc != 0:
            e = ctypes.get_errno()
            raise OSError(e, f"landlock_restrict_self: {os.strerror(e)}")
    finally:
        os.close(fd)
    return plan
