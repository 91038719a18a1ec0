"""Seccomp user notification: the tender answers the calls the filter does not decide.

A call the filter sends to user space (SECCOMP_RET_USER_NOTIF) blocks the
guest's thread until the tender, holding the filter's listener fd, answers:
carry on with the call, fail it with an errno, or complete it with an fd the
tender installs (Documentation/userspace-api/seccomp_filter.rst, "Userspace
Notification"). No code runs in the guest to report a refused call, so no
signal handler is involved: the tender reads the call's number and arguments
here and kills the guest.

A call the tender allows after reading its arguments from the guest's
memory is not answered CONTINUE, which would have the kernel read that
memory again (another thread could have rewritten it in between): the
tender makes the call itself, on a copy of the guest's descriptor, with the
bytes it checked, and answers with the result.
"""

from __future__ import annotations

import ctypes
import errno
import os
from dataclasses import dataclass

# linux/seccomp.h
SECCOMP_RET_USER_NOTIF = 0x7FC00000
SECCOMP_FILTER_FLAG_NEW_LISTENER = 1 << 3
SECCOMP_FILTER_FLAG_TSYNC_ESRCH = 1 << 4
SECCOMP_ADDFD_FLAG_SEND = 1 << 1
# _IOWR('!', 0, struct seccomp_notif), _IOWR('!', 1, struct seccomp_notif_resp),
# _IOW('!', 2, __u64), _IOW('!', 3, struct seccomp_notif_addfd)
IOCTL_NOTIF_RECV = 0xC0502100
IOCTL_NOTIF_SEND = 0xC0182101
IOCTL_NOTIF_ID_VALID = 0x40082102
IOCTL_NOTIF_ADDFD = 0x40182103

# include/uapi/asm-generic/unistd.h: the same numbers on x86_64 and aarch64.
SYS_PIDFD_OPEN = 434
SYS_PIDFD_GETFD = 438
MAX_MEMORY_READ = 4096


class _Data(ctypes.Structure):
    _fields_ = [
        ("nr", ctypes.c_int),
        ("arch", ctypes.c_uint32),
        ("instruction_pointer", ctypes.c_uint64),
        ("args", ctypes.c_uint64 * 6),
    ]


class _Notif(ctypes.Structure):
    _fields_ = [
        ("id", ctypes.c_uint64),
        ("pid", ctypes.c_uint32),
        ("flags", ctypes.c_uint32),
        ("data", _Data),
    ]


class _Resp(ctypes.Structure):
    _fields_ = [
        ("id", ctypes.c_uint64),
        ("val", ctypes.c_int64),
        ("error", ctypes.c_int32),
        ("flags", ctypes.c_uint32),
    ]


class _AddFd(ctypes.Structure):
    _fields_ = [
        ("id", ctypes.c_uint64),
        ("flags", ctypes.c_uint32),
        ("srcfd", ctypes.c_uint32),
        ("newfd", ctypes.c_uint32),
        ("newfd_flags", ctypes.c_uint32),
    ]


class _IoVec(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]


@dataclass(frozen=True)
class Call:
    """One call waiting for an answer: its cookie, the caller, nr, audit arch, arguments."""

    id: int
    pid: int
    nr: int
    arch: int
    args: tuple[int, ...]


def _libc() -> ctypes.CDLL:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    libc.ioctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_void_p]
    libc.process_vm_readv.restype = ctypes.c_ssize_t
    libc.process_vm_writev.restype = ctypes.c_ssize_t
    return libc


def _fail(what: str) -> OSError:
    e = ctypes.get_errno()
    return OSError(e, f"{what}: {os.strerror(e)}")


def take_fd(pid: int, fd: int) -> int:
    """A copy of fd `fd` of process `pid` (pidfd_getfd), for the tender to hold.

    Raises OSError when the kernel refuses (no pidfd_getfd before 5.6, or no
    ptrace right over the guest).
    """
    libc = _libc()
    pidfd = libc.syscall(ctypes.c_long(SYS_PIDFD_OPEN), ctypes.c_int(pid), ctypes.c_uint(0))
    if pidfd < 0:
        raise _fail("pidfd_open")
    try:
        copy = libc.syscall(
            ctypes.c_long(SYS_PIDFD_GETFD), ctypes.c_int(pidfd), ctypes.c_int(fd), ctypes.c_uint(0)
        )
        if copy < 0:
            raise _fail("pidfd_getfd")
        return int(copy)
    finally:
        os.close(pidfd)


def receive(listener: int) -> Call | None:
    """The next waiting call; None when it went away before we read it (ENOENT)."""
    notif = _Notif()  # the kernel refuses a buffer that is not zeroed
    if _libc().ioctl(listener, IOCTL_NOTIF_RECV, ctypes.byref(notif)) != 0:
        if ctypes.get_errno() in (errno.ENOENT, errno.EINTR):
            return None
        raise _fail("SECCOMP_IOCTL_NOTIF_RECV")
    d = notif.data
    return Call(notif.id, notif.pid, d.nr, d.arch, tuple(int(a) for a in d.args))


def still_waiting(listener: int, call: Call) -> bool:
    """The call is still pending: the pid we read memory from is still the caller."""
    cookie = ctypes.c_uint64(call.id)
    return bool(_libc().ioctl(listener, IOCTL_NOTIF_ID_VALID, ctypes.byref(cookie)) == 0)


def _respond(listener: int, call: Call, *, error: int = 0) -> None:
    resp = _Resp(call.id, 0, -error, 0)
    if _libc().ioctl(listener, IOCTL_NOTIF_SEND, ctypes.byref(resp)) != 0:
        if ctypes.get_errno() == errno.ENOENT:  # the caller died meanwhile
            return
        raise _fail("SECCOMP_IOCTL_NOTIF_SEND")


def answer(listener: int, call: Call, error: int) -> None:
    """Complete the call with result 0, or fail it with `error` (an errno) if non-zero."""
    _respond(listener, call, error=error)


def connect(fd: int, sockaddr: bytes) -> int:
    """connect(2) on `fd` with exactly these sockaddr bytes; 0 or the errno (EINPROGRESS
    for a non-blocking socket, as its owner expects)."""
    libc = _libc()
    libc.connect.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
    if libc.connect(fd, sockaddr, len(sockaddr)) == 0:
        return 0
    return ctypes.get_errno() or errno.EIO


def refuse(listener: int, call: Call, error: int) -> None:
    """Fail the call with `error` (an errno)."""
    _respond(listener, call, error=error)


def complete_with_fd(listener: int, call: Call, fd: int, *, cloexec: bool) -> None:
    """Install `fd` in the caller and return its number as the call's result."""
    addfd = _AddFd(call.id, SECCOMP_ADDFD_FLAG_SEND, fd, 0, os.O_CLOEXEC if cloexec else 0)
    if _libc().ioctl(listener, IOCTL_NOTIF_ADDFD, ctypes.byref(addfd)) < 0:
        if ctypes.get_errno() == errno.ENOENT:
            return
        raise _fail("SECCOMP_IOCTL_NOTIF_ADDFD")


def read_memory(pid: int, address: int, length: int) -> bytes:
    """`length` bytes (at most 4 KiB) of the guest's memory; OSError if unreadable."""
    length = min(length, MAX_MEMORY_READ)
    buf = ctypes.create_string_buffer(length)
    local = _IoVec(ctypes.cast(buf, ctypes.c_void_p), length)
    remote = _IoVec(address, length)
    got = _libc().process_vm_readv(
        pid, ctypes.byref(local), 1, ctypes.byref(remote), 1, ctypes.c_ulong(0)
    )
    if got != length:
        raise _fail("process_vm_readv")
    return buf.raw


def write_memory(pid: int, address: int, data: bytes) -> None:
    """Write `data` into the guest's memory (an out-parameter of the call it waits in)."""
    buf = ctypes.create_string_buffer(data, len(data))
    local = _IoVec(ctypes.cast(buf, ctypes.c_void_p), len(data))
    remote = _IoVec(address, len(data))
    put = _libc().process_vm_writev(
        pid, ctypes.byref(local), 1, ctypes.byref(remote), 1, ctypes.c_ulong(0)
    )
    if put != len(data):
        raise _fail("process_vm_writev")
