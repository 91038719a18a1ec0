"""How a connection ended, and the statistics group it is counted in.

The original piñata published its statistics grouped by why attackers
failed (an unknown record version, a heartbeat, an SSLv3 hello, no RFC 5746
secure renegotiation, no common cipher suite, certificate failures, ...),
not by raw alert code; `group_of` makes that mapping in one place: first by
the engine's cause (`pinata.tls.errors.Cause`) for the families the original
counted apart, then by the alert we sent.
"""

from __future__ import annotations

import enum

from pinata.tls.errors import AlertDescription, Cause


class Outcome(enum.StrEnum):
    secret_released = "secret released"
    # To one of the piñata's own certificates (self-talk, a relay into
    # ourselves): expected, and no break, so never counted as one.
    released_to_self = "secret released to itself"
    alert_sent = "alert sent"
    alert_received = "alert received"
    timeout = "timeout"
    limit = "limit"
    closed_by_peer = "closed by peer"
    connect_back_failed = "connect-back failed"
    # Ours, not the peer's: an exception we did not expect (counted, never hidden).
    internal_error = "internal error"
    # The web page's connections.
    served = "served"
    bad_request = "bad request"
    # A trusted proxy's connection: no valid PROXY header, or a LOCAL one.
    proxy_refused = "PROXY header refused"
    health_check = "health check"


class StatGroup(enum.StrEnum):
    secret_released = "secret released"
    released_to_self = "secret released to itself"
    # The original's own families, each one cause family of the engine's.
    unknown_record_version = "unknown record version"
    heartbeat = "heartbeat"
    version_too_old = "SSLv3 or older hello"
    no_secure_renegotiation = "no secure renegotiation (RFC 5746)"
    no_common_cipher_suite = "no common cipher suite"
    # Ours: what TLS 1.2 as we speak it refuses beyond the original's families.
    renegotiation_refused = "renegotiation refused"
    no_extended_master_secret = "no extended master secret"
    inappropriate_fallback = "inappropriate fallback"
    downgrade = "downgrade detected"
    no_certificate = "no certificate"
    bad_signature = "bad signature"
    x509_failure = "X.509 failure"
    unsupported_version = "unsupported version"
    unexpected_message = "unexpected message"
    no_shared_parameters = "no shared parameters"
    malformed = "malformed message"
    alert_received = "alert received"
    closed_by_peer = "closed by peer"
    timeout = "timeout"
    limit = "limit"
    connect_back_failed = "connect-back failed"
    internal_error = "internal error"
    served = "served"
    bad_request = "bad request"
    proxy_refused = "PROXY header refused"
    health_check = "health check"


# Refused by a check: what the page counts as an attacker turned away, in the
# order it shows them (the original's families first).
REFUSED_GROUPS: tuple[StatGroup, ...] = (
    StatGroup.unknown_record_version, StatGroup.heartbeat, StatGroup.version_too_old,
    StatGroup.no_secure_renegotiation, StatGroup.no_common_cipher_suite,
    StatGroup.renegotiation_refused, StatGroup.no_extended_master_secret,
    StatGroup.inappropriate_fallback, StatGroup.downgrade,
    StatGroup.no_certificate, StatGroup.bad_signature, StatGroup.x509_failure,
    StatGroup.unsupported_version, StatGroup.unexpected_message,
    StatGroup.no_shared_parameters, StatGroup.malformed,
)

# Causes counted apart from their alert's group, as the original counted them.
_BY_CAUSE: dict[Cause, StatGroup] = {
    Cause.record_version_unknown: StatGroup.unknown_record_version,
    Cause.heartbeat_record: StatGroup.heartbeat,
    # An SSLv3 (or SSLv2-compatible, or TLS 1.0/1.1) hello, or a record below 1.2.
    Cause.version_too_old: StatGroup.version_too_old,
    # RFC 5746 §3.6: neither renegotiation_info nor the SCSV; or a wrong one.
    Cause.no_secure_renegotiation: StatGroup.no_secure_renegotiation,
    Cause.renegotiation_info_wrong: StatGroup.no_secure_renegotiation,
    Cause.no_common_cipher_suite: StatGroup.no_common_cipher_suite,
    Cause.renegotiation_refused: StatGroup.renegotiation_refused,
    Cause.no_extended_master_secret: StatGroup.no_extended_master_secret,
    Cause.inappropriate_fallback: StatGroup.inappropriate_fallback,
    # RFC 8446 §4.1.3's sentinel, seen by our client: whoever sent it, in 1.2 or 1.3.
    Cause.downgrade_sentinel: StatGroup.downgrade,
    # RFC 5246 §7.4.6: its alert is handshake_failure, but it is what
    # certificate_required says in 1.3 (§4.4.2.4), and counted with it.
    Cause.client_certificate_missing_tls12: StatGroup.no_certificate,
}

_BY_SENT_ALERT: dict[int, StatGroup] = {
    # RFC 8446 §4.4.2.4: an empty Certificate where one was required.
    AlertDescription.certificate_required: StatGroup.no_certificate,
    # §4.4.3 / §4.4.4: CertificateVerify or Finished did not verify.
    AlertDescription.decrypt_error: StatGroup.bad_signature,
    AlertDescription.bad_certificate: StatGroup.x509_failure,
    AlertDescription.unsupported_certificate: StatGroup.x509_failure,
    AlertDescription.certificate_revoked: StatGroup.x509_failure,
    AlertDescription.certificate_expired: StatGroup.x509_failure,
    AlertDescription.certificate_unknown: StatGroup.x509_failure,
    AlertDescription.unknown_ca: StatGroup.x509_failure,
    AlertDescription.access_denied: StatGroup.x509_failure,
    AlertDescription.protocol_version: StatGroup.unsupported_version,
    AlertDescription.unexpected_message: StatGroup.unexpected_message,
    AlertDescription.handshake_failure: StatGroup.no_shared_parameters,
    AlertDescription.insufficient_security: StatGroup.no_shared_parameters,
    AlertDescription.decode_error: StatGroup.malformed,
    AlertDescription.illegal_parameter: StatGroup.malformed,
    AlertDescription.record_overflow: StatGroup.malformed,
    AlertDescription.bad_record_mac: StatGroup.malformed,
    AlertDescription.missing_extension: StatGroup.malformed,
    AlertDescription.unsupported_extension: StatGroup.malformed,
    AlertDescription.internal_error: StatGroup.internal_error,
}

_BY_OUTCOME: dict[Outcome, StatGroup] = {
    Outcome.secret_released: StatGroup.secret_released,
    Outcome.released_to_self: StatGroup.released_to_self,
    Outcome.alert_received: StatGroup.alert_received,
    Outcome.timeout: StatGroup.timeout,
    Outcome.limit: StatGroup.limit,
    Outcome.closed_by_peer: StatGroup.closed_by_peer,
    Outcome.connect_back_failed: StatGroup.connect_back_failed,
    Outcome.internal_error: StatGroup.internal_error,
    Outcome.served: StatGroup.served,
    Outcome.bad_request: StatGroup.bad_request,
    Outcome.proxy_refused: StatGroup.proxy_refused,
    Outcome.health_check: StatGroup.health_check,
}


def group_of(outcome: Outcome, alert: int | None = None, cause: str | None = None) -> StatGroup:
    """The statistics group of a connection's outcome.

    Takes the outcome, the alert we sent (if any) and the engine's cause (a
    `Cause` value, if the engine named one); returns the cause's own group
    when the original counted that family apart, else the sent alert's.
    """
    if outcome is Outcome.alert_sent:
        if alert is None:
            return StatGroup.internal_error
        if cause is not None and cause in _CAUSE_VALUES:
            return _BY_CAUSE[Cause(cause)]
        return _BY_SENT_ALERT.get(alert, StatGroup.malformed)
    return _BY_OUTCOME[outcome]


_CAUSE_VALUES = frozenset(c.value for c in _BY_CAUSE)
