"""Outcome groups, connection records and counters, without sockets."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from pinata.appliance.journal import ConnectionRecord, Journal
from pinata.appliance.outcome import Outcome, StatGroup, group_of
from pinata.appliance.stats import Counters
from pinata.tls.errors import AlertDescription, Cause
from pinata.tls.events import ConnectionFailed, LocalFailure

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def test_sent_alerts_group_like_the_original_statistics() -> None:
    sent = Outcome.alert_sent
    assert group_of(sent, AlertDescription.certificate_required) is StatGroup.no_certificate
    assert group_of(sent, AlertDescription.decrypt_error) is StatGroup.bad_signature
    assert group_of(sent, AlertDescription.unknown_ca) is StatGroup.x509_failure
    assert group_of(sent, AlertDescription.certificate_expired) is StatGroup.x509_failure
    assert group_of(sent, AlertDescription.protocol_version) is StatGroup.unsupported_version
    assert group_of(sent, AlertDescription.unexpected_message) is StatGroup.unexpected_message
    assert group_of(sent, AlertDescription.handshake_failure) is StatGroup.no_shared_parameters
    assert group_of(sent, AlertDescription.decode_error) is StatGroup.malformed


@given(st.sampled_from(Outcome), st.one_of(st.none(), st.integers(0, 255)))
def test_every_outcome_has_a_group(outcome: Outcome, alert: int | None) -> None:
    assert isinstance(group_of(outcome, alert), StatGroup)


def test_record_from_a_failure_and_its_json_line() -> None:
    lines: list[str] = []
    journal = Journal(lines.append, keep=2)
    record = ConnectionRecord("tls_server", 10000, ("192.0.2.1", 4242), T0)
    record.failed(ConnectionFailed(LocalFailure(Cause.certificate_bad, "x" * 1000)))
    record.duration = 0.5
    journal.write(record)
    (line,) = lines
    as_json = json.loads(line)
    assert as_json["outcome"] == "alert sent" and as_json["alert"] == "bad_certificate"
    assert as_json["cause"] == "certificate_bad"
    assert as_json["group"] == "X.509 failure"
    assert len(as_json["detail"]) == 200
    assert journal.find("192.0.2.1", 4242) == as_json
    assert journal.find("192.0.2.1", 4243) is None
    for port in (1, 2, 3):
        journal.write(ConnectionRecord("http", 8080, ("192.0.2.9", port), T0))
    assert len(journal.recent) == 2 and journal.find("192.0.2.1", 4242) is None


def test_the_other_workers_ring_keeps_the_log_line_itself() -> None:
    """With workers, the record's line is encoded once: the shared ring is given
    the very line the log got, which decodes to the record the page holds."""
    lines: list[str] = []
    kept: list[tuple[object, str]] = []

    class Fleet:
        def keep_record(self, record: object, line: str) -> None:
            kept.append((record, line))

        def others_records(self) -> list[dict[str, object]]:
            return []

    journal = Journal(lines.append, keep=2, fleet=Fleet())
    record = ConnectionRecord("tls_server", 10000, ("192.0.2.1", 4242), T0)
    record.trace = [{"kind": "in", "what": "ClientHello", "cipher_suites": ["x", "y"]}]
    written = journal.write(record)
    ((held, line),) = kept
    assert lines == [line] and held is written
    assert json.loads(line) == written and written["trace"] == record.trace


def test_first_verdict_wins() -> None:
    record = ConnectionRecord("tls_client", 10002, ("192.0.2.1", 1), T0)
    record.finish(Outcome.timeout, "handshake deadline")
    record.finish(Outcome.closed_by_peer)
    assert record.outcome is Outcome.timeout and record.detail == "handshake deadline"


def test_counters_json_and_prometheus_agree() -> None:
    counters = Counters(T0)
    counters.opened("tls_server")
    counters.finished("tls_server", StatGroup.secret_released)
    counters.opened("tls_server")
    counters.refused("http", "max_connections")
    counters.http_response(200)
    stats = counters.to_json(T0 + timedelta(seconds=5))
    assert stats["secrets_released_to_stranger"] == 1
    assert stats["uptime_seconds"] == 5.0
    listeners = stats["listeners"]
    assert isinstance(listeners, dict)
    assert listeners["tls_server"] == {
        "connections": 2, "active": 1, "outcomes": {"secret released": 1}
    }
    text = counters.to_prometheus(T0)
    assert 'pinata_connections_total{listener="tls_server"} 2' in text
    assert 'pinata_connections_active{listener="tls_server"} 1' in text
    assert 'pinata_outcomes_total{listener="http",outcome="limit"} 1' in text
    assert "pinata_secrets_released_total 1" in text
    assert 'pinata_limits_hit_total{limit="max_connections"} 1' in text
    assert text.endswith("\n")


def test_causes_the_original_counted_apart_have_their_own_group() -> None:
    sent = Outcome.alert_sent
    handshake_failure = AlertDescription.handshake_failure
    assert group_of(sent, handshake_failure, Cause.no_common_cipher_suite.value) is (
        StatGroup.no_common_cipher_suite)
    # Another cause with the same alert stays in the alert's group.
    assert group_of(sent, handshake_failure, Cause.no_common_group.value) is (
        StatGroup.no_shared_parameters)
    assert group_of(sent, handshake_failure, "not a cause") is StatGroup.no_shared_parameters
    record = ConnectionRecord("tls_server", 10000, ("192.0.2.1", 1), T0)
    record.failed(ConnectionFailed(LocalFailure(Cause.no_common_cipher_suite)))
    assert record.to_json()["group"] == "no common cipher suite"
    # The original's families, whatever their alert shares with others.
    for cause, group in [
        (Cause.record_version_unknown, StatGroup.unknown_record_version),
        (Cause.heartbeat_record, StatGroup.heartbeat),
        (Cause.version_too_old, StatGroup.version_too_old),
        (Cause.no_secure_renegotiation, StatGroup.no_secure_renegotiation),
        (Cause.renegotiation_info_wrong, StatGroup.no_secure_renegotiation),
        (Cause.client_certificate_missing_tls12, StatGroup.no_certificate),
        (Cause.tls13_not_offered, StatGroup.unsupported_version),
    ]:
        failed = ConnectionRecord("tls_server", 10000, ("192.0.2.1", 1), T0)
        failed.failed(ConnectionFailed(LocalFailure(cause)))
        assert failed.stat_group is group, cause


def test_handshakes_are_counted_by_version_in_json_prometheus_and_across_workers() -> None:
    counters = Counters(T0)
    for version in ("TLS 1.3", "TLS 1.2", "TLS 1.2"):
        counters.handshake_completed(version)
    stats = counters.to_json(T0)
    assert stats["handshakes_by_version"] == {"TLS 1.2": 2, "TLS 1.3": 1}
    text = counters.to_prometheus(T0)
    assert 'pinata_handshakes_total{version="TLS 1.2"} 2' in text
    assert 'pinata_handshakes_total{version="TLS 1.3"} 1' in text
    other = Counters(T0)
    other.add(json.loads(json.dumps(counters.snapshot())))
    other.handshake_completed("TLS 1.3")
    assert other.to_json(T0)["handshakes_by_version"] == {"TLS 1.2": 2, "TLS 1.3": 2}
