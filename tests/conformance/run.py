"""The tlsfuzzer conformance step: our engine against tlsfuzzer's scripts,
TLS 1.3 and TLS 1.2.

    python -m tests.conformance.run --tlsfuzzer-python .venv-tlsfuzzer/bin/python

Starts the test servers of `tests/conformance/server.py` (RSA-2048, ECDSA
P-256 and P-384, Ed25519; with and without client authentication; an echo
server; each speaking TLS 1.3 and 1.2, the engine's default) and the toy
appliance (`pinata toy --port-offset N`, port 10000:
client authentication against the toy anchor) on loopback, runs each script
the expectations file names with its options (a declared exclusion as `-e`),
and judges every failure the script lists against the declarations: the
step fails on an undeclared failure, a failure with another message than
declared, a declaration no failure matched (stale), a script that dies or
does not finish in time, or an exception out of a test server. Why the
judging is ours and not tlsfuzzer's `-x`: a declaration may name many
cases by pattern and must say which alert it expects.

tlsfuzzer runs from its own virtualenv (tlslite-ng 0.9.0b2), never from the
project's (tlslite-ng 0.8 for the interop tests). This is a Makefile step
rather than a pytest module so that it keeps its own virtualenv and report,
and pytest's summary still closes `make test`'s output.
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import tomllib
from collections import Counter
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from bait_ca import toy as bait_ca_toy
from bait_ca.ca import CertificateAuthority
from bait_ca.keys import KeyType
from tests.conformance.server import make_pki, running_server, server_config, write_client_files

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
EXPECTATIONS = HERE / "tlsfuzzer_expectations.toml"
TLSFUZZER = ROOT.parent / "shared" / "tlsfuzzer"
TOY = ROOT / "bait_ca" / "toy"

# Features we do not offer; a case may be excluded or expected to fail only
# for one of these, or as a known engine bug (tests/conformance/ENGINE_BUGS.md).
REASONS = {
    "ffdhe": "finite-field Diffie-Hellman groups (RFC 7919) are not offered",
    "brainpool": "brainpool curves (RFC 8734) are not offered",
    "x448": "x448 is not offered",
    "secp521r1": "secp521r1 is not offered for key exchange",
    "ed448": "Ed448 signatures are not offered",
    "ccm": "AES-CCM cipher suites are not offered",
    "psk": "pre-shared keys are not offered (a PSK offer is ignored)",
    "tickets": "no NewSessionTicket is ever sent, so no resumption",
    "optional-client-auth": "a server asking for a client certificate requires one"
                            " (certificate_required, RFC 8446 §4.4.2.4); it cannot be optional",
    "0rtt": "0-RTT data is never accepted (it is skipped up to a bound)",
    "post-handshake-auth": "post-handshake client authentication is refused",
    "certificate-compression": "certificate compression (RFC 8879) is not offered",
    "ml-dsa": "ML-DSA signatures are not offered",
    "mlkem-groups": "SecP256r1MLKEM768 and SecP384r1MLKEM1024 are not offered (X25519MLKEM768 is)",
    "below-tls12": "SSL 2, SSL 3, TLS 1.0 and 1.1 are refused (protocol_version): the case or"
                   " script needs a server that negotiates one of them",
    "cbc": "TLS 1.2 offers AEAD suites only (AES-GCM, ChaCha20-Poly1305): no CBC, RC4, 3DES,"
           " NULL or export suite, so nothing to MAC or pad (and no encrypt-then-MAC)",
    "rsa-kex": "TLS 1.2 key exchange is ECDHE only: no static RSA key transport",
    "dhe": "TLS 1.2 key exchange is ECDHE only: no DHE_RSA suites (nor FFDHE groups)",
    "dsa": "DSA keys and signatures are not offered",
    "ems-required": "TLS 1.2 requires the extended master secret (RFC 7627 §5.2): a ClientHello"
                    " without it is refused with handshake_failure",
    "renegotiation": "renegotiation is refused (RFC 5746 sent and checked in the initial"
                     " handshake only): the case needs a server that renegotiates",
    "resumption": "no TLS 1.2 session resumption, neither by session ID nor by ticket",
    "sha1": "TLS 1.2 signatures never use SHA-1 or MD5: the case offers only those",
    "renegotiation-info-required": "a TLS 1.2 ClientHello with neither renegotiation_info nor"
                                   " TLS_EMPTY_RENEGOTIATION_INFO_SCSV is refused with"
                                   " handshake_failure (RFC 5746 §4.3 allows it): the case"
                                   " offers neither",
    "tls13-server": "the case assumes a server whose best version is TLS 1.2; ours speaks 1.3"
                    " too, and answers as RFC 7507 §3 asks of such a server",
    "sslv2-hello": "an SSLv2-compatible ClientHello (RFC 5246 Appendix E.2) is refused with"
                   " protocol_version, whatever version it offers",
    "script-layout": "the script computes a record's byte positions for AES-GCM's layout (an"
                     " 8-byte explicit nonce first); a ChaCha20-Poly1305 record has none (RFC"
                     " 7905 §2), so the position lies outside the record and the script raises",
    "alpn": "ALPN (RFC 7301) is not offered",
    "ocsp": "OCSP stapling (status_request) is not offered",
    "record-size-limit": "record_size_limit (RFC 8449) is not negotiated (the extension is"
                         " ignored): records stay at the protocol's own limit",
    "hrr-cookie": "our HelloRetryRequest always carries a cookie (RFC 8446 §4.2.2 allows it);"
                  " this script has no option to accept one",
    "server-key": "the case needs a server key of another kind than this run's server holds;"
                  " it passes in the run against a server holding that key",
    "bounded-drain": "after a fatal alert a server drains what the peer still sends only for a"
                     " bounded time and size (an unauthenticated peer's budget), then closes",
    "engine-bug": "a known engine bug, listed in ENGINE_BUGS.md, to be fixed",
}
SERVERS = ("rsa", "ecdsa", "ecdsa384", "ed25519", "rsa-auth", "ecdsa-auth", "rsa-echo", "appliance")
CLIENTS = ("rsa", "ecdsa", "ed25519", "toy", "toy-ed25519")
SUMMARY = re.compile(r"^(TOTAL|SKIP|PASS|XFAIL|FAIL|XPASS): (\d+)$", re.MULTILINE)


class ExpectationsError(ValueError):
    """The expectations file is malformed or names a reason we do not allow."""


@dataclass(frozen=True)
class Declared:
    """Cases we exclude (`-e`, by exact name) or expect to fail (by exact name
    or by a regular expression over names), and why."""

    case: str
    mode: str  # "exclude" | "xfail"
    reason: str
    why: str
    regex: bool = False
    error: str | None = None  # a regular expression the failure's message must contain

    def matches(self, name: str) -> bool:
        return re.fullmatch(self.case, name) is not None if self.regex else name == self.case


@dataclass(frozen=True)
class Run:
    """One script against one server, with its options and declarations."""

    script: str
    server: str
    args: tuple[str, ...]
    client: str | None
    sampled: bool
    declared: tuple[Declared, ...]

    @property
    def label(self) -> str:
        return f"{self.script} [{self.server}]"


@dataclass(frozen=True)
class Expectations:
    runs: tuple[Run, ...]
    not_run: dict[str, tuple[str, str]]  # script -> (reason, why)


def _declared(item: dict[str, object], where: str) -> Declared:
    reason, why, mode = item.get("reason"), item.get("why"), item.get("mode", "xfail")
    if reason not in REASONS:
        raise ExpectationsError(f"{where}: reason {reason!r} is not one of {sorted(REASONS)}")
    if not isinstance(why, str) or not why.strip():
        raise ExpectationsError(f"{where}: every declaration says why")
    if mode not in ("exclude", "xfail"):
        raise ExpectationsError(f"{where}: mode must be exclude or xfail")
    case, match, error = item.get("case"), item.get("match"), item.get("error")
    if (case is None) == (match is None):
        raise ExpectationsError(f"{where}: a declaration names a case or a match, not both")
    name = case if case is not None else match
    if not isinstance(name, str) or not name:
        raise ExpectationsError(f"{where}: the case or match is a non-empty string")
    if match is not None and mode == "exclude":
        raise ExpectationsError(f"{where}: exclusions name exact cases")
    if error is not None and not isinstance(error, str):
        raise ExpectationsError(f"{where}: error is a string")
    return Declared(name, str(mode), str(reason), why, match is not None, error)


def _run(item: dict[str, object], index: int) -> Run:
    script, server = item.get("script"), item.get("server")
    where = f"run {index} ({script})"
    if not isinstance(script, str) or server not in SERVERS:
        raise ExpectationsError(f"{where}: needs a script and a server in {SERVERS}")
    client = item.get("client")
    if client is not None and client not in CLIENTS:
        raise ExpectationsError(f"{where}: client must be one of {CLIENTS}")
    args = item.get("args", [])
    if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
        raise ExpectationsError(f"{where}: args is a list of strings")
    sampled = item.get("sampled", False)
    if sampled and not isinstance(item.get("why_sampled"), str):
        raise ExpectationsError(f"{where}: a sampled run says why (why_sampled)")
    raw = item.get("declared", [])
    if not isinstance(raw, list):
        raise ExpectationsError(f"{where}: declared is a list of tables")
    declared = tuple(_declared(d, f"{where} case {d.get('case') or d.get('match')!r}")
                     for d in raw)
    names = [d.case for d in declared]
    if len(names) != len(set(names)):
        raise ExpectationsError(f"{where}: a case is declared twice")
    return Run(script, str(server), tuple(args), client, bool(sampled), declared)


def load_expectations(text: str) -> Expectations:
    """Parse and check the expectations file.

    Takes the TOML text; returns the runs and the scripts not run; raises
    `ExpectationsError` for an unknown reason, a missing why, a bad server.
    """
    data = tomllib.loads(text)
    runs = tuple(_run(item, i) for i, item in enumerate(data.get("run", [])))
    not_run: dict[str, tuple[str, str]] = {}
    for script, item in data.get("not_run", {}).items():
        reason, why = item.get("reason"), item.get("why")
        if reason not in REASONS or reason == "engine-bug":
            raise ExpectationsError(f"not_run {script}: reason {reason!r} is not a missing feature")
        if not isinstance(why, str) or not why.strip():
            raise ExpectationsError(f"not_run {script}: says why")
        not_run[script] = (reason, why)
    overlap = {r.script for r in runs} & set(not_run)
    if overlap:
        raise ExpectationsError(f"both run and not run: {sorted(overlap)}")
    return Expectations(runs, not_run)


def snapshot_scripts(tlsfuzzer: Path) -> set[str]:
    """The snapshot's conformance scripts by name (`test-*`: TLS 1.3 and the
    rest), each of which the expectations run or excuse."""
    return {p.stem for p in (tlsfuzzer / "scripts").glob("test-*.py")}


@dataclass(frozen=True)
class Summary:
    counts: dict[str, int]
    failed: tuple[str, ...]  # distinct names, as the script listed them
    errors: dict[str, str]  # case name -> the last error line printed for it


# A case starts with `name ...` (or `"name" repeat N...`); the scripts that
# repeat their cases print `"name" repeat N` on a line of its own.
_CASE_START = re.compile(
    r'^(?:"(?P<repeated>[^\n]+?)" repeat \d+$'
    r'|"(?P<quoted>[^\n]+?)"(?: repeat \d+)? ?\.\.\.|(?P<name>[^\n]+?) ?\.\.\.)',
    re.MULTILINE,
)
_ERROR_LINE = re.compile(r"^(?:AssertionError|[A-Za-z]+Error): .*$", re.MULTILINE)


def parse_summary(output: str) -> Summary | None:
    """The counts a script prints after `Test end`, the distinct names it lists
    as FAILED or XPASSED, and each failed case's last error message; None
    when the script died before its summary."""
    counts = {key: int(value) for key, value in SUMMARY.findall(output)}
    if set(counts) != {"TOTAL", "SKIP", "PASS", "XFAIL", "FAIL", "XPASS"}:
        return None
    tail = output[output.rfind("Test end"):]
    failed = tuple(dict.fromkeys(re.findall(r"^\t'(.*)'$", tail, re.MULTILINE)))
    errors: dict[str, str] = {}
    starts = list(_CASE_START.finditer(output[:output.rfind("Test end")]))
    for here, after in zip(starts, [*starts[1:], None][: len(starts)], strict=True):
        body = output[here.end():after.start() if after else len(output)]
        lines = _ERROR_LINE.findall(body)
        if lines:
            errors[here.group("repeated") or here.group("quoted") or here.group("name")] = lines[-1]
    return Summary(counts, failed, errors)


def judge(run: Run, returncode: int | None, summary: Summary | None) -> list[str]:
    """What is wrong with one script's result; empty when it met expectations.

    A failed case must match an expected-failure declaration (and its error
    substring, if given); a declaration no failure matched is stale, unless
    the run samples its cases.
    """
    if returncode is None:
        return ["did not finish in time"]
    if summary is None:
        return [f"exited {returncode} without a summary"]
    expected = [d for d in run.declared if d.mode == "xfail"]
    used: set[str] = set()
    problems = []
    for name in summary.failed:
        match = next((d for d in expected if d.matches(name)), None)
        message = summary.errors.get(name, "")
        if match is None:
            problems.append(f"unexpected failure: {name!r}: {message[:200]}")
        elif match.error is not None and re.search(match.error, message) is None:
            problems.append(f"{name!r} failed otherwise than declared ({match.error!r}): "
                            f"{message[:200]}")
        else:
            used.add(match.case)
    if not run.sampled:
        problems += [f"declared failure never seen (stale?): {d.case!r}"
                     for d in expected if d.case not in used]
    excluded = sum(d.mode == "exclude" for d in run.declared)
    if summary.counts["SKIP"] != excluded:
        problems.append(f"{excluded} exclusions declared, the script knew {summary.counts['SKIP']}")
    if summary.counts["XPASS"] or summary.counts["XFAIL"]:
        problems.append("the script itself saw expected failures: declarations go through judge")
    return problems


def command(run: Run, python: str, host: str, ports: dict[str, int],
            clients: dict[str, tuple[Path, Path]]) -> list[str]:
    """The command line for one run."""
    module = "tlsfuzzer._apps." + run.script.replace("-", "_")
    cmd = [python, "-m", module, "-h", host, "-p", str(ports[run.server]), *run.args]
    if run.client is not None:
        key, cert = clients[run.client]
        cmd += ["-k", str(key), "-c", str(cert)]
    # Expected failures are judged here, by name or pattern, not with `-x`.
    cmd += [arg for d in run.declared if d.mode == "exclude" for arg in ("-e", d.case)]
    return cmd


def _toy_client(directory: Path, key_type: KeyType) -> tuple[Path, Path]:
    """A client certificate of another key type under the toy anchor (whose
    key is published in bait_ca/toy/), as a researcher would issue one."""
    toy = bait_ca_toy.load()
    authority = CertificateAuthority(toy.anchor.certificate, toy.anchor.private_key)
    issued = authority.issue("client", f"conformance toy {key_type} client", key_type=key_type)
    key, cert = directory / f"toy-{key_type}.key", directory / f"toy-{key_type}.pem"
    key.write_bytes(issued.key_pem)
    cert.write_bytes(issued.pem)
    return key, cert


def _free_offset(host: str) -> int:
    """A port offset at which every toy port is free (checked by binding)."""
    base = (10000, 10001, 10002, 8080, 8443, 40001)
    for offset in range(20000, 25000, 37):
        try:
            with ExitStack() as stack:
                for port in base:
                    s = stack.enter_context(socket.socket())
                    s.bind((host, port + offset))
            return offset
        except OSError:
            continue
    raise RuntimeError("no free port offset for the toy appliance")


def _wait_for_port(host: str, port: int, process: subprocess.Popen[bytes], deadline: float) -> None:
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the toy appliance exited with {process.returncode}")
        try:
            socket.create_connection((host, port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("the toy appliance did not start listening")


@contextmanager
def toy_appliance(host: str, log: Path) -> Iterator[int]:
    """`pinata toy` on a free port offset; yields its port 10000 (moved)."""
    offset = _free_offset(host)
    pinata = Path(sys.executable).with_name("pinata")
    with log.open("wb") as out:
        process = subprocess.Popen([str(pinata), "toy", "--address", host,
                                    "--port-offset", str(offset)], stdout=out, stderr=out)
        try:
            _wait_for_port(host, 10000 + offset, process, time.monotonic() + 30)
            yield 10000 + offset
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@dataclass(frozen=True)
class Outcome:
    run: Run
    seconds: float
    summary: Summary | None
    problems: list[str]
    log: Path


def execute(run: Run, cmd: list[str], timeout: float, logs: Path) -> Outcome:
    """Run one script, keep its output, judge it."""
    log = logs / f"{run.script}.{run.server}.log"
    start = time.monotonic()
    env = {**os.environ, "PYTHONPATH": str(TLSFUZZER)}
    try:
        done = subprocess.run(cmd, cwd=TLSFUZZER, env=env, capture_output=True, timeout=timeout)
        returncode: int | None = done.returncode
        output = done.stdout.decode(errors="replace") + done.stderr.decode(errors="replace")
    except subprocess.TimeoutExpired as expired:
        returncode = None
        output = (expired.stdout or b"").decode(errors="replace")
    log.write_text(" ".join(cmd) + "\n\n" + output)
    summary = parse_summary(output)
    return Outcome(run, time.monotonic() - start, summary, judge(run, returncode, summary), log)


def _write_refusals(refusals: dict[str, list[str]], logs: Path) -> None:
    """Each test server's refusals by cause, in `refusals.txt` beside the
    scripts' logs: which of the causes that share an alert the scripts met
    (with `--only SCRIPT`, in the order of the script's cases)."""
    lines = []
    for server, causes in refusals.items():
        counts = Counter(causes)
        lines.append(f"{server}: " + ", ".join(f"{c} {n}" for c, n in counts.most_common()))
        lines += [f"  {cause}" for cause in causes]
    (logs / "refusals.txt").write_text("\n".join(lines) + "\n")


def _report(outcomes: Sequence[Outcome], expectations: Expectations, seconds: float) -> int:
    totals = dict.fromkeys(("TOTAL", "PASS", "XFAIL", "SKIP", "FAIL", "XPASS"), 0)
    for o in outcomes:
        counts = o.summary.counts if o.summary else {}
        for key in totals:
            totals[key] += counts.get(key, 0)
        status = "FAIL" if o.problems else "ok  "
        declared = len(o.summary.failed) if o.summary and not o.problems else "?"
        shown = (" ".join(f"{k.lower()}={counts.get(k, '?')}" for k in ("TOTAL", "PASS", "SKIP"))
                 + f" declared-failures={declared}")
        print(f"{status} {o.run.label:58} {shown} ({o.seconds:.0f} s)")
        for problem in o.problems[:8]:
            print(f"       {problem}")
        if o.problems:
            print(f"       ({len(o.problems)} problems) log: {o.log}")
    failed = [o for o in outcomes if o.problems]
    print(f"\ntlsfuzzer: {len(outcomes)} runs of {len({o.run.script for o in outcomes})} scripts "
          f"({len(expectations.not_run)} scripts not run, for missing features); "
          f"{totals['TOTAL']} conversations: {totals['PASS']} passed, {totals['FAIL']} failed "
          f"({sum(len(o.summary.failed) for o in outcomes if o.summary)} distinct cases), "
          f"{totals['SKIP']} excluded; {len(failed)} runs not as declared; {seconds:.0f} s")
    return 1 if failed else 0


def _serve(runs: Sequence[Run], python: str, host: str, ports: dict[str, int],
           clients: dict[str, tuple[Path, Path]]) -> int:
    print(f"servers: {ports}\nrun from {TLSFUZZER} with PYTHONPATH=. (a case's name as the"
          " last argument runs that case alone):")
    for run in runs:
        words = command(run, python, host, ports, clients)
        print(" ".join(f"'{w}'" if " " in w else w for w in words))
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tlsfuzzer-python", required=True)
    parser.add_argument("--tlsfuzzer", type=Path, default=TLSFUZZER)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=300.0)
    parser.add_argument("--logs", type=Path, default=ROOT / "out" / "conformance")
    parser.add_argument("--only", nargs="*", help="run only these scripts")
    parser.add_argument("--serve", action="store_true",
                        help="start the servers, print each run's command line, and wait"
                             " (Ctrl-C ends): to reproduce one case by hand")
    args = parser.parse_args(argv)
    args.tlsfuzzer_python = os.path.abspath(args.tlsfuzzer_python)
    expectations = load_expectations(EXPECTATIONS.read_text())
    named = {r.script for r in expectations.runs} | set(expectations.not_run)
    if not snapshot_scripts(args.tlsfuzzer):
        print(f"no tlsfuzzer snapshot (scripts/test-*.py) at {args.tlsfuzzer}")
        return 1
    unnamed = snapshot_scripts(args.tlsfuzzer) - named
    if unnamed:
        print(f"scripts neither run nor excluded with a reason: {sorted(unnamed)}")
        return 1
    runs = [r for r in expectations.runs if not args.only or r.script in args.only]
    args.logs.mkdir(parents=True, exist_ok=True)
    host = "127.0.0.1"
    start = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        pki = make_pki(datetime.now(UTC))
        crashes: list[str] = []
        clients = write_client_files(pki, Path(tmp))
        clients["toy"] = (TOY / "researcher-client.key", TOY / "researcher-client.pem")
        clients["toy-ed25519"] = _toy_client(Path(tmp), "ed25519")
        refusals: dict[str, list[str]] = {name: [] for name in SERVERS}
        ports = {
            name: stack.enter_context(running_server(
                server_config(pki, name.split("-")[0], name.endswith("-auth")),
                host, echo=name.endswith("-echo"), crashes=crashes, refusals=refusals[name]))
            for name in SERVERS if name != "appliance"
        }
        if any(r.server == "appliance" for r in runs):
            appliance_log = args.logs / "appliance.log"
            ports["appliance"] = stack.enter_context(toy_appliance(host, appliance_log))
        if args.serve:
            return _serve(runs, args.tlsfuzzer_python, host, ports, clients)
        with ThreadPoolExecutor(max_workers=args.jobs) as pool:
            outcomes = list(pool.map(
                lambda r: execute(r, command(r, args.tlsfuzzer_python, host, ports, clients),
                                  args.timeout, args.logs), runs))
    for crash in crashes[:5]:
        print(f"a test server's connection raised:\n{crash}")
    _write_refusals(refusals, args.logs)
    status = _report(outcomes, expectations, time.monotonic() - start)
    print(f"engine exceptions in the test servers: {len(crashes)}")
    return 1 if crashes else status


if __name__ == "__main__":
    sys.exit(main())
