"""Closing the sandbox: the order in which a process gives up the world.

Each step removes something the next ones no longer need: the file-system
root and root's identity (chroot, setgid, setuid; only when started as
root), then life beyond the tender (the parent-death signal), then the
resources (rlimits), then privilege forever
(no_new_privs), then the file system and network (Landlock), then every
system call not on the list (seccomp). After `close` returns the process
can reach nothing but the descriptors it already holds, the console, and
TCP connect to one port.
"""

from __future__ import annotations

import ctypes
import os
import resource
import signal
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pinata.lifetime import end_with_parent
from unikernel import bpf, landlock, seccomp
from unikernel import manifest as mf

NOBODY = 65534
# Every layer the sandbox is made of; a missing one refuses the launch unless the
# manifest's allow_weaker names it. landlock-net is Landlock's network rules (ABI 4);
# identity is the chroot and uid 65534 (as root, or in an unprivileged user namespace).
LAYERS = frozenset(mf.LAYERS)


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
    # The process that forked us and answers the filter's notifications.
    tender_pid: int
    # Listeners whose accept(2) the tender makes (the connect-back port's).
    tender_listeners: tuple[int, ...] = ()
    uid: int = NOBODY
    gid: int = NOBODY
    # The layers to apply: all of them, less what the kernel lacks and the manifest
    # allows to lack (and what a test takes away to see another hold alone).
    layers: frozenset[str] = LAYERS
    # Each layer left out, and why.
    off: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Report:
    root: bool
    chroot: str | None
    uid: int
    gid: int
    rlimits: dict[str, int]
    no_new_privs: bool
    landlock: str
    user_namespace: bool = False
    # Layers not applied, and why: what the startup line and /software must say.
    off: Mapping[str, str] = field(default_factory=dict)
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
            "user_namespace": self.user_namespace,
            "off": dict(self.off),
        }


PR_SET_DUMPABLE = 4
CLONE_NEWUSER = 0x10000000
_LINUX_CAPABILITY_VERSION_3 = 0x20080522


def _enter_chroot(empty_root: Path) -> None:
    # Enter the directory and remove it before making it the root: the new root is
    # then a deleted, empty directory in which nothing can be created, and nothing is
    # left behind however the launcher ends.
    os.chdir(empty_root)
    os.rmdir(empty_root)
    os.chroot(".")
    os.chdir("/")


def _unshare_user() -> None:
    """A new user namespace in which our own uid and gid are 65534, with every capability
    in it (and none outside): enough to chroot, never enough to reach anything else."""
    uid, gid = os.getuid(), os.getgid()
    if landlock._libc().unshare(CLONE_NEWUSER) != 0:
        e = ctypes.get_errno()
        raise OSError(e, f"unshare(CLONE_NEWUSER): {os.strerror(e)}")
    # user_namespaces(7): setgroups must be denied before an unprivileged gid_map.
    for name, text in (("setgroups", "deny"), ("uid_map", f"{NOBODY} {uid} 1"),
                       ("gid_map", f"{NOBODY} {gid} 1")):
        with open(f"/proc/self/{name}", "w") as f:
            f.write(text)


def _drop_capabilities() -> None:
    header = (ctypes.c_uint32 * 2)(_LINUX_CAPABILITY_VERSION_3, 0)
    data = (ctypes.c_uint32 * 6)()  # effective, permitted, inheritable; two words each
    if landlock._libc().capset(ctypes.byref(header), ctypes.byref(data)) != 0:
        e = ctypes.get_errno()
        raise OSError(e, f"capset: {os.strerror(e)}")


def _drop_identity(plan: Plan) -> str | None:
    """chroot into the empty root and become 65534: as root, for real; otherwise in an
    unprivileged user namespace. None when the plan leaves identity alone."""
    if os.geteuid() != 0:
        # The tender reads connect's address from our memory (process_vm_readv) and takes
        # the filter's listener (pidfd_getfd); without root it needs us dumpable, as any
        # process its user starts without a change of identity is. (The user namespace,
        # entered by its owner, keeps it so.)
        seccomp.prctl(PR_SET_DUMPABLE, 1)
        if "identity" not in plan.layers or plan.empty_root is None:
            return None
        _unshare_user()
        _enter_chroot(plan.empty_root)
        _drop_capabilities()
        return str(plan.empty_root)
    if "identity" not in plan.layers:
        return None
    if plan.empty_root is None:
        raise ValueError("running as root needs an empty directory to chroot into")
    _enter_chroot(plan.empty_root)
    # Groups before gid before uid: each later step removes the right to do the earlier.
    os.setgroups([])
    os.setresgid(plan.gid, plan.gid, plan.gid)
    os.setresuid(plan.uid, plan.uid, plan.uid)
    if os.geteuid() == 0 or os.getegid() == 0:
        raise PermissionError("still root after dropping identity")
    return str(plan.empty_root)


# --- what this kernel and these privileges offer ------------------------------------


def _userns_available() -> str | None:
    """None if this process can make an unprivileged user namespace, else why not."""
    pid = os.fork()
    if pid == 0:
        os._exit(0 if landlock._libc().unshare(CLONE_NEWUSER) == 0 else 1)
    _, status = os.waitpid(pid, 0)
    if os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0:
        return None
    return "not root, and the kernel refuses an unprivileged user namespace"


def _seccomp_missing() -> str | None:
    try:
        with open("/proc/sys/kernel/seccomp/actions_avail") as f:
            actions = set(f.read().split())
    except OSError:
        return "no seccomp filter support in this kernel"
    lacking = {"user_notif", "kill_process"} - actions
    if lacking:
        return f"seccomp lacks {', '.join(sorted(lacking))}"
    # The flags themselves (TSYNC with a listener needs Linux 5.7): try them, in a child.
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            seccomp.set_no_new_privs()
            allow_all = bpf.assemble([bpf.ret(seccomp.SECCOMP_RET_ALLOW)])
            seccomp.install(seccomp.host_arch(), allow_all)
            code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    if os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0:
        return None
    return "seccomp refuses a filter with TSYNC and a user-notification listener"


def survey() -> dict[str, str]:
    """Each layer this kernel and these privileges cannot give, with the reason."""
    missing: dict[str, str] = {}
    reason = _seccomp_missing()
    if reason:
        missing["seccomp"] = reason
    abi = landlock.abi_version()
    if abi == 0:
        missing["landlock"] = "no Landlock in this kernel (or it is disabled)"
    if abi < landlock.NET_ABI:
        missing["landlock-net"] = f"Landlock ABI {abi} < {landlock.NET_ABI}: no network rules"
    if os.geteuid() != 0:
        reason = _userns_available()
        if reason:
            missing["identity"] = reason
    return missing


def refuse_weaker(missing: Mapping[str, str], allowed: Iterable[str]) -> None:
    """Raise WeakerThanPromised naming every missing layer the manifest did not allow."""
    refused = {layer: why for layer, why in missing.items() if layer not in set(allowed)}
    if refused:
        raise WeakerThanPromised(refused)


class WeakerThanPromised(Exception):
    """The sandbox would lack layers the manifest does not allow it to lack."""

    def __init__(self, missing: Mapping[str, str]) -> None:
        names = ", ".join(f"{layer} ({why})" for layer, why in sorted(missing.items()))
        quoted = ", ".join(f'"{layer}"' for layer in sorted(missing))
        super().__init__(
            f"refused: the sandbox would be weaker than promised, missing {names}; "
            f"to run anyway, the manifest must say allow_weaker = [{quoted}]"
        )
        self.missing = dict(missing)


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
    root = os.geteuid() == 0
    chroot = _drop_identity(plan)
    # Without its tender nothing answers the filter's notifications: the guest
    # ends with it. After the identity change, which would clear this.
    end_with_parent(plan.tender_pid, signal.SIGKILL)
    # Read now: getuid is not on the list once the filter is in.
    uid, gid = os.getuid(), os.getgid()
    limits = _limit(plan)
    seccomp.set_no_new_privs()
    if "landlock" in plan.layers:
        ports = plan.connect_ports if "landlock-net" in plan.layers else None
        landlock_state = landlock.restrict_self(ports).describe()
    else:
        landlock_state = f"off: {plan.off.get('landlock', 'not applied')}"
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
        root=root,
        user_namespace=chroot is not None and not root,
        off=dict(plan.off),
        chroot=chroot,
        uid=uid,
        gid=gid,
        rlimits=limits,
        no_new_privs=True,
        landlock=landlock_state,
        seccomp_syscalls=names,
        listener_fd=listener_fd,
    )
