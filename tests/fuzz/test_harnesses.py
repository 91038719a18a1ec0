"""The harnesses themselves: their seeds reach deep, and their checks bite."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fuzz.harnesses import (
    HARNESSES,
    chains,
    client_raw,
    client_structured,
    decoders,
    fixtures,
    http,
    mutate,
    record,
    server_raw,
    server_structured,
    support,
    x509,
)
from fuzz.harnesses.engine import Watched
from fuzz.harnesses.support import MARKER_SECRET, FuzzFinding, Input
from fuzz.run import Result, _absorb
from pinata.tls.config import PeerRejected, VerifiedPeer
from pinata.tls.constants import CipherSuite, NamedGroup
from pinata.tls.errors import AlertDescription, Cause, ProtocolError
from pinata.tls.events import ConnectionFailed, HandshakeComplete, LocalFailure
from pinata.x509 import Purpose, ValidatedChain, validate

CORPUS = Path(__file__).resolve().parents[2] / "fuzz" / "corpus"


def _completed(watched: Watched) -> bool:
    return any(isinstance(e, HandshakeComplete) for e in watched.events)


# ---- the seeds replay real handshakes -----------------------------------------


@pytest.mark.parametrize("peer", ["self", "openssl", "tlslite"])
def test_recorded_client_flights_complete_against_the_server(peer: str) -> None:
    seeds = sorted((CORPUS / "server_raw").glob(f"{peer}-*"))
    assert seeds
    completed = [s.name for s in seeds if _completed(server_raw.run(s.read_bytes()))]
    assert completed, f"no {peer} client flight replays to a completed handshake"


@pytest.mark.parametrize("peer", ["self", "openssl", "tlslite"])
def test_recorded_server_flights_complete_against_the_client(peer: str) -> None:
    seeds = sorted((CORPUS / "client_raw").glob(f"{peer}-*"))
    assert seeds
    completed = [s.name for s in seeds if _completed(client_raw.run(s.read_bytes()))]
    assert completed, f"no {peer} server flight replays to a completed handshake"


def test_honest_structured_handshake_sends_the_secret_to_the_verified_client() -> None:
    server = server_structured.run(bytes((0, 0, 1, 1)))
    done = next(e for e in server.events if isinstance(e, HandshakeComplete))
    assert done.peer is not None
    assert server.sent_secret


def test_client_without_credentials_gets_no_secret() -> None:
    # Client choice bit 0: no credentials; server choice 0: client auth required.
    server = server_structured.run(bytes((1, 0, 1, 1)))
    assert not _completed(server)
    assert not server.sent_secret
    failure = next(e for e in server.events if isinstance(e, ConnectionFailed))
    assert failure.alert == AlertDescription.certificate_required


def test_mutated_finished_is_refused_by_the_client() -> None:
    # Message bytes: ServerHello, EE, CR, Certificate, CertificateVerify,
    # Finished; the last is flipped (op 1) and the client must refuse it.
    data = bytes((0, 0, 1, 1)) + b"\x00" * 5 + bytes((1, 0, 0xFF))
    client = client_structured.run(data)
    assert not _completed(client)
    assert any(isinstance(e, ConnectionFailed) for e in client.events)


# ---- the checks can fail ------------------------------------------------------


def test_check_events_refuses_a_missing_alert() -> None:
    failed = ConnectionFailed(LocalFailure(Cause.malformed_message, "x"))
    with pytest.raises(FuzzFinding):
        support.check_events([failed], b"", protected=False)
    wrong = bytes((21, 3, 3, 0, 2, 2, AlertDescription.bad_record_mac))
    with pytest.raises(FuzzFinding):
        support.check_events([failed], wrong, protected=False)
    right = bytes((21, 3, 3, 0, 2, 2, AlertDescription.decode_error))
    support.check_events([failed], right, protected=False)
    with pytest.raises(FuzzFinding):
        support.check_events([failed], right, protected=True)


def test_split_records_refuses_broken_framing() -> None:
    with pytest.raises(FuzzFinding):
        support.split_records(bytes((22, 3, 3, 0, 9, 1)))
    assert support.split_records(bytes((23, 3, 3, 0, 1, 7))) == [(23, b"\x07")]


def test_check_no_secret_finds_the_marker_anywhere() -> None:
    with pytest.raises(FuzzFinding):
        support.check_no_secret(b"xx" + MARKER_SECRET)
    with pytest.raises(FuzzFinding):
        support.check_no_secret([{"reason": MARKER_SECRET.decode()}])
    support.check_no_secret(b"nothing", "to see", [1, 2])


def test_completion_without_peer_is_a_finding_when_one_was_required() -> None:
    done = HandshakeComplete(
        0x0304, CipherSuite.TLS_AES_128_GCM_SHA256, NamedGroup.x25519, None, None, None
    )
    with pytest.raises(FuzzFinding):
        support.check_completion([done], peer_required=True)
    assert support.check_completion([done], peer_required=False) is done


def test_accepted_chain_oracle_catches_a_forged_link() -> None:
    chain = chains.deep_chain()
    anchor = x509.anchor(chain.anchor_der)
    purpose = Purpose.CLIENT_AUTH
    valid = validate(anchor, list(chain.certificates), chains.TOY_NOW, purpose)
    assert isinstance(valid, ValidatedChain)
    x509.check_accepted(valid, chain.certificates, anchor, chains.TOY_NOW)
    # The same path claimed for a leaf the intermediate never signed.
    other_leaf = chains.toy_chain().certificates[0]
    forged = ValidatedChain(
        (other_leaf, *valid.chain[1:]), valid.leaf_public_key, False, valid.subjects
    )
    with pytest.raises(FuzzFinding):
        x509.check_accepted(forged, [other_leaf, *chain.certificates[1:]], anchor, chains.TOY_NOW)


def test_http_response_check() -> None:
    ok = (
        b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nhi"
        b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n"
    )
    assert http.check_responses(ok, limit=4) == 2
    with pytest.raises(FuzzFinding):
        http.check_responses(b"HTTP/1.1 500 Oops\r\ncontent-length: 0\r\n\r\n", limit=4)
    with pytest.raises(FuzzFinding):
        http.check_responses(b"hello", limit=4)
    with pytest.raises(FuzzFinding):
        http.check_responses(ok * 3, limit=4)


def test_http_harness_serves_the_page() -> None:
    http.one_input(b"\x00GET / HTTP/1.1\r\nHost: a\r\n\r\n")
    assert http.state().counters is not None


def test_mutation_op_zero_keeps_the_message() -> None:
    raw = bytes((20, 0, 0, 3)) + b"abc"
    assert mutate.mutate_message(raw, Input(b"\x00")) == raw
    assert mutate.mutate_message(raw, Input(b"")) == raw
    assert mutate.mutate_message(raw, Input(b"\x07")) == b""  # op 7 drops it


def test_runner_reads_libfuzzer_progress() -> None:
    result = Result("decoders", 0.0)
    line = "#4096\tpulse  cov: 120 ft: 300 corp: 40/1000b lim: 4096 exec/s: 2048 rss: 60Mb"
    _absorb(result, line)
    _absorb(result, "stat::number_of_executed_units: 5000")
    _absorb(result, "Test unit written to /tmp/x/crash-abc")
    assert (result.executions, result.coverage, result.exec_per_sec) == (5000, 120, 2048)
    assert result.artifact == "/tmp/x/crash-abc" and not result.ok


def test_registry_names_importable_modules() -> None:
    import importlib

    for module, _ in HARNESSES.values():
        assert callable(importlib.import_module(module).one_input)


# ---- a little fuzzing inside the normal suite ---------------------------------


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=300))
def test_input_reader_is_total(data: bytes) -> None:
    inp = Input(data)
    values = [inp.u8(), inp.u16(), inp.below(300), inp.bool(), len(inp.blob()), inp.remaining]
    assert all(v >= 0 for v in values)
    assert sum(len(c) for c in inp.chunks(data)) == len(data)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=200))
def test_cheap_harnesses_hold_on_arbitrary_bytes(data: bytes) -> None:
    decoders.one_input(data)
    record.one_input(data)
    server_raw.one_input(data)
    client_raw.one_input(data)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=64))
def test_structured_harnesses_hold_on_arbitrary_bytes(data: bytes) -> None:
    server_structured.one_input(data)
    client_structured.one_input(data)


# ---- memory growth ------------------------------------------------------------


def test_growth_watch_catches_a_leak_and_spares_a_steady_harness() -> None:
    from fuzz.growth import GrowthWatch

    leaked: list[object] = []

    def leaky(data: bytes) -> None:
        leaked.extend([] for _ in range(10))  # gc-tracked, as real leaks of state are

    def steady(data: bytes) -> None:
        _ = [[] for _ in range(10)]

    watch = GrowthWatch(leaky, max_objects=5_000, max_rss_mb=1e9, warmup=10, check_every=100)
    with pytest.raises(MemoryError):
        for _ in range(2_000):
            watch(b"")
    fine = GrowthWatch(steady, max_objects=5_000, max_rss_mb=1e9, warmup=10, check_every=100)
    for _ in range(2_000):
        fine(b"")


def test_research_runs_refuse_a_corpus_inside_the_repository() -> None:
    from fuzz.run import ROOT, research

    with pytest.raises(SystemExit):
        research(["decoders"], 1, ROOT / "corpus")
    assert not (ROOT / "corpus" / "decoders" / "artifacts").exists()


# ---- the engine harnesses run the real validator too ------------------------------


def test_toy_structured_handshake_is_judged_by_pinata_x509() -> None:
    # TOY on both sides: the toy piñata's credentials, each chain validated by
    # pinata.x509 against the toy anchor, as the appliance does on port 10000.
    server = server_structured.run(bytes((fixtures.TOY, fixtures.TOY, 1, 1)))
    done = next(e for e in server.events if isinstance(e, HandshakeComplete))
    assert done.peer is not None
    assert done.peer.chain[0] == fixtures.toy().researcher_client.der
    assert done.peer.chain[-1] == fixtures.toy().anchor.der
    assert server.sent_secret
    client = client_structured.run(bytes((fixtures.TOY, fixtures.TOY, 1, 1)))
    assert _completed(client)


def test_toy_validator_refuses_the_fixture_chain() -> None:
    # The fixture CA is no toy anchor: the real validator says so (the
    # pinned stub accepts this very chain).
    chain = fixtures.credentials("client").chain
    assert isinstance(fixtures.pinned_authenticator()(chain, fixtures.NOW), VerifiedPeer)
    verdict = fixtures.toy_authenticator(Purpose.CLIENT_AUTH)(chain, fixtures.NOW)
    assert isinstance(verdict, PeerRejected)


def test_raw_toy_seeds_reach_the_validator() -> None:
    # A recorded toy client flight: its chain validates, so the server goes
    # on to CertificateVerify (the toy's ECDSA signatures are randomised, so
    # the replayed Finished no longer matches and the handshake stops there).
    seed = next((CORPUS / "server_raw").glob(f"self-{fixtures.TOY}-{fixtures.TOY}-*"))
    server = server_raw.run(seed.read_bytes())
    failure = next(e for e in server.events if isinstance(e, ConnectionFailed))
    assert failure.alert == AlertDescription.decrypt_error


# ---- TLS 1.2 -----------------------------------------------------------------


def test_decoder_seeds_hold_every_tls12_message_and_extension() -> None:
    from pinata.tls import extensions as ext
    from pinata.tls.constants import TLS12
    from pinata.tls.messages import parse_handshake_message

    parsed: set[str] = set()
    for seed in sorted((CORPUS / "decoders").iterdir()):
        data = seed.read_bytes()
        target = decoders._TARGETS[data[0] % len(decoders._TARGETS)]
        try:
            if target is decoders._message12:
                types = decoders._MESSAGE_TYPES_TLS12
                message = parse_handshake_message(types[data[1] % len(types)], data[2:], TLS12)
                parsed.add(type(message).__name__)
            elif target is decoders._typed:
                kind = decoders._TYPED[data[1] % len(decoders._TYPED)]
                parsed.add(type(kind.parse(data[2:])).__name__)
        except ProtocolError:
            continue  # a seed the fuzzer kept for a refusal it reaches
    expected = {"ServerKeyExchange", "ServerHelloDone", "ClientKeyExchange", "HelloRequest",
                "CertificateRequest12", "Certificate12", ext.ExtendedMasterSecret.__name__,
                ext.RenegotiationInfo.__name__, ext.EcPointFormats.__name__}
    assert expected <= parsed


def test_tls12_decoder_lets_refusals_through_and_finds_a_misparse(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from pinata.tls.messages import ServerHelloDone

    # A ServerKeyExchange with an explicit curve (type 1): the codec's typed
    # refusal (RFC 8422 §5.4), which the harness lets through.
    selector = decoders._MESSAGE_TYPES_TLS12.index(12)
    decoders.one_input(bytes((8, selector, 1)) + bytes(10))
    # A codec that answered with another message than the type asked would be a finding.
    monkeypatch.setattr(decoders, "parse_handshake_message",
                        lambda *_: ServerHelloDone())
    with pytest.raises(FuzzFinding, match="parsed as ServerHelloDone"):
        decoders.one_input(bytes((8, selector, 3, 0, 23)))


def test_tls12_configurations_limit_both_sides_to_tls12() -> None:
    from pinata.tls.constants import TLS12, TLS13

    assert fixtures.server_config(fixtures.TLS12_ONLY).versions == (TLS12,)
    assert fixtures.client_config(fixtures.TLS12_ONLY).versions == (TLS12,)
    assert fixtures.client_config(0).versions == (TLS13, TLS12)
    suites = fixtures.server_config(fixtures.TLS12_ONLY).cipher_suites_tls12
    assert suites and all("ECDHE_ECDSA" in s.name for s in suites)


def _completed_tls12(watched: Watched) -> bool:
    from pinata.tls.constants import TLS12

    return _completed(watched) and watched.connection.version == TLS12


@pytest.mark.parametrize("peer", ["self12", "openssl12"])
def test_recorded_tls12_flights_complete_tls12_handshakes(peer: str) -> None:
    for harness, directory in ((server_raw, "server_raw"), (client_raw, "client_raw")):
        seeds = sorted((CORPUS / directory).glob(f"{peer}-*"))
        assert seeds, f"no {peer} seeds for {directory}"
        completed = [s.name for s in seeds if _completed_tls12(harness.run(s.read_bytes()))]
        assert completed, f"no {peer} flight in {directory} replays to a TLS 1.2 handshake"


def test_honest_tls12_structured_seeds_complete_tls12_handshakes() -> None:
    for harness, directory in ((server_structured, "server_structured"),
                               (client_structured, "client_structured")):
        seeds = sorted((CORPUS / directory).glob("honest12-*"))
        assert len(seeds) >= 8
        for seed in seeds:
            assert _completed_tls12(harness.run(seed.read_bytes())), f"{directory}/{seed.name}"


def test_tls12_mutators_change_the_fields_of_tls12_messages() -> None:
    from pinata.tls.constants import TLS12
    from pinata.tls.messages import (
        ClientKeyExchange,
        ServerKeyExchange,
        parse_handshake_message,
    )

    ske = ServerKeyExchange(3, 0x001D, bytes(range(32)), 0x0807, bytes(64)).encode()
    # op 9 (structured), field 4 (the signature), flip byte 5 with 0x11.
    changed = mutate.mutate_message(ske, Input(bytes((9, 4, 0, 5, 0x10))), TLS12)
    parsed = parse_handshake_message(12, changed[4:], TLS12)
    assert isinstance(parsed, ServerKeyExchange)
    assert parsed.signature == bytes(5) + b"\x11" + bytes(58)
    # field 2 (the point), op 2: the compressed form's prefix (RFC 8422 §5.1.2).
    cke = ClientKeyExchange(b"\x04" + bytes(range(64))).encode()
    changed = mutate.mutate_message(cke, Input(bytes((9, 2, 0))), TLS12)
    point = parse_handshake_message(16, changed[4:], TLS12)
    assert isinstance(point, ClientKeyExchange) and point.public[0] == 2
    assert len(point.public) == 1 + 32
