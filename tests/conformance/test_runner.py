"""The conformance step's own parts: the expectations file, the judging of a
script's output, and the test server (over loopback, with our own client).

The step itself (every script against the servers) runs as `make
conformance`, a step of `make test` before pytest.
"""

from __future__ import annotations

import socket
import time
from datetime import UTC, datetime
from functools import cache

import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from pinata.tls.config import ClientConfig, Credentials
from pinata.tls.connection import ClientConnection
from pinata.tls.events import ApplicationData, ConnectionFailed, HandshakeComplete, PeerClosed
from pinata.x509 import Purpose, TrustAnchor, authenticator
from tests.conformance import server as conformance_server
from tests.conformance.run import (
    EXPECTATIONS,
    REASONS,
    TLSFUZZER,
    Declared,
    ExpectationsError,
    Run,
    judge,
    load_expectations,
    parse_summary,
    snapshot_scripts,
)
from tests.conformance.server import (
    RESPONSE,
    ConformancePki,
    make_pki,
    running_server,
    server_config,
)

FEATURES = set(REASONS) - {"engine-bug"}


def test_committed_expectations_load_and_give_every_reason() -> None:
    expectations = load_expectations(EXPECTATIONS.read_text())
    assert len(expectations.runs) >= 40
    for run in expectations.runs:
        for declared in run.declared:
            assert declared.reason in REASONS and declared.why.strip()
    assert set(r for r, _ in expectations.not_run.values()) <= FEATURES


def test_every_script_of_the_snapshot_is_run_or_excused() -> None:
    scripts = snapshot_scripts(TLSFUZZER)
    # The README's figure: the snapshot (14555fe) holds 168 scripts.
    assert len(scripts) == 168, f"no tlsfuzzer snapshot of 168 scripts at {TLSFUZZER}"
    assert {s for s in scripts if not s.startswith("test-tls13-")}, "no TLS 1.2 scripts"
    expectations = load_expectations(EXPECTATIONS.read_text())
    named = {r.script for r in expectations.runs} | set(expectations.not_run)
    assert scripts <= named
    assert named <= scripts, "a declaration names a script the snapshot does not have"


def test_the_sampled_runs_and_the_hello_refusals_are_those_the_readme_names() -> None:
    expectations = load_expectations(EXPECTATIONS.read_text())
    assert {r.script for r in expectations.runs if r.sampled} == {
        "test-tls13-lengths", "test-lengths", "test-large-hello", "test-invalid-client-hello",
        "test-invalid-client-hello-w-record-overflow"}
    # Scripts whose every hello is refused before its subject: no extended
    # master secret, no renegotiation_info, or (with no -C) only CBC suites.
    refused = {s for s, (reason, why) in expectations.not_run.items()
               if reason in ("ems-required", "renegotiation-info-required")
               or (reason == "cbc" and "no -C" in why)}
    assert len(refused) == 26 and "test-tls13-non-support" in refused


@pytest.mark.parametrize(("declaration", "complaint"), [
    ('case = "x"\nreason = "because"\nwhy = "w"', "is not one of"),
    ('case = "x"\nreason = "ffdhe"', "says why"),
    ('case = "x"\nmatch = "y"\nreason = "ffdhe"\nwhy = "w"', "not both"),
    ('match = "y.*"\nmode = "exclude"\nreason = "ffdhe"\nwhy = "w"', "exact cases"),
])
def test_a_declaration_without_an_allowed_reason_is_refused(declaration: str,
                                                            complaint: str) -> None:
    text = f'[[run]]\nscript = "s"\nserver = "rsa"\n[[run.declared]]\n{declaration}\n'
    with pytest.raises(ExpectationsError, match=complaint):
        load_expectations(text)


def test_a_script_is_not_run_only_for_a_missing_feature() -> None:
    with pytest.raises(ExpectationsError, match="not a missing feature"):
        load_expectations('[not_run."s"]\nreason = "engine-bug"\nwhy = "w"\n')


_OUTPUT = """sanity ...
OK

empty alert with no padding using handshake keys ...
Error while processing
AssertionError: Expected alert "unexpected_message" does not match received "decode_error"

other case ...
Error while processing
AssertionError: Unexpected message from peer: Alert(fatal, handshake_failure)

Test end
====================
TOTAL: 4
SKIP: 0
PASS: 2
XFAIL: 0
FAIL: 2
XPASS: 0
====================
FAILED:
\t'empty alert with no padding using handshake keys'
\t'other case'
"""


def _run(*declared: Declared, sampled: bool = False) -> Run:
    return Run("test-tls13-x", "rsa", (), None, sampled, declared)


def test_summary_names_each_failure_and_its_message() -> None:
    summary = parse_summary(_OUTPUT)
    assert summary is not None
    assert summary.counts["FAIL"] == 2
    assert summary.failed == ("empty alert with no padding using handshake keys", "other case")
    assert "decode_error" in summary.errors["empty alert with no padding using handshake keys"]
    assert "handshake_failure" in summary.errors["other case"]
    assert parse_summary("Traceback (most recent call last):\n") is None


def test_summary_reads_cases_printed_as_repeats_on_their_own_line() -> None:
    output = ('"sanity" repeat 0\nOK\n\n"After ClientHello" repeat 1\n'
              "AssertionError: Unexpected message from peer: Alert(fatal, handshake_failure)\n\n"
              + _OUTPUT[_OUTPUT.index("Test end"):].replace("other case", "After ClientHello"))
    summary = parse_summary(output)
    assert summary is not None
    assert "handshake_failure" in summary.errors["After ClientHello"]
    assert "sanity" not in summary.errors


def test_summary_keeps_the_quotes_inside_a_case_name() -> None:
    name = 'x25519 key share of "1"'
    output = (f"{name} ...\n"
              "AssertionError: Unexpected message from peer: Alert(fatal, handshake_failure)\n\n"
              + _OUTPUT[_OUTPUT.index("Test end"):].replace("other case", name))
    summary = parse_summary(output)
    assert summary is not None
    assert "handshake_failure" in summary.errors[name]


def test_summary_of_a_script_that_prints_no_case_lines() -> None:
    # Some TLS 1.2 scripts print only their summary: no case, no message.
    tail = _OUTPUT[_OUTPUT.index("Test end"):]
    summary = parse_summary(tail)
    assert summary is not None and summary.failed and summary.errors == {}


def test_judge_accepts_only_declared_failures_that_fail_as_declared() -> None:
    summary = parse_summary(_OUTPUT)
    bug = Declared("empty alert .*", "xfail", "engine-bug", "w", regex=True, error="decode_error")
    other = Declared("other case", "xfail", "ffdhe", "w", error="handshake_failure")
    assert judge(_run(bug, other), 1, summary) == []
    # Undeclared: a failure.
    assert any("unexpected failure: 'other case'" in p for p in judge(_run(bug), 1, summary))
    # Failing with another message than declared: a failure.
    wrong = Declared("other case", "xfail", "ffdhe", "w", error="illegal_parameter")
    assert any("otherwise than declared" in p for p in judge(_run(bug, wrong), 1, summary))


def test_judge_finds_stale_declarations_unless_the_run_samples() -> None:
    summary = parse_summary(_OUTPUT)
    declared = (Declared("empty alert .*", "xfail", "engine-bug", "w", regex=True),
                Declared("other case", "xfail", "ffdhe", "w"),
                Declared("a case that passes now", "xfail", "ffdhe", "w"))
    assert any("stale" in p for p in judge(_run(*declared), 1, summary))
    assert judge(_run(*declared, sampled=True), 1, summary) == []


def test_judge_refuses_a_timeout_and_a_missing_summary() -> None:
    assert judge(_run(), None, None) == ["did not finish in time"]
    assert judge(_run(), 1, None) == ["exited 1 without a summary"]


# ---- the test server, driven by our own client over loopback ------------------------


@cache
def _pki() -> ConformancePki:
    return make_pki(datetime.now(UTC))


def _client(pki: ConformancePki, with_certificate: bool) -> ClientConnection:
    anchor = TrustAnchor.from_der(pki.authority.certificate.public_bytes(Encoding.DER))
    leaf = pki.clients["ecdsa"]
    config = ClientConfig(
        authenticate_server=authenticator(anchor, Purpose.SERVER_AUTH),
        credentials=(Credentials((leaf.der,), leaf.private_key)
                     if with_certificate else None),
    )
    return ClientConnection(config, now=datetime.now(UTC))


def _converse(port: int, client: ClientConnection, request: bytes) -> list[object]:
    """Handshake, send `request`, close; every event the client saw."""
    events: list[object] = []
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(client.data_to_send())
        for _ in range(64):  # bounded: a handful of flights suffice
            data = sock.recv(65536)
            new = client.receive_data(data)
            events += new
            if any(isinstance(e, HandshakeComplete) for e in new):
                client.send_application_data(request)
            if any(isinstance(e, ApplicationData) for e in new) and not client.closed:
                client.close()
            sock.sendall(client.data_to_send())
            if not data or client.closed:
                break
    return events


def _received(events: list[object]) -> bytes:
    return b"".join(e.data for e in events if isinstance(e, ApplicationData))


@pytest.mark.parametrize("request_bytes", [b"GET / HTTP/1.0\r\n\r\n", b"GET / HTTP/1.0\n\n"])
def test_server_answers_an_http_request_and_close_notify(request_bytes: bytes) -> None:
    with running_server(server_config(_pki(), "rsa", client_auth=False)) as port:
        events = _converse(port, _client(_pki(), False), request_bytes)
    assert _received(events) == RESPONSE
    assert PeerClosed(clean=True) in events


def test_the_servers_speak_tls13_and_tls12() -> None:
    from pinata.tls.constants import TLS12, TLS13

    assert server_config(_pki(), "rsa", client_auth=True).versions == (TLS13, TLS12)


def test_echo_server_sends_back_what_it_got() -> None:
    with running_server(server_config(_pki(), "ecdsa", client_auth=False), echo=True) as port:
        events = _converse(port, _client(_pki(), False), b"A" * 99 + b"\n")
    assert _received(events) == b"A" * 99 + b"\n"


def test_auth_server_validates_the_client_with_pinata_x509() -> None:
    config = server_config(_pki(), "ecdsa", client_auth=True)
    with running_server(config) as port:
        events = _converse(port, _client(_pki(), True), b"GET / HTTP/1.0\r\n\r\n")
        refused = _converse(port, _client(_pki(), False), b"GET / HTTP/1.0\r\n\r\n")
    assert _received(events) == RESPONSE
    failure = next(e for e in refused if isinstance(e, ConnectionFailed))
    assert failure.alert is not None and failure.alert.name == "certificate_required"



def test_the_server_records_the_cause_of_each_refusal() -> None:
    refusals: list[str] = []
    config = server_config(_pki(), "ecdsa", client_auth=True)
    with running_server(config, refusals=refusals) as port:
        _converse(port, _client(_pki(), True), b"GET / HTTP/1.0\r\n\r\n")
        _converse(port, _client(_pki(), False), b"GET / HTTP/1.0\r\n\r\n")
        deadline = time.monotonic() + 5
        while not refusals and time.monotonic() < deadline:
            time.sleep(0.01)
    assert refusals == ["client_certificate_missing"]


def test_a_connection_that_raises_is_recorded(monkeypatch: pytest.MonkeyPatch) -> None:
    def explode(*args: object) -> None:
        raise RuntimeError("the engine raised")

    monkeypatch.setattr(conformance_server, "serve_connection", explode)
    crashes: list[str] = []
    with running_server(server_config(_pki(), "ecdsa", False), crashes=crashes) as port:
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
        for _ in range(100):  # bounded wait for the connection's thread
            if crashes:
                break
            time.sleep(0.05)
    assert len(crashes) == 1 and "the engine raised" in crashes[0]


def test_every_engine_bug_declaration_is_listed_in_known_engine_bugs() -> None:
    listed = (EXPECTATIONS.parent / "ENGINE_BUGS.md").read_text()
    expectations = load_expectations(EXPECTATIONS.read_text())
    scripts = {r.script for r in expectations.runs
               if any(d.reason == "engine-bug" for d in r.declared)}
    assert {s for s in scripts if s not in listed} == set()
