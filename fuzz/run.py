"""Running the harnesses: `python -m fuzz <command>`.

  list                                  the harnesses and what they target
  ci [--budget S]                       every harness, S seconds in all (<= 480),
                                        on a throwaway copy of the committed corpus;
                                        exit 1 on any finding, printing the reproducer
  run NAME... --seconds S --corpus DIR  long runs for researchers: the corpus grows in
                                        DIR/NAME (outside the repository), seeded from
                                        fuzz/corpus/NAME; execs/s and coverage printed
  replay NAME PATH...                   inputs through a harness, without atheris

Each harness runs in its own process (`fuzz.target`) with libFuzzer's
-max_total_time, -timeout (seconds per input) and -rss_limit_mb.
"""

from __future__ import annotations

import argparse
import base64
import importlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

from fuzz.harnesses import HARNESSES

ROOT = Path(__file__).resolve().parent
CORPUS = ROOT / "corpus"
CRASHES = ROOT / "crashes"
CI_MAX_BUDGET = 480
# libFuzzer's limits; a slower input or a bigger process is a finding.
TIMEOUT_SECONDS = 10
RSS_LIMIT_MB = 2048
MAX_LEN = 8192

_DONE = re.compile(r"#(\d+)\s+DONE\s+cov: (\d+) ft: (\d+) corp: (\d+)/\S+ .*exec/s: (\d+)")
_PROGRESS = re.compile(r"#(\d+)\s+\w+\s+cov: (\d+) ft: (\d+) corp: (\d+)/\S+.*exec/s: (\d+)")
_ARTIFACT = re.compile(r"Test unit written to (\S+)")
_STAT = re.compile(r"stat::(\w+):\s+(\d+)")


@dataclass
class Result:
    harness: str
    seconds: float
    executions: int = 0
    exec_per_sec: int = 0
    coverage: int = 0
    features: int = 0
    corpus_units: int = 0
    artifact: str | None = None
    returncode: int = 0
    # libFuzzer's last lines: the traceback of a finding is in them.
    tail: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and self.artifact is None

    def summary(self) -> str:
        state = "ok" if self.ok else "FINDING"
        return (
            f"{self.harness:18} {state:8} {self.executions:>10} execs "
            f"{self.exec_per_sec:>6} exec/s "
            f"cov {self.coverage:>5} ft {self.features:>6} corpus {self.corpus_units:>5} "
            f"in {self.seconds:.0f}s"
        )


def _fuzz_one(
    name: str,
    seconds: int,
    work_corpus: Path,
    seeds: list[Path],
    artifacts: Path,
    echo: bool,
    runs: int | None = None,
) -> Result:
    artifacts.mkdir(parents=True, exist_ok=True)
    work_corpus.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable,
        "-m",
        "fuzz.target",
        name,
        f"-max_total_time={seconds}",
        f"-timeout={TIMEOUT_SECONDS}",
        f"-rss_limit_mb={RSS_LIMIT_MB}",
        f"-max_len={MAX_LEN}",
        "-print_final_stats=1",
        *([f"-runs={runs}"] if runs else []),
        f"-artifact_prefix={artifacts}/",
        str(work_corpus),
        *[str(s) for s in seeds if s.is_dir()],
    ]
    started = time.monotonic()
    result = Result(name, 0.0)
    path = str(ROOT.parent) + os.pathsep + os.environ.get("PYTHONPATH", "")
    env = dict(os.environ, PYTHONPATH=path)
    with subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env,
        cwd=ROOT.parent,
    ) as process:
        assert process.stderr is not None
        last_echo = 0.0
        tail: deque[str] = deque(maxlen=40)
        try:
            for line in process.stderr:
                tail.append(line.rstrip())
                _absorb(result, line)
                now = time.monotonic()
                if echo and ("DONE" in line or now - last_echo > 30) and _PROGRESS.search(line):
                    last_echo = now
                    print(f"[{name}] {line.rstrip()}", flush=True)
                elif echo and ("ERROR" in line or "Traceback" in line or "Error" in line):
                    print(f"[{name}] {line.rstrip()}", flush=True)
                if now - started > seconds + 120:
                    process.kill()
        finally:
            result.returncode = process.wait()
            result.tail = tuple(tail)
    result.seconds = time.monotonic() - started
    return result


def _absorb(result: Result, line: str) -> None:
    if match := _PROGRESS.search(line):
        result.executions = int(match[1])
        result.coverage, result.features = int(match[2]), int(match[3])
        result.corpus_units, result.exec_per_sec = int(match[4]), int(match[5])
    if match := _ARTIFACT.search(line):
        result.artifact = match[1]
    if match := _STAT.search(line):
        if match[1] == "number_of_executed_units":
            result.executions = int(match[2])
        elif match[1] == "average_exec_per_sec":
            result.exec_per_sec = int(match[2])


def _report_finding(result: Result) -> None:
    print(f"\n*** {result.harness}: finding (exit {result.returncode})", flush=True)
    for line in result.tail:
        if not line.startswith(("#", "INFO", "MS:", "stat::", "WARNING")):
            print(f"    | {line}", flush=True)
    if result.artifact is None:
        print("    no reproducer was written (see the log above)", flush=True)
        return
    path = Path(result.artifact)
    print(f"    reproducer: {path}", flush=True)
    print(f"    replay: python -m fuzz replay {result.harness} {path}", flush=True)
    if path.is_file() and path.stat().st_size <= 4096:
        encoded = base64.b64encode(path.read_bytes()).decode()
        print(f"    base64: {encoded}", flush=True)
    print(f"    then commit it under fuzz/crashes/{result.harness}/", flush=True)


def ci(budget: int, names: list[str]) -> int:
    budget = min(budget, CI_MAX_BUDGET)
    # Process start-up and corpus loading take a few seconds of each share.
    each = max(5, budget // len(names) - 4)
    failed: list[Result] = []
    results: list[Result] = []
    # Reproducers outlive the run (and are printed in base64 for CI logs).
    artifacts_root = Path(
        os.environ.get("PINATA_FUZZ_ARTIFACTS")
        or Path(tempfile.gettempdir()) / "pinata-fuzz-artifacts"
    )
    with tempfile.TemporaryDirectory(prefix="pinata-fuzz-") as tmp:
        for name in names:
            work = Path(tmp) / "corpus" / name
            # The committed corpus is copied, never grown, in CI.
            if (CORPUS / name).is_dir():
                shutil.copytree(CORPUS / name, work)
            result = _fuzz_one(name, each, work, [], artifacts_root / name, echo=False)
            results.append(result)
            print(result.summary(), flush=True)
            if not result.ok:
                failed.append(result)
                _report_finding(result)
    total = sum(r.executions for r in results)
    print(f"fuzz: {len(results)} harnesses, {total} executions, {len(failed)} with findings")
    return 1 if failed else 0


def research(names: list[str], seconds: int, corpus_root: Path, runs: int | None = None) -> int:
    corpus_root = corpus_root.resolve()
    repository = ROOT.parent
    if corpus_root == repository or repository in corpus_root.parents:
        raise SystemExit("keep a growing corpus outside the repository")
    status = 0
    for name in names:
        result = _fuzz_one(
            name,
            seconds,
            corpus_root / name,
            [CORPUS / name],
            corpus_root / "artifacts" / name,
            echo=True,
            runs=runs,
        )
        print(result.summary(), flush=True)
        with (corpus_root / "stats.jsonl").open("a") as log:
            fields = {k: v for k, v in result.__dict__.items() if k != "tail"}
            log.write(json.dumps({**fields, "at": time.time()}) + "\n")
        if not result.ok:
            status = 1
            _report_finding(result)
    return status


def replay(name: str, paths: list[Path]) -> int:
    module = importlib.import_module(HARNESSES[name][0])
    for path in paths:
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for file in files:
            started = time.monotonic()
            module.one_input(file.read_bytes())
            print(f"{file}: ok in {time.monotonic() - started:.3f}s")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fuzz", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list")
    ci_parser = sub.add_parser("ci")
    ci_parser.add_argument("--budget", type=int, default=450, help="seconds for all harnesses")
    ci_parser.add_argument("--harness", action="append", choices=sorted(HARNESSES))
    run_parser = sub.add_parser("run")
    run_parser.add_argument("names", nargs="+", choices=sorted(HARNESSES))
    run_parser.add_argument("--seconds", type=int, default=3600)
    run_parser.add_argument("--corpus", type=Path, required=True)
    run_parser.add_argument("--runs", type=int, help="stop each harness after this many inputs")
    replay_parser = sub.add_parser("replay")
    replay_parser.add_argument("name", choices=sorted(HARNESSES))
    replay_parser.add_argument("paths", nargs="+", type=Path)
    args = parser.parse_args(argv)
    if args.command == "list":
        for name, (_, what) in HARNESSES.items():
            print(f"{name:18} {what}")
        return 0
    if args.command == "ci":
        return ci(args.budget, args.harness or list(HARNESSES))
    if args.command == "run":
        return research(args.names, args.seconds, args.corpus, args.runs)
    return replay(args.name, args.paths)


if __name__ == "__main__":
    sys.exit(main())
