"""The piñata relayed to itself: both handshakes complete, only ciphertext crosses."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pinata.appliance import run_selftalk
from pinata.appliance.selftalk import Leg, RecordTap, RelayResult
from pinata.cli import main
from pinata.secret import Secret
from tests.appliance.harness import RunningAppliance, test_settings, written
from tests.appliance.test_web import get


def test_selftalk_completes_and_carries_no_plaintext(appliance: RunningAppliance) -> None:
    before = appliance.stats()
    report: dict[str, Any] = appliance.run_async(run_selftalk, appliance.state)
    written(json.dumps(report))
    assert report["both_released"] is True
    assert report["secret_crossed_relay_in_clear"] is False
    assert report["timed_out"] is False
    to_server, to_client = report["legs"]
    assert to_server["records"][0]["messages"] == ["client_hello"]
    assert to_client["records"][0]["messages"] == ["server_hello"]
    # After the first flight, everything is encrypted (RFC 8446 §5.2).
    for leg in (to_server, to_client):
        later = [r["type"] for r in leg["records"][1:]]
        assert set(later) <= {"application_data", "change_cipher_spec"}
        assert "application_data" in later
    sides = report["appliance"]
    # Reproduction 7: a release to the piñata's own certificates is no break.
    assert sides["tls_client"]["outcome"] == sides["tls_server"]["outcome"] == (
        "secret released to itself")
    assert sides["tls_server"]["peer_chain"][0]["subject"] == "CN=BTC Pinata toy client"
    after = appliance.stats()
    assert after["secrets_released_to_stranger"] == before["secrets_released_to_stranger"]
    assert after["secrets_released_to_self"] == before["secrets_released_to_self"] + 2
    _, _, metrics = get(appliance, "/metrics")
    assert f"pinata_secrets_released_to_self_total {after['secrets_released_to_self']}" in (
        metrics.decode())
    _, _, page = get(appliance, "/selftalk")
    assert json.loads(page)[-1]["client_leg_source_port"] == report["client_leg_source_port"]


def test_selftalk_runs_by_itself_and_lands_on_the_page(
    make_appliance: Callable[..., RunningAppliance],
) -> None:
    running = make_appliance(replace(test_settings(), selftalk_interval=60.0))
    line = running.wait_for_record(lambda r: "selftalk" in r)
    assert line["selftalk"]["both_released"] is True
    _, _, page = get(running, "/")
    assert "client_hello" in page.decode()


def test_selftalk_cli_against_a_running_appliance(
    appliance: RunningAppliance, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main([
        "selftalk", "--address", "127.0.0.1",
        "--tls-client-port", str(appliance.ports["tls_client"]),
        "--tls-server-port", str(appliance.ports["tls_server"]),
        "--http-port", str(appliance.ports["http"]),
    ])
    out = capsys.readouterr().out
    written(out)
    assert code == 0, out
    assert "never appeared in the relayed bytes" in out
    assert "client_hello" in out and "server_hello" in out
    # Both handshake traces, fetched from the appliance's /connection page.
    assert out.count('"outcome": "secret released to itself"') == 2
    assert '"what": "CertificateVerify"' in out


def _records(chunks: list[bytes]) -> list[dict[str, object]]:
    tap = RecordTap()
    for chunk in chunks:
        tap.feed(chunk)
    return tap.records


RECORD = st.tuples(st.sampled_from([20, 21, 22, 23]), st.binary(max_size=300)).map(
    lambda r: bytes([r[0], 3, 3]) + len(r[1]).to_bytes(2, "big") + r[1]
)


@given(st.lists(RECORD, max_size=8), st.lists(st.integers(1, 50), max_size=20))
def test_record_tap_is_independent_of_chunking(records: list[bytes], cuts: list[int]) -> None:
    stream = b"".join(records)
    chunks, at = [], 0
    for cut in cuts:
        chunks.append(stream[at : at + cut])
        at += cut
    chunks.append(stream[at:])
    assert _records(chunks) == _records([stream])
    assert len(_records([stream])) == len(records)


@given(st.binary(max_size=2000))
def test_record_tap_takes_any_bytes(data: bytes) -> None:
    tap = RecordTap()
    tap.feed(data)
    assert len(tap.records) <= 128


def test_carried_finds_the_secret_when_it_is_there() -> None:
    leg = Leg("a")
    leg.relayed += b"xx-s3cret-xx"
    result = RelayResult(1, 2, (leg, Leg("b")), timed_out=False)
    assert result.carried(Secret(b"s3cret"))
    assert not result.carried(Secret(b"other"))


def test_record_tap_names_messages_only_before_change_cipher_spec() -> None:
    """In TLS 1.2 the Finished after ChangeCipherSpec is an encrypted handshake
    record: its bytes are no message names."""
    def framed(kind: int, body: bytes) -> bytes:
        return bytes([kind, 3, 3]) + len(body).to_bytes(2, "big") + body

    client_key_exchange = bytes([16, 0, 0, 2, 1, 0])
    records = _records([framed(22, client_key_exchange), framed(20, b"\x01"),
                        framed(22, bytes([20, 0, 0, 12]) + bytes(12))])
    assert records[0]["messages"] == ["client_key_exchange"]
    assert [r.get("messages") for r in records[1:]] == [None, None]
