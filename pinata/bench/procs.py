"""The benchmark's child processes: each in its own session, watched through
/proc, and always stopped (SIGTERM to its process group, then SIGKILL).

Everything a benchmark compares runs in a child so that its CPU time can be
read from outside, the same way for a Python server and for `openssl`.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import select
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType

# A line from a child longer than this is a bug in the child, not data.
MAX_LINE = 1 << 20
STOP_GRACE = 5.0
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


class ChildFailed(Exception):
    """A child died, said something unexpected, or did not answer in time."""


def worker_argv(role: str, *args: str) -> list[str]:
    """The command line that runs `pinata.bench.worker` in role `role`."""
    return [sys.executable, "-m", "pinata.bench.worker", role, *args]


def raise_open_file_limit() -> int:
    """Lift the soft RLIMIT_NOFILE to the hard limit; returns the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        return hard
    return soft


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far.

    Per-thread schedstat is in nanoseconds (stat's utime/stime are in clock
    ticks, 10 ms here), which lets a batch of a few hundred handshakes be
    timed to well under a percent. Our servers are single-threaded; threads
    that already ended are only in stat, which is the fallback.
    """
    total_ns = 0
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/schedstat", encoding="ascii") as f:
                total_ns += int(f.read().split()[0])
        return total_ns / 1e9
    except (OSError, ValueError, IndexError):
        pass
    with open(f"/proc/{pid}/stat", encoding="ascii") as f:
        # The command name (field 2) may hold spaces; count from the ')' after it.
        fields = f.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS


def process_rss_bytes(pid: int) -> int:
    """Resident set size (VmRSS) of a process."""
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise ChildFailed(f"process {pid} has no VmRSS")


class Child:
    """One child process with line-based stdin/stdout and stderr kept in a file."""

    def __init__(
        self,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        merge_stderr: bool = False,
    ) -> None:
        self.argv = list(argv)
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 - closed by stop()
        full_env = dict(os.environ)
        if env:
            full_env.update(env)
        self.started = time.monotonic()
        self.process = subprocess.Popen(
            self.argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT if merge_stderr else self._stderr,
            start_new_session=True,
            env=full_env,
            cwd=cwd,
        )
        self._buffer = bytearray()

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return not self._exited()

    def _exited(self) -> bool:
        """Whether the child has ended, without reaping it: an unreaped child keeps
        its pid and process group, so signalling the group can hit no stranger."""
        if self.process.returncode is not None:
            return True
        try:
            return os.waitid(os.P_PID, self.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
        except ChildProcessError:
            return True

    def stderr_tail(self, limit: int = 800) -> str:
        with contextlib.suppress(OSError, ValueError):
            self._stderr.seek(0, os.SEEK_END)
            size = self._stderr.tell()
            self._stderr.seek(max(0, size - limit))
            return self._stderr.read().decode("utf-8", "replace")
        return ""

    def _fail(self, what: str) -> ChildFailed:
        name = " ".join(self.argv[:5])
        return ChildFailed(f"{name}: {what}; stderr: {self.stderr_tail()!r}")

    def read_line(self, timeout: float) -> str:
        """The next line on the child's stdout, without its newline."""
        assert self.process.stdout is not None
        fd = self.process.stdout.fileno()
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise self._fail(f"no answer within {timeout:.0f} s")
            ready, _, _ = select.select([fd], [], [], left)
            if not ready:
                continue
            chunk = os.read(fd, 65536)
            if not chunk:
                raise self._fail("exited")
            self._buffer += chunk
            if len(self._buffer) > MAX_LINE:
                raise self._fail("an overlong line")
        line, _, rest = bytes(self._buffer).partition(b"\n")
        self._buffer = bytearray(rest)
        return line.decode("utf-8", "replace")

    def read_until(self, accept: Callable[[str], bool], timeout: float) -> str:
        """Skip lines until one that `accept`s; that line."""
        deadline = time.monotonic() + timeout
        while True:
            line = self.read_line(max(0.01, deadline - time.monotonic()))
            if accept(line):
                return line
            if time.monotonic() > deadline:
                raise self._fail(f"no expected line within {timeout:.0f} s")

    def read_json(self, timeout: float) -> dict[str, object]:
        """The next JSON object the child prints (other lines are skipped)."""
        line = self.read_until(_is_json_object, timeout)
        doc = json.loads(line)
        assert isinstance(doc, dict)
        if "error" in doc and len(doc) == 1:
            raise self._fail(f"reported {doc['error']}")
        return doc

    def send_json(self, doc: Mapping[str, object]) -> None:
        assert self.process.stdin is not None
        try:
            self.process.stdin.write(json.dumps(doc).encode("utf-8") + b"\n")
            self.process.stdin.flush()
        except (BrokenPipeError, OSError):
            raise self._fail("stopped listening") from None

    def ask(self, doc: Mapping[str, object], timeout: float) -> dict[str, object]:
        self.send_json(doc)
        return self.read_json(timeout)

    def drain(self) -> None:
        """Discard whatever the child prints from now on, so that a chatty child
        (openssl) never blocks on a full pipe."""
        assert self.process.stdout is not None
        fd = self.process.stdout.fileno()

        def discard() -> None:
            with contextlib.suppress(OSError, ValueError):
                while os.read(fd, 65536):
                    pass

        threading.Thread(target=discard, daemon=True).start()

    def cpu_seconds(self) -> float:
        try:
            return process_cpu_seconds(self.pid)
        except OSError:
            raise self._fail("is gone") from None

    def rss_bytes(self) -> int:
        try:
            return process_rss_bytes(self.pid)
        except OSError:
            raise self._fail("is gone") from None

    def stop(self) -> None:
        """SIGTERM to the whole process group, SIGKILL if it lingers; idempotent."""
        if self.process.returncode is None:
            if not self._exited():
                self._signal_group(signal.SIGTERM)
                deadline = time.monotonic() + STOP_GRACE
                while not self._exited() and time.monotonic() < deadline:
                    time.sleep(0.01)
            # The leader is ended but not reaped: its group may still hold
            # grandchildren (the unikernel's tender forks), and is still ours.
            self._signal_group(signal.SIGKILL)
            self.process.wait(STOP_GRACE)
        for pipe in (self.process.stdin, self.process.stdout):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()
        self._stderr.close()

    def _signal_group(self, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, sig)

    def __enter__(self) -> Child:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _is_json_object(line: str) -> bool:
    return line.startswith("{")
