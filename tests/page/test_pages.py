"""The page's parts as pure functions: masking, the bounded history, the
ladder, the policy hashes, and escaping of everything a peer can choose."""

from __future__ import annotations

import base64
import hashlib
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from pinata.appliance.journal import ConnectionRecord, Journal
from pinata.appliance.outcome import Outcome
from pinata.appliance.page.history import MAX_CHECKS, MINUTES, History, failed_check
from pinata.appliance.page.ladder import arrows, ladder_svg
from pinata.appliance.page.layout import CONTENT_SECURITY_POLICY, SCRIPT, STYLE
from pinata.appliance.page.mask import mask_address
from pinata.appliance.pages import PageInputs, connection_html, index_html
from pinata.tls.errors import AlertDescription
from tests.page.markup import assert_no_injected_markup, parse

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
HOSTILE = '</td><script>alert(1)</script><img src=x onerror="alert(2)">&amp;'


@pytest.mark.parametrize(("address", "masked"), [
    ("203.0.113.77", "203.0.113.0/24"),
    ("127.0.0.1", "127.0.0.0/24"),
    ("2001:db8:abcd:12:1::9", "2001:db8:abcd::/48"),
    ("::ffff:198.51.100.3", "198.51.100.0/24"),
    ("fe80::1%eth0", "fe80::/48"),
    ("not an address", "?"),
    ("", "?"),
])
def test_addresses_are_masked(address: str, masked: str) -> None:
    assert mask_address(address) == masked


def record(listener: str = "tls_server", when: datetime = NOW, **fields: Any) -> ConnectionRecord:
    r = ConnectionRecord(listener, 10000, ("203.0.113.9", 50000), when)
    for key, value in fields.items():
        setattr(r, key, value)
    return r


def test_history_is_bounded_to_a_day_of_minutes() -> None:
    history = History()
    for minute in range(3 * MINUTES):
        history.add(NOW + timedelta(minutes=minute), "refused")
    assert len(history.buckets) == MINUTES
    series = history.series(NOW + timedelta(minutes=3 * MINUTES - 1), 10)
    assert len(series) == MINUTES // 10
    assert sum(sum(c.values()) for c in series) == MINUTES


def test_history_counts_attempts_by_kind_and_skips_the_web() -> None:
    history = History()
    history.observe(record(outcome=Outcome.secret_released))
    history.observe(record(outcome=Outcome.alert_sent, alert_code=AlertDescription.unknown_ca,
                           detail="peer certificate rejected: no_path: no issuer found"))
    history.observe(record(outcome=Outcome.timeout))
    history.observe(record("http", outcome=Outcome.served))
    last = history.series(NOW, 10)[-1]
    assert dict(last) == {"released": 1, "refused": 1, "other": 1}
    assert dict(history.x509_checks) == {"no_path": 1}


def test_x509_check_names_are_bounded() -> None:
    history = History()
    for i in range(MAX_CHECKS + 10):
        history.observe(record(outcome=Outcome.alert_sent,
                               alert_code=AlertDescription.bad_certificate,
                               detail=f"peer certificate rejected: check_{i}: x"))
    assert len(history.x509_checks) <= MAX_CHECKS + 1
    assert sum(history.x509_checks.values()) == MAX_CHECKS + 10


def test_failed_check_reads_the_validators_words() -> None:
    assert failed_check("peer certificate rejected: eku (certificate 0): no clientAuth") == "eku"
    assert failed_check("expired (certificate 2): at 2001") == "expired"
    assert failed_check("closed during the handshake") is None
    assert failed_check(None) is None


def selftalk_report() -> dict[str, Any]:
    to_server = [{"type": "handshake", "length": 202, "seq": 0, "messages": ["client_hello"]},
                 {"type": "application_data", "length": 588, "seq": 3}]
    to_client = [{"type": "handshake", "length": 122, "seq": 1, "messages": ["server_hello"]},
                 {"type": "application_data", "length": 711, "seq": 2},
                 {"type": "application_data", "length": 69, "seq": 4}]
    return {"time": NOW.isoformat(), "legs": [
        {"direction": "a", "bytes": 790, "records": to_server},
        {"direction": "b", "bytes": 902, "records": to_client}],
        "secret_crossed_relay_in_clear": False, "both_released": True}


def test_ladder_has_one_arrow_per_record_in_relay_order() -> None:
    report = selftalk_report()
    assert [(leg, r["seq"]) for leg, r in arrows(report)] == [(0, 0), (1, 1), (1, 2), (0, 3),
                                                               (1, 4)]
    svg = ladder_svg(report, 10002, 10000)
    assert svg.count('<g class="rec') == 5
    assert svg.count('class="rec clear"') == 2
    assert "handshake, 202 bytes: client_hello" in svg
    assert "application_data, 711 bytes (encrypted)" in svg
    assert "port 10002 side" in svg and "port 10000 side" in svg


def test_ladder_escapes_and_survives_junk() -> None:
    report = selftalk_report()
    report["legs"][0]["records"][0]["messages"] = [HOSTILE]
    svg = ladder_svg(report, 1, 2)
    assert "<script>" not in svg and "&lt;script&gt;" in svg
    assert ladder_svg({"legs": "junk"}, 1, 2) == ""
    assert ladder_svg({}, 1, 2) == ""


def test_policy_admits_exactly_our_style_and_script() -> None:
    def digest(text: str) -> str:
        return base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()

    assert f"style-src 'sha256-{digest(STYLE)}'" in CONTENT_SECURITY_POLICY
    assert f"script-src 'sha256-{digest(SCRIPT)}'" in CONTENT_SECURITY_POLICY
    assert "unsafe-inline" not in CONTENT_SECURITY_POLICY
    assert "default-src 'none'" in CONTENT_SECURITY_POLICY


def hostile_journal() -> Journal:
    journal = Journal(lambda line: None, keep=8)
    hostile = record(outcome=Outcome.alert_sent, alert_code=AlertDescription.bad_certificate,
                     alert="bad_certificate", detail=f"peer certificate rejected: {HOSTILE}")
    journal.write(hostile)
    released = record(outcome=Outcome.secret_released, peer_subjects=(f"CN={HOSTILE}",),
                      peer_fingerprints=("ab" * 32,))
    released.trace = [{"kind": "in", "what": "Certificate", "subjects": [HOSTILE]}]
    journal.write(released)
    journal.write(record("http", outcome=Outcome.served))
    return journal


def page_inputs(journal: Journal) -> PageInputs:
    return PageInputs(
        bitcoin_address=HOSTILE, ports={"tls_server": 10000, "connect_back": 10001,
                                        "tls_client": 10002, "http": 8080, "https": 8443},
        connect_back_target=40001, anchor_pem="-----BEGIN CERTIFICATE-----\n",
        anchor_der=b"anchor", stats={"outcomes": {HOSTILE: 1}, "limits_hit": {HOSTILE: 2}},
        history=History(), now=NOW, software_count=3, selftalk=selftalk_report(),
        recent=journal.numbered(), tls_versions=("TLS 1.3", "TLS 1.2"))


def test_index_escapes_what_peers_choose() -> None:
    journal = hostile_journal()
    page = index_html(page_inputs(journal))
    assert_no_injected_markup(page, max_scripts=1)
    assert HOSTILE not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    # Only bounty-port connections are listed, newest first, each linked by number.
    links = re.findall(r'<a href="/connection/(\d+)">', page)
    assert links == ["2", "1"]
    assert "203.0.113.0/24" in page and "203.0.113.9" not in page


def test_connection_view_escapes_the_chain_and_trace() -> None:
    journal = hostile_journal()
    found = journal.by_number(2)
    assert found is not None and found["outcome"] == "secret released"
    page = connection_html(2, found)
    assert_no_injected_markup(page, max_scripts=0)
    assert HOSTILE not in page
    assert page.count("&lt;script&gt;") == 2  # the subject and the trace entry
    assert "203.0.113.0/24" in page and "203.0.113.9" not in page
    assert parse(page).tags.count("tr") >= 5


def test_journal_numbers_stay_stable_as_records_age_out() -> None:
    journal = Journal(lambda line: None, keep=3)
    for _ in range(5):
        journal.write(record(outcome=Outcome.timeout))
    assert [n for n, _ in journal.numbered()] == [3, 4, 5]
    assert journal.by_number(2) is None and journal.by_number(6) is None
    assert journal.by_number(3) is journal.recent[0]


def test_try_commands_reach_the_ports_as_configured() -> None:
    from pinata.appliance.pages import try_command

    assert try_command("tls_server", 10000, 40001) == (
        "pinata try 10000 --host ADDRESS --cert C --key K")
    assert try_command("tls_client", 12319, 42318).endswith("--port-offset 2317")
    assert try_command("connect_back", 10001, 40001).endswith("--key K")
    assert try_command("connect_back", 443, 40001).endswith(
        "--port-offset -9558 --listen-port 40001")


def test_chart_draws_one_bar_per_ten_minutes_of_the_day() -> None:
    from pinata.appliance.page.chart import history_svg

    history = History()
    start = NOW - timedelta(minutes=MINUTES - 1)
    for minute in range(0, MINUTES, 10):
        history.add(start + timedelta(minutes=minute), "refused")
    svg = history_svg(history, NOW)
    assert svg.count('<rect class="k-refused" x=') == MINUTES // 10 + 1  # + the legend's
    assert 'data-total="144"' in svg


def test_recent_connections_shows_the_latest_twenty() -> None:
    journal = Journal(lambda line: None, keep=64)
    for _ in range(30):
        journal.write(record(outcome=Outcome.timeout))
    page = index_html(page_inputs(journal))
    links = re.findall(r'<a href="/connection/(\d+)">', page)
    assert links == [str(n) for n in range(30, 10, -1)]


def test_the_page_names_the_versions_spoken_and_each_connections_version() -> None:
    journal = Journal(lambda line: None, keep=8)
    journal.write(record(outcome=Outcome.secret_released, version="TLS 1.2"))
    journal.write(record(outcome=Outcome.alert_sent, alert_code=AlertDescription.protocol_version,
                         alert="protocol_version"))
    inputs = page_inputs(journal)
    stats = {"outcomes": {"no common cipher suite": 4},
             "handshakes_by_version": {"TLS 1.2": 7, "TLS 1.3": 3}}
    page = index_html(PageInputs(**{**vars(inputs), "stats": stats}))
    assert '<span id="tls-versions">TLS 1.3 and TLS 1.2</span>' in page
    rows = re.findall(r"<tr><td><a href=\"/connection/(\d+)\">.*?</tr>", page, re.S)
    assert rows == ["2", "1"]
    first, second = re.findall(r"<tr><td><a href=\"/connection/\d+\">.*?</tr>", page, re.S)
    assert "<td>TLS 1.2</td>" in second and "TLS 1." not in first
    assert '<dd data-stat="handshakes_by_version/TLS 1.2">7</dd>' in page
    assert '<dd data-stat="handshakes_by_version/TLS 1.3">3</dd>' in page
    assert '<dd data-stat="outcomes/no common cipher suite">4</dd>' in page


def test_a_connection_page_names_its_cause_group_and_version() -> None:
    journal = Journal(lambda line: None, keep=4)
    journal.write(record(outcome=Outcome.alert_sent, alert_code=AlertDescription.handshake_failure,
                         alert="handshake_failure", cause="no_secure_renegotiation",
                         version="TLS 1.2"))
    found = journal.by_number(1)
    assert found is not None
    page = connection_html(1, found)
    for shown in ("<td>cause</td><td>no_secure_renegotiation</td>",
                  "<td>group</td><td>no secure renegotiation (RFC 5746)</td>",
                  "<td>version</td><td>TLS 1.2</td>"):
        assert shown in page
