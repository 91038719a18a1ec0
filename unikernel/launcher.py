"""The tender: open what the manifest names, close the sandbox, run the unikernel.

The launcher process does everything that needs the world: it reads the
manifest, binds the listeners, reads the boot files, builds the settings
and imports every module the unikernel will run. Then it forks; the child
closes the sandbox around itself (`sandbox.close`) and runs the entry
point on the preopened sockets, while the parent waits, forwards SIGINT
and SIGTERM, and reports how the unikernel ended, naming the system call
when the filter stopped it.

Output on standard output is one JSON object per line (`event`: listening,
sandbox, probe, exit); human-readable reports go to standard error.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import ipaddress
import json
import os
import platform
import shutil
import signal
import socket
import sys
import tempfile
import time
import types
from collections.abc import Iterator, Mapping, Sequence
from importlib import abc as importlib_abc
from pathlib import Path
from typing import TYPE_CHECKING

from unikernel import manifest as mf
from unikernel import notify, probe, sandbox, seccomp, tender

if TYPE_CHECKING:
    from pinata.appliance.settings import ApplianceSettings
    from pinata.appliance.shared_counters import WorkerView

LISTEN_BACKLOG = 128


def say(event: str, **fields: object) -> None:
    """One event, in one write(2): the tender and the unikernel share the console, and a
    pipe keeps a write of up to PIPE_BUF bytes whole."""
    line = json.dumps({"event": event, **fields}, sort_keys=True) + "\n"
    sys.stdout.flush()
    os.write(1, line.encode())


def open_listeners(m: mf.Manifest,
                   ports: Mapping[str, int] | None = None) -> dict[str, socket.socket]:
    """The manifest's listeners, bound and listening; `ports` instead of the manifest's
    (another worker's set on ports already resolved). With workers, SO_REUSEPORT lets
    every worker's set bind the same ports."""
    sockets: dict[str, socket.socket] = {}
    try:
        for role, listener in m.listeners.items():
            family = socket.AF_INET6 if ":" in listener.address else socket.AF_INET
            s = socket.socket(family, socket.SOCK_STREAM)
            sockets[role] = s
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if m.workers > 1:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            s.bind((listener.address, listener.port if ports is None else ports[role]))
            s.listen(LISTEN_BACKLOG)
            # The unikernel may not change them later: fcntl is limited to the fd flags.
            s.setblocking(False)
    except OSError:
        for s in sockets.values():
            s.close()
        raise
    return sockets


def _read_bounded(path: Path, field: str) -> bytes:
    try:
        with path.open("rb") as f:
            data = f.read(mf.MAX_BOOT_FILE_BYTES + 1)
    except OSError as e:
        raise mf.ManifestError(field, f"cannot read {path}: {e.strerror}") from None
    if len(data) > mf.MAX_BOOT_FILE_BYTES:
        raise mf.ManifestError(field, f"{path} is larger than {mf.MAX_BOOT_FILE_BYTES} bytes")
    return data


def read_boot(boot: mf.Boot) -> mf.BootData:
    files = {name: _read_bounded(path, f"boot.{name}") for name, path in boot.files.items()}
    secret = _read_bounded(boot.secret, "boot.secret")
    if not secret:
        raise mf.ManifestError("boot.secret", f"{boot.secret} is empty")
    return mf.BootData(files, secret)


# --- the software list --------------------------------------------------------------


def software_list(path: Path | None) -> tuple[tuple[str, str], ...]:
    """(name, version) pairs for /software: from the image's list, or this environment's.

    In an image the version carries the wheel's hash, so the page shows what
    a researcher can check against the lock file.
    """
    if path is not None:
        doc = json.loads(path.read_text("utf-8"))
        entries = [("Python", str(doc["python"]))]
        for d in doc["distributions"]:
            entries.append((str(d["name"]), f"{d['version']} sha256:{d['sha256']}"))
        entries += [(str(p["name"]), f"{p['version']} (ours)") for p in doc.get("ours", [])]
        return tuple(entries)
    # Imported when needed, as `unikernel.guest` is: the launcher names the appliance's
    # modules only where the appliance entry uses them.
    from pinata.appliance.software import installed_software

    return (("Python", platform.python_version()), *installed_software())


def sandbox_entry(off: Mapping[str, str]) -> tuple[str, str]:
    """The /software line that says whether the sandbox is all it promises."""
    if not off:
        return ("sandbox", "complete: " + ", ".join(sorted(sandbox.LAYERS)))
    parts = "; ".join(f"{layer} off ({why})" for layer, why in sorted(off.items()))
    return ("sandbox", f"weaker than promised: {parts}")


# --- eager imports ------------------------------------------------------------------

# Modules the runtime imports lazily on first use, found by tracing a server under strace.
LAZY_STDLIB = (
    "encodings.idna",
    "encodings.ascii",
    "encodings.latin_1",
    "encodings.utf_8",
    "json",
    "json.decoder",
    "json.encoder",
    "stringprep",
    "unicodedata",
)
# What the appliance runs, imported whole before the filter: our own packages (not the
# benchmarks, not the command line) and the libraries that import lazily as they run.
APPLIANCE_TREES = (
    "pinata.appliance", "pinata.tls", "pinata.x509", "pinata.secret",
    "trio", "h11", "cryptography.hazmat", "cryptography.x509",
)
# Test suites, tools, and other platforms' back ends (which cannot import on Linux); and
# PKCS #7, a format the appliance neither reads nor writes, whose S/MIME support imports
# the email package's policy and header machinery (about 0.5 MiB and 5 ms, issue 18).
SKIP_PARTS = (
    "__main__", "_repl", "_tests", "tests", "testing", "_tools", "_windows", "_kqueue",
    "_wakeup_windows", "_io_kqueue", "_io_windows", "_windows_cffi", "windows",
    "_wait_for_object", "_windows_pipes", "pkcs7",
)


class PreloadError(Exception):
    """A module the unikernel needs could not be imported: the launch stops, naming it."""

    def __init__(self, module: str, error: BaseException) -> None:
        super().__init__(f"refused: cannot import {module} before the sandbox closes "
                         f"({type(error).__name__}: {error})")
        self.module = module


def _import(name: str) -> types.ModuleType:
    try:
        return importlib.import_module(name)
    except Exception as e:
        raise PreloadError(name, e) from e


def _import_tree(package: str) -> int:
    """Import a package and all of its submodules (tests and other platforms excepted)."""
    import pkgutil

    count = 1
    root = _import(package)
    # Not pkgutil.walk_packages: it imports every subpackage to look inside, skipped or not
    # (trio.testing would bring pytest in).
    for info in pkgutil.iter_modules(getattr(root, "__path__", ()), prefix=f"{package}."):
        if info.name.rpartition(".")[2] in SKIP_PARTS:
            continue
        count += _import_tree(info.name) if info.ispkg else bool(_import(info.name))
    return count


def preload(entry: str) -> int:
    """Import everything the entry point will ever run; returns how many modules are loaded.

    Raises PreloadError naming the first module that fails to import.
    """
    for name in LAZY_STDLIB:
        _import(name)
    if entry == "appliance":
        for package in APPLIANCE_TREES:
            _import_tree(package)
        # The OpenSSL backend binds itself on first use.
        from cryptography.hazmat.backends.openssl import backend

        backend.openssl_version_text()
    return len(sys.modules)


class _NoLateImports(importlib_abc.MetaPathFinder):
    """After the sandbox closes an import cannot succeed; say which module was wanted."""

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,
        target: types.ModuleType | None = None,
    ) -> None:
        raise ImportError(f"import of {fullname} after the sandbox closed (add it to preload)")


# --- the child ---------------------------------------------------------------------


def _guest(
    m: mf.Manifest,
    plan: sandbox.Plan,
    sockets: Mapping[str, socket.socket],
    settings: ApplianceSettings | None,
    attempts: Sequence[str],
    fleet: WorkerView | None,
) -> int:
    # Ctrl-C reaches the whole process group: the tender handles it, so ignore it here.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    report = sandbox.close(plan)
    # The tender takes the filter's listener from us by number (pidfd_getfd); one write.
    os.write(plan.report_fd, b"listener %d\n" % report.listener_fd)
    sys.meta_path.insert(0, _NoLateImports())
    say("sandbox", **report.to_json())
    if m.entry == "probe":
        context = probe.ProbeContext(sockets, m.connect_back_port, plan.tender_pid)
        return probe.run(context, attempts)
    from unikernel import guest  # imported before the fork, with the appliance

    if settings is None:
        raise TypeError("the appliance entry needs its settings")
    say("settings", **guest.numbers_reached(settings))
    return guest.run_appliance(settings, sockets, fleet)


def _child(
    m: mf.Manifest,
    plan: sandbox.Plan,
    sockets: Mapping[str, socket.socket],
    settings: ApplianceSettings | None,
    attempts: Sequence[str],
    fleet: WorkerView | None,
) -> None:
    status = 1
    try:
        status = _guest(m, plan, sockets, settings, attempts, fleet)
    except BaseException as e:
        try:
            print(f"unikernel: {type(e).__name__}: {e}", file=sys.stderr, flush=True)
        finally:
            os._exit(1)
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        os._exit(status)


# --- the tender ---------------------------------------------------------------------


def _describe_exit(
    status: int, filtered: notify.Call | None, arch: seccomp.Arch
) -> tuple[int, dict[str, object]]:
    if filtered is not None:
        name = arch.name_of(filtered.nr)
        print(
            f"unikernel: stopped by the system-call filter: {name} (nr {filtered.nr}, "
            f"{arch.name})",
            file=sys.stderr,
            flush=True,
        )
        return seccomp.EXIT_FILTERED, {
            "filtered": name, "nr": filtered.nr, "arch": arch.name,
            "args": [f"{a:#x}" for a in filtered.args],
        }
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        detail: dict[str, object] = {"signal": signal.Signals(sig).name}
        if sig == signal.SIGSYS:
            # Killed by the filter itself: a call from a foreign architecture.
            print("unikernel: killed by the system-call filter", file=sys.stderr, flush=True)
            detail["filtered"] = "unknown"
        return 128 + sig, detail
    return os.WEXITSTATUS(status), {"status": os.WEXITSTATUS(status)}


def _read_listener_fd(read_end: int) -> int:
    """The guest's listener fd number, or -1 if it ended (or applied no filter) first."""
    line = b""
    while not line.endswith(b"\n") and len(line) < 64:
        chunk = os.read(read_end, 64)
        if not chunk:
            return -1
        line += chunk
    parts = line.split()
    return int(parts[1]) if len(parts) == 2 and parts[0] == b"listener" else -1


def _tend(pid: int, read_end: int, tender_plan: tender.Tender) -> notify.Call | None:
    """Hold the filter's listener and answer the guest until it ends."""
    fd = _read_listener_fd(read_end)
    if fd < 0:
        return None
    try:
        tender_plan.listener = notify.take_fd(pid, fd)
    except OSError as e:
        # Nobody could answer its calls: stop it rather than let it hang in one.
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        print(f"unikernel: refused: cannot hold the filter's listener: {e}", file=sys.stderr)
        return None
    try:
        tender_plan.run()
    except OSError as e:
        # A guest nobody answers would wait in its call forever: stop it instead.
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        print(f"unikernel: the tender failed, guest stopped: {e}", file=sys.stderr)
    finally:
        os.close(tender_plan.listener)
    return tender_plan.filtered


def _layers_off(m: mf.Manifest, layers: frozenset[str]) -> dict[str, str]:
    """The layers that will not be applied, and why; raises WeakerThanPromised for a
    missing layer the manifest does not allow."""
    missing = sandbox.survey()
    sandbox.refuse_weaker(missing, m.allow_weaker)
    left_out = {layer: "left out on the command line" for layer in sandbox.LAYERS - layers}
    off = {**missing, **left_out}
    if off:
        print(f"unikernel: {sandbox_entry(off)[1]}", file=sys.stderr, flush=True)
    return off


def _selftalk_ports(m: mf.Manifest, ports: Mapping[str, int]) -> frozenset[int]:
    if not m.selftalk_interval:
        return frozenset()
    return frozenset((ports["tls_server"], ports["tls_client"]))


def _dialing(m: mf.Manifest, ports: Mapping[str, int]) -> tender.Dialing:
    own = {tender.plain(ipaddress.ip_address(m.listeners[role].address))
           for role in ("tls_server", "tls_client")}
    return tender.Dialing(m.connect_back_port, _selftalk_ports(m, ports),
                          frozenset(a for a in own if not a.is_unspecified))


def _plan(
    m: mf.Manifest, ports: Mapping[str, int], off: Mapping[str, str], report_fd: int,
    empty_root: Path | None, back: socket.socket,
) -> sandbox.Plan:
    return sandbox.Plan(
        memory_bytes=m.limits.memory_mib * 1024 * 1024,
        open_files=m.limits.open_files,
        connect_ports=tuple(sorted({m.connect_back_port, *_selftalk_ports(m, ports)})),
        console_fds=(1, 2, report_fd),
        empty_root=empty_root,
        report_fd=report_fd,
        tender_pid=os.getpid(),
        tender_listeners=(back.fileno(),),
        layers=sandbox.LAYERS - set(off),
        off=off,
    )


def launch(
    m: mf.Manifest,
    *,
    software_path: Path | None = None,
    probe_attempts: Sequence[str] = (),
    layers: frozenset[str] = sandbox.LAYERS,
) -> int:
    """Run the manifest's unikernel to its end; returns the exit status to pass on.

    With `workers` above 1, every worker is a guest of its own with its own tender
    and listeners (SO_REUSEPORT, bound here before any sandbox), under one parent
    that restarts a guest that ends (`pinata.appliance.workers.Supervisor`); the
    settings are built once, so an ephemeral anchor is one anchor.

    Raises, before anything opens, ValueError (an unknown probe attempt),
    WeakerThanPromised, ManifestError (a boot file or setting refused) or
    PreloadError.
    """
    for name in probe_attempts:
        if name not in probe.ATTEMPTS:
            raise ValueError(f"unknown probe attempt {name!r}")
    arch = seccomp.host_arch()
    off = _layers_off(m, layers)
    boot = read_boot(m.boot)
    sockets = open_listeners(m)
    try:
        settings: ApplianceSettings | None = None
        if m.entry == "appliance":
            # The probe runs without the appliance's modules; the appliance with them.
            from unikernel import guest

            software = (*software_list(software_path), sandbox_entry(off))
            settings = guest.appliance_settings_for(m, boot, software, sockets)
        modules = preload(m.entry)
    except BaseException:
        for s in sockets.values():
            s.close()
        raise
    ports = {role: int(s.getsockname()[1]) for role, s in sockets.items()}
    run = _Guest(m, settings, off, probe_attempts, arch, modules, ports)
    if m.workers == 1:
        return run(0, sockets, None)
    from pinata.appliance.shared_counters import SharedCounters
    from pinata.appliance.workers import Supervisor

    shared = SharedCounters(m.workers, started=time.time())
    return Supervisor(shared, sockets, lambda: open_listeners(m, ports), run).run()


@dataclasses.dataclass(frozen=True)
class _Guest:
    """One guest and its tender, on one set of listeners (which it closes)."""

    m: mf.Manifest
    settings: ApplianceSettings | None
    off: Mapping[str, str]
    probe_attempts: Sequence[str]
    arch: seccomp.Arch
    modules: int
    ports: Mapping[str, int]

    def __call__(self, index: int, sockets: Mapping[str, socket.socket],
                 fleet: WorkerView | None) -> int:
        m, ports = self.m, self.ports
        empty_root: Path | None = None
        read_end, write_end = os.pipe()
        try:
            if "identity" not in self.off:
                empty_root = Path(tempfile.mkdtemp(prefix="pinata-unikernel-root-"))
                os.chmod(empty_root, 0o555)
            back = sockets["connect_back"]
            plan = _plan(m, ports, self.off, write_end, empty_root, back)
            sys.stdout.flush()
            sys.stderr.flush()
            pid = os.fork()
            if pid == 0:
                os.close(read_end)
                _child(m, plan, sockets, self.settings, self.probe_attempts, fleet)
            os.close(write_end)
            write_end = -1
            # The tender keeps the connect-back listener: it makes that port's accepts.
            for s in sockets.values():
                if s is not back:
                    s.close()
            say("listening", pid=pid, ports=dict(ports), modules=self.modules,
                **({"worker": index} if fleet is not None else {}))
            tending = tender.Tender(pid, -1, self.arch, _dialing(m, ports),
                                    {back.fileno(): back})
            with _forwarding_signals(pid):
                filtered = _tend(pid, read_end, tending)
                status = _wait(pid)
            code, detail = _describe_exit(status, filtered, self.arch)
            say("exit", code=code, **detail)
            return code
        finally:
            for s in sockets.values():
                s.close()
            for fd in (read_end, write_end):
                if fd >= 0:
                    os.close(fd)
            if empty_root is not None:
                shutil.rmtree(empty_root, ignore_errors=True)


@contextlib.contextmanager
def _forwarding_signals(pid: int) -> Iterator[None]:
    """SIGINT and SIGTERM to the tender stop the guest (with SIGTERM), which ends the tending."""

    def forward(signum: int, frame: object) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _wait(pid: int) -> int:
    while True:
        try:
            _, status = os.waitpid(pid, 0)
            return status
        except InterruptedError:
            continue
