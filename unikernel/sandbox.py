"""Closing the sandbox: the order in which a process gives up the world.

Each step removes something the next ones no longer need: the file-system
root and root's identity (chroot, setgid, setuid; only when started as
root), then the resources (rlimits), then privilege forever
(no_new_privs), then the file system and network (Landlock), then every
system call not on the list (seccomp). After `close` returns the process
can reach nothing but the descriptors it already holds, the console, and
TCP connect to one port.
"""

from __future__ import annotations

import os
import resource
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from unikernel import landlock, seccomp

NOBODY = 65534
LAYERS = frozenset({"landlock", "seccomp"})


@dataclass(frozen=True)
class Plan:
    memory_bytes: int
    open_files: int
    # TCP connect is allowed to these ports only: the connect-back port (and our own
    # 10000/10002 when self-talk is on).
    connect_ports: tuple[int, ...]
    # write(2) is allowed to these: stdout, stderr, the launcher's report pipe.
    console_fds: tuple[int, ...]
    # An empty directory to chroot into when started as root.
    empty_root: Path | None
    report_fd: int
    # Listeners whose accept(2) the tender makes (the connect-back port's).
    tender_listeners: tuple[int, ...] = ()
    uid: int = NOBODY
    gid: int = NOBODY
    # Which of the kernel layers to apply; tests take one away to see the other hold alone.
    layers: frozenset[str] = LAYERS


@dataclass(frozen=True)
class Report:
    root: bool
    chroot: str | None
    uid: int
    gid: int
    rlimits: dict[str, int]
    no_new_privs: bool
    landlock: str
    seccomp_syscalls: tuple[str, ...] = field(default=())
    # The filter's listener fd, for the tender to take (-1: no filter).
    listener_fd: int = -1

    def to_json(self) -> dict[str, object]:
        return {
            "root": self.root,
            "chroot": self.chroot,
            "uid": self.uid,
            "gid": self.gid,
            "rlimits": self.rlimits,
            "no_new_privs": self.no_new_privs,
            "landlock": self.landlock,
            "seccomp_syscalls": list(self.seccomp_syscalls),
        }


PR_SET_DUMPABLE = 4


def _drop_identity(plan: Plan) -> str | None:
    if os.geteuid() != 0:
        # The tender reads connect's address from our memory (process_vm_readv) and takes
        # the filter's listener (pidfd_getfd); without root it needs us dumpable, as any
        # process its user starts without a change of identity is.
        seccomp.prctl(PR_SET_DUMPABLE, 1)
        return None
    if plan.empty_root is None:
        raise ValueError("running as root needs an empty directory to chroot into")
    # Enter the directory and remove it before making it the root: the new root is
    # then a deleted, empty directory in which nothing can be created, and nothing is
    # left behind however the launcher ends.
    os.chdir(plan.empty_root)
    os.rmdir(plan.empty_root)
    os.chroot(".")
    os.chdir("/")
    # Groups before gid before uid: each later step removes the right to do the earlier.
    os.setgroups([])
    os.setresgid(plan.gid, plan.gid, plan.gid)
    os.setresuid(plan.uid, plan.uid, plan.uid)
    if os.geteuid() == 0 or os.getegid() == 0:
        raise PermissionError("still root after dropping identity")
    return str(plan.empty_root)


def _limit(plan: Plan) -> dict[str, int]:
    limits = {
        "RLIMIT_AS": plan.memory_bytes,
        "RLIMIT_NOFILE": plan.open_files,
        # No new processes: unprivileged, fork fails with EAGAIN even before seccomp.
        "RLIMIT_NPROC": 0,
        # A crash leaves no core with the secret in it. (Not RLIMIT_FSIZE: the console
        # may be a regular file, and Landlock already forbids opening any other.)
        "RLIMIT_CORE": 0,
    }
    for name, value in limits.items():
        resource.setrlimit(getattr(resource, name), (value, value))
    return limits


def close(plan: Plan, *, syscalls: Sequence[seccomp.Rule] | None = None) -> Report:
    """Apply every layer in order; raises (and the launcher refuses to run) on any failure."""
    chroot = _drop_identity(plan)
    # Read now: getuid is not on the list once the filter is in.
    uid, gid = os.getuid(), os.getgid()
    limits = _limit(plan)
    seccomp.set_no_new_privs()
    if "landlock" in plan.layers:
        landlock_state = landlock.restrict_self(plan.connect_ports).describe()
    else:
        landlock_state = "not applied (test layer selection)"
    names: tuple[str, ...] = ()
    listener_fd = -1
    if "seccomp" in plan.layers:
        arch = seccomp.host_arch()
        rules = (
            tuple(syscalls)
            if syscalls is not None
            else seccomp.policy(arch, plan.console_fds, plan.tender_listeners)
        )
        program = seccomp.compile_filter(arch, rules)
        listener_fd = seccomp.install(arch, program)
        names = tuple(dict.fromkeys(rule.syscall for rule in rules))
    return Report(
        root=chroot is not None,
        chroot=chroot,
        uid=uid,
        gid=gid,
        rlimits=limits,
        no_new_privs=True,
        landlock=landlock_state,
        seccomp_syscalls=names,
        listener_fd=listener_fd,
    )
