"""Failures, split by whose fault they are (as h11 does), and typed.

A `ProtocolError` is the peer's fault (or the network's). It names a `Cause`;
the alert RFC 8446 §6 says to send for it comes from one table, `_ALERTS`, so
no raise site picks an alert of its own. Every decoder and every handshake
step raises only this type on bad input, so a single `except ProtocolError`
in the connection turns any failure into exactly one alert. Anything else
escaping the engine is a bug.

A `LocalProtocolError` is the local program's fault: it used the API in a way
the current state does not allow (sending data before the handshake, say).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from types import MappingProxyType


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
    no_renegotiation = 100
    missing_extension = 109
    unsupported_extension = 110
    unrecognized_name = 112
    bad_certificate_status_response = 113
    unknown_psk_identity = 115
    certificate_required = 116
    no_application_protocol = 120


# Every alert's name, looked up once per alert received rather than through
# the enum's constructor (four Python calls; a close_notify ends every connection).
_ALERT_NAMES: Mapping[int, str] = MappingProxyType(
    {int(alert): alert.name for alert in AlertDescription}
)


def alert_name(code: int) -> str:
    """The registry name of an alert code, or a numeric label for unknown codes."""
    name = _ALERT_NAMES.get(code)
    return name if name is not None else f"unknown_alert_{code}"


class Cause(enum.StrEnum):
    """Why a connection failed: one member per distinct fault, never free text."""

    # ---- records (RFC 8446 §5) ----
    unknown_record_type = "unknown_record_type"
    record_too_long = "record_too_long"
    record_undecryptable = "record_undecryptable"
    protected_record_before_keys = "protected_record_before_keys"
    unprotected_record_after_keys = "unprotected_record_after_keys"
    inner_plaintext_without_type = "inner_plaintext_without_type"
    forbidden_inner_content_type = "forbidden_inner_content_type"
    change_cipher_spec_not_allowed = "change_cipher_spec_not_allowed"
    empty_handshake_record = "empty_handshake_record"
    empty_alert_record = "empty_alert_record"
    malformed_alert = "malformed_alert"
    alert_inside_handshake_message = "alert_inside_handshake_message"
    data_inside_handshake_message = "data_inside_handshake_message"
    handshake_message_spans_key_change = "handshake_message_spans_key_change"
    application_data_before_handshake = "application_data_before_handshake"
    too_many_key_updates = "too_many_key_updates"
    too_many_warning_alerts = "too_many_warning_alerts"
    too_many_empty_records = "too_many_empty_records"
    # ---- TLS 1.2 records (RFC 5246 §6) ----
    record_version_unknown = "record_version_unknown"
    heartbeat_record = "heartbeat_record"
    change_cipher_spec_out_of_place = "change_cipher_spec_out_of_place"
    malformed_change_cipher_spec = "malformed_change_cipher_spec"
    # ---- message framing and codecs (§3, §4) ----
    malformed_message = "malformed_message"
    message_too_long_for_type = "message_too_long_for_type"
    message_over_cap = "message_over_cap"
    handshake_over_cap = "handshake_over_cap"
    unknown_handshake_type = "unknown_handshake_type"
    unexpected_handshake_message = "unexpected_handshake_message"
    duplicate_extension = "duplicate_extension"
    duplicate_key_share = "duplicate_key_share"
    duplicate_host_name = "duplicate_host_name"
    host_name_invalid = "host_name_invalid"
    invalid_key_update_request = "invalid_key_update_request"
    # ---- hellos (§4.1, §4.2) ----
    tls13_not_offered = "tls13_not_offered"
    legacy_version_wrong = "legacy_version_wrong"
    version_not_offered = "version_not_offered"
    compression_offered = "compression_offered"
    pre_shared_key_not_last = "pre_shared_key_not_last"
    psk_only_offer = "psk_only_offer"
    no_common_cipher_suite = "no_common_cipher_suite"
    no_common_group = "no_common_group"
    only_obsolete_groups = "only_obsolete_groups"
    no_common_signature_scheme = "no_common_signature_scheme"
    missing_key_exchange_extensions = "missing_key_exchange_extensions"
    missing_signature_algorithms = "missing_signature_algorithms"
    missing_key_share = "missing_key_share"
    key_share_for_unlisted_group = "key_share_for_unlisted_group"
    key_share_in_unoffered_group = "key_share_in_unoffered_group"
    invalid_key_share = "invalid_key_share"
    unsolicited_cookie = "unsolicited_cookie"
    missing_cookie = "missing_cookie"
    cookie_mismatch = "cookie_mismatch"
    early_data_after_retry = "early_data_after_retry"
    second_client_hello_changed = "second_client_hello_changed"
    retry_key_share_wrong = "retry_key_share_wrong"
    pointless_retry = "pointless_retry"
    retry_group_unusable = "retry_group_unusable"
    suite_changed_after_retry = "suite_changed_after_retry"
    session_id_echo_mismatch = "session_id_echo_mismatch"
    unoffered_cipher_suite = "unoffered_cipher_suite"
    unrequested_extension = "unrequested_extension"
    extension_not_allowed_here = "extension_not_allowed_here"
    server_name_reply_not_empty = "server_name_reply_not_empty"
    # ---- TLS 1.2 hellos and versions (RFC 5246, 5746, 7627, 7507, 8422) ----
    version_too_old = "version_too_old"
    no_secure_renegotiation = "no_secure_renegotiation"
    renegotiation_info_wrong = "renegotiation_info_wrong"
    renegotiation_refused = "renegotiation_refused"
    no_extended_master_secret = "no_extended_master_secret"
    inappropriate_fallback = "inappropriate_fallback"
    downgrade_sentinel = "downgrade_sentinel"
    uncompressed_point_format_missing = "uncompressed_point_format_missing"
    null_compression_missing = "null_compression_missing"
    key_update_in_tls12 = "key_update_in_tls12"
    curve_type_not_named = "curve_type_not_named"
    signature_algorithms_absent_tls12 = "signature_algorithms_absent_tls12"
    no_common_version = "no_common_version"
    version_changed_after_retry = "version_changed_after_retry"
    # ---- authentication (§4.3, §4.4) ----
    request_context_not_empty = "request_context_not_empty"
    unrequested_certificate_extension = "unrequested_certificate_extension"
    server_certificate_empty = "server_certificate_empty"
    client_certificate_missing = "client_certificate_missing"
    client_certificate_missing_tls12 = "client_certificate_missing_tls12"
    signature_scheme_not_offered = "signature_scheme_not_offered"
    signature_scheme_forbidden = "signature_scheme_forbidden"
    signature_scheme_wrong_key = "signature_scheme_wrong_key"
    peer_key_too_weak = "peer_key_too_weak"
    bad_signature = "bad_signature"
    finished_wrong_length = "finished_wrong_length"
    bad_finished = "bad_finished"
    # The peer's chain, refused by the configured authenticator; which of
    # these is the authenticator's word (its alert, `rejection_cause`).
    certificate_bad = "certificate_bad"
    certificate_unsupported = "certificate_unsupported"
    certificate_revoked = "certificate_revoked"
    certificate_expired = "certificate_expired"
    certificate_unknown = "certificate_unknown"
    certificate_unknown_ca = "certificate_unknown_ca"
    certificate_access_denied = "certificate_access_denied"
    certificate_required = "certificate_required"
    # ---- endings with no alert at all ----
    closed_during_handshake = "closed_during_handshake"
    sequence_number_exhausted = "sequence_number_exhausted"


_A = AlertDescription
_C = Cause
# The one table from cause to alert (RFC 8446 §6.2 names each alert's use).
# None: the connection ends without an alert (EOF; §5.3 a wrapped sequence
# number, when no alert can be protected any more).
_ALERTS: dict[Cause, AlertDescription | None] = {
    _C.unknown_record_type: _A.unexpected_message,
    _C.record_too_long: _A.record_overflow,
    _C.record_undecryptable: _A.bad_record_mac,
    _C.protected_record_before_keys: _A.unexpected_message,
    _C.unprotected_record_after_keys: _A.unexpected_message,
    _C.inner_plaintext_without_type: _A.unexpected_message,
    _C.forbidden_inner_content_type: _A.unexpected_message,
    _C.change_cipher_spec_not_allowed: _A.unexpected_message,
    _C.empty_handshake_record: _A.unexpected_message,
    # §5.1: an alert record holds exactly one alert; tlsfuzzer expects
    # unexpected_message for none, like an empty handshake record.
    _C.empty_alert_record: _A.unexpected_message,
    _C.malformed_alert: _A.decode_error,
    _C.alert_inside_handshake_message: _A.unexpected_message,
    _C.data_inside_handshake_message: _A.unexpected_message,
    _C.handshake_message_spans_key_change: _A.unexpected_message,
    _C.application_data_before_handshake: _A.unexpected_message,
    _C.too_many_key_updates: _A.unexpected_message,
    _C.too_many_warning_alerts: _A.unexpected_message,
    _C.too_many_empty_records: _A.unexpected_message,
    # RFC 5246 §6.2.1 / RFC 8446 §5.1: a major version other than 3 is no
    # TLS record at all; protocol_version, as OpenSSL and tlsfuzzer's
    # test-record-layer-fragmentation expect, rather than decode_error.
    _C.record_version_unknown: _A.protocol_version,
    # RFC 6520 §2: heartbeat was never negotiated, so its records are
    # unexpected (RFC 5246 §6: an unexpected content type).
    _C.heartbeat_record: _A.unexpected_message,
    _C.change_cipher_spec_out_of_place: _A.unexpected_message,
    # RFC 5246 §7.1: ChangeCipherSpec is one byte, of value 1. Any other is
    # unexpected_message, as a malformed one is in TLS 1.3 (RFC 8446 §5) and
    # as tlsfuzzer's test-ccs (and OpenSSL) expect.
    _C.malformed_change_cipher_spec: _A.unexpected_message,
    _C.malformed_message: _A.decode_error,
    # A length its own type does not allow is a decoding fault (§6.2).
    _C.message_too_long_for_type: _A.decode_error,
    # Over our anti-abuse caps but within the grammar: a parameter we refuse.
    _C.message_over_cap: _A.illegal_parameter,
    _C.handshake_over_cap: _A.illegal_parameter,
    _C.unknown_handshake_type: _A.unexpected_message,
    _C.unexpected_handshake_message: _A.unexpected_message,
    _C.duplicate_extension: _A.illegal_parameter,
    _C.duplicate_key_share: _A.illegal_parameter,
    _C.duplicate_host_name: _A.illegal_parameter,
    _C.host_name_invalid: _A.illegal_parameter,
    _C.invalid_key_update_request: _A.illegal_parameter,
    _C.tls13_not_offered: _A.protocol_version,
    _C.legacy_version_wrong: _A.protocol_version,
    _C.version_not_offered: _A.illegal_parameter,
    _C.compression_offered: _A.illegal_parameter,
    _C.pre_shared_key_not_last: _A.illegal_parameter,
    _C.psk_only_offer: _A.handshake_failure,
    _C.no_common_cipher_suite: _A.handshake_failure,
    _C.no_common_group: _A.handshake_failure,
    _C.only_obsolete_groups: _A.illegal_parameter,
    _C.no_common_signature_scheme: _A.handshake_failure,
    _C.missing_key_exchange_extensions: _A.missing_extension,
    _C.missing_signature_algorithms: _A.missing_extension,
    _C.missing_key_share: _A.missing_extension,
    _C.key_share_for_unlisted_group: _A.illegal_parameter,
    _C.key_share_in_unoffered_group: _A.illegal_parameter,
    _C.invalid_key_share: _A.illegal_parameter,
    _C.unsolicited_cookie: _A.illegal_parameter,
    _C.missing_cookie: _A.missing_extension,
    _C.cookie_mismatch: _A.illegal_parameter,
    _C.early_data_after_retry: _A.illegal_parameter,
    _C.second_client_hello_changed: _A.illegal_parameter,
    _C.retry_key_share_wrong: _A.illegal_parameter,
    _C.pointless_retry: _A.illegal_parameter,
    _C.retry_group_unusable: _A.illegal_parameter,
    _C.suite_changed_after_retry: _A.illegal_parameter,
    _C.session_id_echo_mismatch: _A.illegal_parameter,
    _C.unoffered_cipher_suite: _A.illegal_parameter,
    _C.unrequested_extension: _A.unsupported_extension,
    _C.extension_not_allowed_here: _A.illegal_parameter,
    _C.server_name_reply_not_empty: _A.decode_error,
    # RFC 5246 Appendix E.1 / RFC 8446 §4.2.1: below what we speak.
    _C.version_too_old: _A.protocol_version,
    # RFC 5746 §3.6: "the server MUST ... abort the handshake" (we require it).
    _C.no_secure_renegotiation: _A.handshake_failure,
    _C.renegotiation_info_wrong: _A.handshake_failure,
    # RFC 5246 §7.2.2: no_renegotiation "is always a warning"; the
    # connection sends it, then close_notify, and ends (tlsfuzzer's
    # test-renegotiation-disabled expects exactly that with its
    # no_renego_close option: warning no_renegotiation, close_notify, close).
    _C.renegotiation_refused: _A.no_renegotiation,
    _C.no_extended_master_secret: _A.handshake_failure,
    _C.inappropriate_fallback: _A.inappropriate_fallback,
    _C.downgrade_sentinel: _A.illegal_parameter,
    _C.uncompressed_point_format_missing: _A.illegal_parameter,
    # RFC 5246 §7.4.1.2: the list "MUST contain" null; a hello without it is
    # a parameter we cannot accept.
    _C.null_compression_missing: _A.illegal_parameter,
    # RFC 5246 has no KeyUpdate (a TLS 1.3 message): unexpected.
    _C.key_update_in_tls12: _A.unexpected_message,
    # RFC 8422 §5.4: explicit curves are deprecated; we cannot use them.
    _C.curve_type_not_named: _A.illegal_parameter,
    # RFC 5246 §7.4.6: a server that requires a certificate "MAY respond
    # with a fatal handshake_failure alert" to an empty list.
    _C.client_certificate_missing_tls12: _A.handshake_failure,
    # RFC 5246 §7.4.1.4.1's default for a missing signature_algorithms is
    # SHA-1, which we never accept: nothing is left to negotiate. TLS 1.2
    # has no missing_extension alert (RFC 8446 added it).
    _C.signature_algorithms_absent_tls12: _A.handshake_failure,
    # RFC 8446 §4.2.1 / RFC 5246 Appendix E.1: no version both sides speak.
    _C.no_common_version: _A.protocol_version,
    # RFC 8446 §4.1.4: the ServerHello must keep the HelloRetryRequest's version.
    _C.version_changed_after_retry: _A.illegal_parameter,
    _C.request_context_not_empty: _A.illegal_parameter,
    _C.unrequested_certificate_extension: _A.unsupported_extension,
    # §4.4.2.4 lets a client abort with decode_error when the server sends none.
    _C.server_certificate_empty: _A.decode_error,
    _C.client_certificate_missing: _A.certificate_required,
    _C.signature_scheme_not_offered: _A.illegal_parameter,
    _C.signature_scheme_forbidden: _A.illegal_parameter,
    _C.signature_scheme_wrong_key: _A.illegal_parameter,
    # RFC 8446 leaves the alert to us; this one names the cause.
    _C.peer_key_too_weak: _A.insufficient_security,
    _C.bad_signature: _A.decrypt_error,
    _C.finished_wrong_length: _A.decode_error,
    _C.bad_finished: _A.decrypt_error,
    _C.certificate_bad: _A.bad_certificate,
    _C.certificate_unsupported: _A.unsupported_certificate,
    _C.certificate_revoked: _A.certificate_revoked,
    _C.certificate_expired: _A.certificate_expired,
    _C.certificate_unknown: _A.certificate_unknown,
    _C.certificate_unknown_ca: _A.unknown_ca,
    _C.certificate_access_denied: _A.access_denied,
    _C.certificate_required: _A.certificate_required,
    _C.closed_during_handshake: None,
    _C.sequence_number_exhausted: None,
}

_REJECTIONS: dict[AlertDescription, Cause] = {
    alert: cause
    for cause, alert in _ALERTS.items()
    if alert is not None and cause.name.startswith("certificate_")
}


def alert_for(cause: Cause) -> AlertDescription | None:
    """The alert we send for `cause` (None: none is sent)."""
    return _ALERTS[cause]


def rejection_cause(alert: AlertDescription) -> Cause:
    """The cause for a peer chain the authenticator refused with `alert`.

    An alert that is not about certificates becomes `certificate_unknown`
    (§6.2: "some other (unspecified) issue arose in processing the
    certificate"), so an authenticator cannot make us send, say, close_notify.
    """
    return _REJECTIONS.get(alert, Cause.certificate_unknown)


class ProtocolError(Exception):
    """The peer broke the protocol: `cause` says how, `alert` is what we send
    (RFC 8446 §6.2), `detail` is a short human note for logs (never a secret)."""

    def __init__(self, cause: Cause, detail: str = "") -> None:
        alert = _ALERTS[cause]
        if alert is None:  # a programming error, not peer input
            raise ValueError(f"{cause} sends no alert; it is not a ProtocolError")
        super().__init__(f"{cause}: {detail}" if detail else str(cause))
        self.cause = cause
        self.alert: AlertDescription = alert
        self.detail = detail

    @property
    def reason(self) -> str:
        return str(self)


def decode_error(detail: str) -> ProtocolError:
    """A malformed message (RFC 8446 §6.2 `decode_error`)."""
    return ProtocolError(Cause.malformed_message, detail)


class LocalProtocolError(Exception):
    """The local program used the API in a way the connection's state forbids."""
