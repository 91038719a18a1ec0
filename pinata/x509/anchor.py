"""The single trust anchor, parsed and checked once at start-up."""

from __future__ import annotations

from dataclasses import dataclass, field

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from pinata.x509.checks import check_issuer
from pinata.x509.errors import CertificateRefused, Check
from pinata.x509.parse import ParseCache, ParsedCertificate, parse_certificate


class InvalidTrustAnchor(ValueError):
    """The configured anchor is not one we will validate against (local
    configuration error, raised at start-up, never during a handshake)."""

    def __init__(self, check: Check, reason: str) -> None:
        super().__init__(f"{check}: {reason}")
        self.check = check
        self.reason = reason


@dataclass(frozen=True, slots=True)
class TrustAnchor:
    certificate: ParsedCertificate
    # RFC 4514 text of the subject, rendered once for every chain's `subjects`.
    subject_text: str
    # Certificates peers sent, parsed once each (bounded; see ParseCache).
    # The anchor is parsed once, here, and never goes through it.
    cache: ParseCache = field(default_factory=ParseCache, compare=False, repr=False)

    @classmethod
    def from_der(cls, der: bytes) -> TrustAnchor:
        """Parse the anchor and apply the checks that do not depend on time:
        the same profile as any certificate, and those of an issuer. Its
        validity period is checked at each validation (the issue asks for
        it, beyond RFC 5280 §6.1.1 (d), which treats an anchor as name+key)."""
        try:
            certificate = parse_certificate(bytes(der), anchor=True)
            check_issuer(certificate, is_anchor=True)
        except CertificateRefused as refused:
            raise InvalidTrustAnchor(refused.check, refused.reason) from None
        return cls(certificate, certificate.subject_text)

    @classmethod
    def from_pem(cls, pem: bytes | str) -> TrustAnchor:
        data = pem.encode("ascii") if isinstance(pem, str) else pem
        try:
            der = x509.load_pem_x509_certificate(data).public_bytes(serialization.Encoding.DER)
        except ValueError as error:
            raise InvalidTrustAnchor(Check.malformed, str(error)) from None
        return cls.from_der(der)

    @property
    def der(self) -> bytes:
        return self.certificate.der

    @property
    def subject_der(self) -> bytes:
        """The DER subject, for a CertificateRequest's certificate_authorities."""
        return self.certificate.subject_der

    def __repr__(self) -> str:
        return f"TrustAnchor({self.subject_text!r})"
