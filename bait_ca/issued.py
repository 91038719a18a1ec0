"""A certificate together with its private key."""

from __future__ import annotations

from dataclasses import dataclass, field

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from bait_ca.keys import PrivateKey, PublicKey, private_key_pem, same_public_key


@dataclass(frozen=True)
class Issued:
    """A certificate and its private key. Forge and toy only: the ceremony's
    anchor key is never put in one, since this type can serialise its key."""

    certificate: x509.Certificate
    private_key: PrivateKey = field(repr=False)

    @property
    def der(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.DER)

    @property
    def pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    @property
    def key_pem(self) -> bytes:
        return private_key_pem(self.private_key)

    @property
    def public_key(self) -> PublicKey:
        return self.private_key.public_key()

    @property
    def subject(self) -> x509.Name:
        return self.certificate.subject

    @classmethod
    def from_pem(cls, certificate_pem: bytes, key_pem: bytes) -> Issued:
        """Load a certificate and its key; ValueError if either is unreadable or
        the key is not the one the certificate certifies."""
        certificate = x509.load_pem_x509_certificate(certificate_pem)
        try:
            key = serialization.load_pem_private_key(key_pem, password=None)
        except TypeError as e:  # an encrypted key, or one of a kind we cannot use
            raise ValueError(str(e)) from None
        if not isinstance(key, PrivateKey):
            raise ValueError(f"unsupported key type {type(key).__name__}")
        if not same_public_key(certificate.public_key(), key.public_key()):
            raise ValueError("the private key does not match the certificate")
        return cls(certificate, key)
