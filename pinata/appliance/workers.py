"""`workers = N`: N processes serving the same ports, one parent tending them.

The parent builds the settings once (so an ephemeral anchor is the same for
every worker), makes the shared counters (`shared_counters`), binds one set of
listeners per worker with SO_REUSEPORT (the kernel spreads new connections
over the sets), and forks. A worker is `server.run` on its own set. The parent
serves nothing: it waits, and restarts a worker that dies, after a backoff
that doubles while deaths come quickly, counting each restart in the shared
header so every worker's page and /metrics show it. Once a worker has
started, only it holds its listeners, so they close when it dies and new
connections go to the living workers meanwhile instead of queueing behind a
process that is not there; a fresh set is bound for its successor.

Admission limits (`Limits`, `Budgets`) are each worker's: the appliance's
totals are N times the configured values (README, "Workers").
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, replace
from types import FrameType

from pinata.appliance import server
from pinata.appliance.settings import LISTENER_NAMES, ApplianceSettings
from pinata.appliance.shared_counters import SharedCounters, WorkerView
from pinata.lifetime import end_with_parent

# Restart backoff: the first restart after this, doubling for each death that
# comes within STABLE_AFTER of its start, up to BACKOFF_MAX.
BACKOFF_FIRST = 0.1
BACKOFF_MAX = 10.0
STABLE_AFTER = 10.0
# How often the parent looks for dead workers and due restarts.
TEND_INTERVAL = 0.05
# Tries to write one of the parent's lines to a full pipe before it is dropped.
SAY_ATTEMPTS = 20
# Exit status of a worker whose serve loop raised.
WORKER_FAILED = 70

Listeners = dict[str, socket.socket]


def bind_listeners(address: str, ports: dict[str, int]) -> Listeners:
    """One listening socket per listener, with SO_REUSEPORT so that other sets may
    bind the same ports. Takes each listener's port (0: any free one)."""
    bound: Listeners = {}
    try:
        for name in LISTENER_NAMES:
            sock = socket.socket(socket.AF_INET6 if ":" in address else socket.AF_INET,
                                 socket.SOCK_STREAM)
            bound[name] = sock
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.bind((address, ports[name]))
            sock.listen(server.LISTEN_BACKLOG)
    except BaseException:
        for sock in bound.values():
            sock.close()
        raise
    return bound


def _say(event: str, **fields: object) -> None:
    """One line in one write(2): the workers write to the same standard output, and
    a pipe keeps a write of up to PIPE_BUF bytes whole."""
    line = json.dumps({"workers": {"event": event, **fields}}, separators=(",", ":")) + "\n"
    sys.stdout.flush()
    # The workers' log writers make the shared descriptor non-blocking: wait a
    # little for a full pipe, then drop the line rather than stop tending.
    for _ in range(SAY_ATTEMPTS):
        try:
            os.write(sys.stdout.fileno(), line.encode())
            return
        except BlockingIOError:
            time.sleep(TEND_INTERVAL)
        except OSError:
            return


@dataclass
class _Worker:
    index: int
    listeners: Listeners | None = None
    pid: int | None = None
    started: float = 0.0
    quick_deaths: int = 0
    restart_at: float | None = None


class Supervisor:
    """The parent of N workers: starts them, restarts the dead, stops them on a signal.

    Takes the shared counters, the first worker's listeners (bound by the caller,
    which may need their ports to build its settings), how to bind another set on
    the same ports, and what a worker runs: `run_worker(index, listeners, view)`
    returns the worker's exit status. `pinata serve` runs `server.run`; the
    unikernel's launcher runs one sandboxed guest and its tender.
    """

    def __init__(self, shared: SharedCounters, first: Listeners,
                 bind: Callable[[], Listeners],
                 run_worker: Callable[[int, Listeners, WorkerView], int]) -> None:
        self.shared = shared
        self.workers = [_Worker(k) for k in range(shared.workers)]
        self.stopping = False
        self.bind = bind
        self.run_worker = run_worker
        self.workers[0].listeners = first
        for worker in self.workers[1:]:
            worker.listeners = bind()

    def _start(self, worker: _Worker) -> None:
        if worker.listeners is None:
            worker.listeners = self.bind()
        sys.stdout.flush()
        sys.stderr.flush()
        parent = os.getpid()
        pid = os.fork()
        if pid == 0:
            self._be_worker(worker.index, parent)
        # The worker holds its listeners alone: when it dies they close with it, and
        # the kernel sends new connections to the living workers' sets at once.
        for sock in worker.listeners.values():
            sock.close()
        worker.listeners = None
        worker.pid, worker.started, worker.restart_at = pid, time.monotonic(), None
        _say("started", worker=worker.index, pid=pid)

    def _be_worker(self, index: int, parent: int) -> None:
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, signal.SIG_DFL)
        # A parent killed outright cannot stop us as `_stop` does: the kernel
        # sends the same SIGTERM, so no worker serves on without its parent.
        end_with_parent(parent, signal.SIGTERM)
        mine = self.workers[index].listeners
        assert mine is not None
        for other in self.workers:
            if other.index != index:
                for sock in (other.listeners or {}).values():
                    sock.close()
        status = WORKER_FAILED
        try:
            status = self.run_worker(index, mine, WorkerView(self.shared, index))
        except BaseException:
            traceback.print_exc(file=sys.stderr)
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(status)

    def _died(self, pid: int, status: int) -> None:
        for worker in self.workers:
            if worker.pid != pid:
                continue
            worker.pid = None
            if self.stopping:
                return
            lived = time.monotonic() - worker.started
            worker.quick_deaths = worker.quick_deaths + 1 if lived < STABLE_AFTER else 0
            delay = restart_delay(worker.quick_deaths)
            worker.restart_at = time.monotonic() + delay
            _say("died", worker=worker.index, pid=pid, status=_describe(status),
                 restart_in=round(delay, 3))

    def _stop(self, signum: int, frame: FrameType | None) -> None:
        self.stopping = True
        for worker in self.workers:
            if worker.pid is not None:
                os.kill(worker.pid, signal.SIGTERM)

    def run(self) -> int:
        """Start every worker and tend them until SIGINT/SIGTERM has stopped them all."""
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._stop)
        for worker in self.workers:
            self._start(worker)
        while not self.stopping or any(w.pid is not None for w in self.workers):
            self._reap()
            now = time.monotonic()
            for worker in self.workers:
                if not self.stopping and worker.restart_at is not None and now >= worker.restart_at:
                    self.shared.note_restart(worker.index)
                    self._start(worker)
            time.sleep(TEND_INTERVAL)
        _say("stopped")
        return 0

    def _reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            self._died(pid, status)


def restart_delay(quick_deaths: int) -> float:
    """Seconds before a restart, given the deaths in a row that came within
    STABLE_AFTER of their start (0 after a worker that had been stable)."""
    return float(min(BACKOFF_MAX, BACKOFF_FIRST * 2 ** max(0, quick_deaths - 1)))


def _describe(status: int) -> str:
    if os.WIFSIGNALED(status):
        return signal.Signals(os.WTERMSIG(status)).name
    return f"exit {os.waitstatus_to_exitcode(status)}"


def worker_settings(settings: ApplianceSettings, index: int) -> ApplianceSettings:
    """Worker `index`'s settings: a log file of its own (two processes cannot
    rotate one file). Each worker runs its own self-talk, so that whichever
    worker answers shows a recent one; each run is counted."""
    if settings.log_path is None:
        return settings
    return replace(settings, log_path=f"{settings.log_path}.worker{index}")


def run(settings: ApplianceSettings) -> int:
    """Serve with `settings.workers` processes (one: in this process) until
    SIGINT/SIGTERM; returns the exit status."""
    if settings.workers == 1:
        server.run(settings)
        return 0
    first = bind_listeners(settings.address, {
        name: settings.ports.listener_port(name) for name in LISTENER_NAMES})
    # Port 0 resolves at the first bind; every later set takes the same ports.
    ports = {name: int(sock.getsockname()[1]) for name, sock in first.items()}

    def serve_one(index: int, listeners: Listeners, view: WorkerView) -> int:
        server.run(worker_settings(settings, index), preopened=listeners, fleet=view)
        return 0

    shared = SharedCounters(settings.workers, started=time.time())
    return Supervisor(shared, first, lambda: bind_listeners(settings.address, ports),
                      serve_one).run()
