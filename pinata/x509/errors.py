"""Why a chain was refused: one typed failure, naming the check, the
certificate (its index in the list as the peer sent it; None for the anchor
or for the path as a whole) and the TLS alert to send.

Alert choice (RFC 8446 §6.2):
- undecodable or malformed certificate          -> bad_certificate
- algorithm, key or critical extension we do
  not support                                   -> unsupported_certificate
- outside its validity period                   -> certificate_expired
- no path to the anchor                         -> unknown_ca
- a policy check (basicConstraints, pathLen,
  keyUsage, extendedKeyUsage, name constraints,
  peer name, a signature that does not verify)  -> bad_certificate
We pick bad_certificate over certificate_unknown for policy checks: the
certificate is wrong for this use, not merely unrecognised.
"""

from __future__ import annotations

import enum

from pinata.tls.errors import AlertDescription
from pinata.tls.values import value


class Check(enum.StrEnum):
    empty = "empty"
    too_large = "too_large"
    malformed = "malformed"
    version = "version"
    serial = "serial"
    name = "name"
    common_name = "common_name"
    extension = "extension"
    unknown_critical_extension = "unknown_critical_extension"
    unsupported_extension = "unsupported_extension"
    signature_algorithm = "signature_algorithm"
    public_key = "public_key"
    expired = "expired"
    not_yet_valid = "not_yet_valid"
    basic_constraints = "basic_constraints"
    path_length = "path_length"
    key_usage = "key_usage"
    eku = "eku"
    name_constraints = "name_constraints"
    peer_name = "peer_name"
    signature = "signature"
    no_path = "no_path"
    max_depth = "max_depth"
    budget = "budget"


_ALERTS: dict[Check, AlertDescription] = {
    # RFC 8446 §4.4.2.4; the engine sends it before ever calling us.
    Check.empty: AlertDescription.certificate_required,
    Check.signature_algorithm: AlertDescription.unsupported_certificate,
    Check.public_key: AlertDescription.unsupported_certificate,
    Check.unknown_critical_extension: AlertDescription.unsupported_certificate,
    Check.unsupported_extension: AlertDescription.unsupported_certificate,
    Check.expired: AlertDescription.certificate_expired,
    Check.not_yet_valid: AlertDescription.certificate_expired,
    Check.no_path: AlertDescription.unknown_ca,
    Check.max_depth: AlertDescription.unknown_ca,
    Check.budget: AlertDescription.unknown_ca,
}


def alert_for(check: Check) -> AlertDescription:
    return _ALERTS.get(check, AlertDescription.bad_certificate)


@value
class ValidationFailure:
    check: Check
    certificate_index: int | None
    reason: str
    alert: AlertDescription


class CertificateRefused(Exception):
    """Internal: one certificate failed a check. Never leaves the package;
    `validate` turns it into a `ValidationFailure` carrying the index."""

    def __init__(self, check: Check, reason: str, subject: object = None) -> None:
        super().__init__(f"{check}: {reason}")
        self.check = check
        self.reason = reason
        # The refused certificate's subject, when it could be read: lets path
        # building say why a would-be issuer was unusable.
        self.subject: object = subject

    def failure(self, index: int | None) -> ValidationFailure:
        return ValidationFailure(self.check, index, self.reason, alert_for(self.check))
