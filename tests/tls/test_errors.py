"""Typed failures: one enum of causes, one table to alerts, and a
`ConnectionFailed` that says who ended the connection as a variant."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import pinata.tls
from pinata.tls.connection import ServerConnection
from pinata.tls.constants import HandshakeType, NamedGroup
from pinata.tls.errors import (
    _ALERTS,
    AlertDescription,
    Cause,
    ProtocolError,
    alert_for,
    rejection_cause,
)
from pinata.tls.events import ConnectionFailed, Ended, LocalFailure, PeerAlert
from tests.tls.pairs import client_config, failure, new_pair, pump, server_config
from tests.tls.peers import NOW
from tests.tls.test_refusals import _flip_last_byte, _rewrite

_PACKAGE = Path(pinata.tls.__file__).parent


def test_every_cause_has_a_row_in_the_table() -> None:
    assert set(_ALERTS) == set(Cause)
    silent = {c for c in Cause if alert_for(c) is None}
    assert silent == {Cause.closed_during_handshake, Cause.sequence_number_exhausted}


def _protocol_error_calls() -> list[tuple[str, ast.Call]]:
    calls = []
    sources = sorted(_PACKAGE.rglob("*.py"))
    assert len(sources) > 10
    for path in sources:
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id == "ProtocolError"
            ):
                calls.append((f"{path.name}:{node.lineno}", node))
    return calls


def test_every_raise_site_names_a_cause_not_an_alert() -> None:
    calls = _protocol_error_calls()
    assert len(calls) > 60
    for where, call in calls:
        first = call.args[0] if call.args else None
        names_a_cause = (
            isinstance(first, ast.Attribute)
            and isinstance(first.value, ast.Name)
            and first.value.id == "Cause"
        ) or (
            isinstance(first, ast.Call)
            and isinstance(first.func, ast.Name)
            and first.func.id == "rejection_cause"
        )
        # The one generic constructor in errors.py passes its own `cause` on.
        if not names_a_cause:
            assert isinstance(first, ast.Name) and first.id == "cause", where


def test_a_protocol_error_takes_its_alert_from_the_table() -> None:
    error = ProtocolError(Cause.cookie_mismatch, "detail")
    assert error.alert == AlertDescription.illegal_parameter
    assert error.cause is Cause.cookie_mismatch
    with pytest.raises(ValueError):
        ProtocolError(Cause.closed_during_handshake)


@pytest.mark.parametrize(
    ("alert", "cause"),
    [
        (AlertDescription.unknown_ca, Cause.certificate_unknown_ca),
        (AlertDescription.certificate_expired, Cause.certificate_expired),
        (AlertDescription.certificate_required, Cause.certificate_required),
        # Not a certificate alert: the authenticator cannot make us send it.
        (AlertDescription.close_notify, Cause.certificate_unknown),
        (AlertDescription.decrypt_error, Cause.certificate_unknown),
    ],
)
def test_an_authenticators_alert_becomes_a_certificate_cause(
    alert: AlertDescription, cause: Cause
) -> None:
    assert rejection_cause(alert) is cause


def test_our_refusal_is_a_local_failure_and_the_peer_sees_a_peer_alert() -> None:
    client, server = new_pair(server_config(groups=(NamedGroup.secp384r1,)), client_config())
    _rewrite(client, HandshakeType.finished, _flip_last_byte)
    client_events, server_events = pump(client, server)
    ours, theirs = failure(server_events), failure(client_events)
    assert ours is not None and theirs is not None
    assert ours.failure == LocalFailure(Cause.bad_finished) and ours.sent
    assert ours.alert == AlertDescription.decrypt_error and ours.cause is Cause.bad_finished
    assert theirs.failure == PeerAlert(AlertDescription.decrypt_error) and not theirs.sent
    assert theirs.cause is None
    # The trace names the cause, not free text.
    [entry] = [e for e in server.trace.entries if e.kind == "alert_out"]
    assert dict(entry.details)["cause"] == "bad_finished"


def test_an_unknown_alert_code_is_kept_as_its_number() -> None:
    client, server = new_pair()
    server.receive_data(client.data_to_send())
    client.receive_data(server.data_to_send())
    events = server.receive_data(b"\x15\x03\x03\x00\x02\x02\xee")
    [event] = [e for e in events if isinstance(e, ConnectionFailed)]
    assert event.failure == PeerAlert(0xEE) and event.alert == 0xEE


def test_eof_mid_handshake_ends_with_no_alert_and_a_cause() -> None:
    server = ServerConnection(server_config(), now=NOW)
    [event] = server.receive_data(b"")
    assert isinstance(event, ConnectionFailed)
    assert event.failure == Ended(Cause.closed_during_handshake)
    assert event.alert is None and not event.sent and event.reason == "closed_during_handshake"
