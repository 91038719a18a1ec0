"""Failures, split by whose fault they are (as h11 does).

A `ProtocolError` is the peer's fault (or the network's): it carries the alert
that RFC 8446 §6 says to send. Every decoder and every handshake step raises
only this type on bad input, so a single `except ProtocolError` in the
connection turns any failure into exactly one alert. Anything else escaping
the engine is a bug.

A `LocalProtocolError` is the local program's fault: it used the API in a way
the current state does not allow (sending data before the handshake, say).
"""

from __future__ import annotations

import enum


class AlertLevel(enum.IntEnum):
    warning = 1
    fatal = 2


class AlertDescription(enum.IntEnum):
    """RFC 8446 §6 and the IANA TLS Alerts registry."""

    close_notify = 0
    unexpected_message = 10
    bad_record_mac = 20
    record_overflow = 22
    handshake_failure = 40
    bad_certificate = 42
    unsupported_certificate = 43
    certificate_revoked = 44
    certificate_expired = 45
    certificate_unknown = 46
    illegal_parameter = 47
    unknown_ca = 48
    access_denied = 49
    decode_error = 50
    decrypt_error = 51
    protocol_version = 70
    insufficient_security = 71
    internal_error = 80
    inappropriate_fallback = 86
    user_canceled = 90
    missing_extension = 109
    unsupported_extension = 110
    unrecognized_name = 112
    bad_certificate_status_response = 113
    unknown_psk_identity = 115
    certificate_required = 116
    no_application_protocol = 120


def alert_name(code: int) -> str:
    """The registry name of an alert code, or a numeric label for unknown codes."""
    try:
        return AlertDescription(code).name
    except ValueError:
        return f"unknown_alert_{code}"


class ProtocolError(Exception):
    """The peer broke the protocol; `alert` is what we send (RFC 8446 §6.2)."""

    def __init__(self, alert: AlertDescription, reason: str) -> None:
        super().__init__(f"{alert.name}: {reason}")
        self.alert = alert
        self.reason = reason


def decode_error(reason: str) -> ProtocolError:
    """A malformed message: RFC 8446 §6.2 `decode_error`."""
    return ProtocolError(AlertDescription.decode_error, reason)


class LocalProtocolError(Exception):
    """The local program used the API in a way the connection's state forbids."""
