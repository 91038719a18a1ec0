"""The probe: a stand-in unikernel that behaves as a compromised one would.

The launcher runs it in place of the appliance, inside the same sandbox.
Each attempt prints `{"attempt": name, "outcome": "trying"}` before it
acts and `denied` or `allowed` after, as one JSON line on the console; an
attempt the filter stops ends the process, and the launcher names the
system call. Every attempt but `connect_back` must be denied;
`connect_back` is the control that shows the sandbox still lets the
unikernel do its one outbound job.
"""

from __future__ import annotations

import json
import os
import resource
import select
import socket
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

# How long connect_back waits for the test to knock on the connect-back port.
KNOCK_TIMEOUT = 20.0


@dataclass(frozen=True)
class ProbeContext:
    sockets: Mapping[str, socket.socket]
    connect_back_port: int


def _open_passwd(ctx: ProbeContext) -> str:
    with open("/etc/passwd", "rb") as f:
        return f"read {len(f.read())} bytes"


def _list_root(ctx: ProbeContext) -> str:
    return f"listed {len(os.listdir('/'))} entries"


def _write_file(ctx: ProbeContext) -> str:
    path = f"/tmp/pinata-probe-{os.getpid()}"
    with open(path, "wb") as f:
        f.write(b"written from inside the sandbox\n")
    return f"wrote {path}"


def _exec_shell(ctx: ProbeContext) -> str:
    os.execv("/bin/sh", ["sh", "-c", "echo shell"])


def _fork(ctx: ProbeContext) -> str:
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
    return f"forked {pid}"


def _listen(ctx: ProbeContext) -> str:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        return f"listening on {s.getsockname()[1]}"


def _connect(address: tuple[str, int]) -> str:
    # Blocking, with no timeout: a timeout would need poll(2), which is not on the list,
    # and a loopback connect answers at once.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.connect(address)
        return f"connected to port {address[1]}"


def _connect_other(ctx: ProbeContext) -> str:
    # Our own listener: a port that surely accepts, and is not the connect-back port.
    address, port = ctx.sockets["tls_server"].getsockname()[:2]
    return _connect((address, port))


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


def _connect_back(ctx: ProbeContext) -> str:
    return _connect((_accept_initiator(ctx), ctx.connect_back_port))


def _raise_rlimits(ctx: ProbeContext) -> str:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard + 1024, hard + 1024))
    resource.setrlimit(resource.RLIMIT_NPROC, (64, 64))
    return "raised RLIMIT_NOFILE and RLIMIT_NPROC"


ATTEMPTS: dict[str, Callable[[ProbeContext], str]] = {
    "open_passwd": _open_passwd,
    "list_root": _list_root,
    "write_file": _write_file,
    "exec_shell": _exec_shell,
    "fork": _fork,
    "listen": _listen,
    "connect_other": _connect_other,
    "raise_rlimits": _raise_rlimits,
    "connect_back": _connect_back,
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
