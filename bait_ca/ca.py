"""The ceremony: an anchor whose private key exists only in this process.

"And no, you can't have the certificate key." The anchor key is generated in
memory, signs the anchor and the piñata's own certificates, and is then held
only by a `CertificateAuthority`, which can sign but has no way to export its
key: nothing here, in `build` or in the CLI's ceremony passes it to a
serialiser. The appliance calls `ceremony()` at every start (as the 2015
original did); `python -m bait_ca ceremony` calls it once and writes the
public results.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal, NoReturn

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID

from bait_ca.build import as_name, profile_extensions, sign_certificate
from bait_ca.issued import Issued
from bait_ca.keys import KeyType, PrivateKey, PublicKey, generate_key, same_public_key
from bait_ca.names import IPAddress, split_hosts

LeafRole = Literal["server", "client", "web"]
DEFAULT_VALIDITY = timedelta(days=365)
ANCHOR_NAME = "BTC Pinata CA"


def fingerprint(certificate: x509.Certificate) -> str:
    """SHA-256 of the DER certificate, colon-separated upper-case hex (as OpenSSL prints)."""
    digest = hashlib.sha256(certificate.public_bytes(serialization.Encoding.DER)).hexdigest()
    return ":".join(digest[i : i + 2] for i in range(0, len(digest), 2)).upper()


def is_ca_certificate(certificate: x509.Certificate) -> bool:
    """cA=TRUE in basicConstraints (RFC 5280 §4.2.1.9); unreadable extensions count as no."""
    try:
        constraints = certificate.extensions.get_extension_for_class(x509.BasicConstraints)
    except (x509.ExtensionNotFound, x509.DuplicateExtension, ValueError):
        return False
    return constraints.value.ca


def check_validity(not_before: datetime, not_after: datetime) -> None:
    if not_after <= not_before:
        raise ValueError(f"validity inverted: not after {not_after} is not later than {not_before}")


def leaf_profile(
    role: LeafRole, hosts: tuple[str, ...]
) -> tuple[set[str], list[x509.ObjectIdentifier], tuple[str, ...], tuple[IPAddress, ...]]:
    """keyUsage, EKU and subjectAltName of a piñata leaf.

    TLS 1.3 keys only sign (RFC 8446 §4.4.3), hence digitalSignature alone.
    """
    eku = ExtendedKeyUsageOID.CLIENT_AUTH if role == "client" else ExtendedKeyUsageOID.SERVER_AUTH
    dns, ips = split_hosts(hosts)
    return {"digital_signature"}, [eku], dns, ips


class CertificateAuthority:
    """An anchor certificate and the key that signed it, in memory only.

    Deliberately not a dataclass and not an `Issued`: no field access, repr,
    copy or pickle gives the key away.
    """

    __slots__ = ("__key", "certificate")

    def __init__(self, certificate: x509.Certificate, private_key: PrivateKey) -> None:
        if not same_public_key(certificate.public_key(), private_key.public_key()):
            raise ValueError("the key does not match the CA certificate")
        if not is_ca_certificate(certificate):
            raise ValueError("the certificate is not a CA certificate (no cA=TRUE)")
        self.certificate = certificate
        self.__key = private_key

    @classmethod
    def create(
        cls,
        *,
        not_before: datetime,
        not_after: datetime,
        name: x509.Name | str = ANCHOR_NAME,
        key_type: KeyType = "p256",
        private_key: PrivateKey | None = None,
        serial: int | None = None,
        rsa_pss: bool = False,
    ) -> CertificateAuthority:
        """A self-signed anchor: cA=TRUE, pathLenConstraint 0 (it issues only leaves),
        keyUsage keyCertSign+cRLSign (RFC 5280 §4.2.1.3, §4.2.1.9)."""
        check_validity(not_before, not_after)
        key = private_key or generate_key(key_type)
        subject = as_name(name)
        certificate = sign_certificate(
            subject=subject,
            issuer=subject,
            issuer_key=key,
            public_key=key.public_key(),
            serial=serial if serial is not None else x509.random_serial_number(),
            not_before=not_before,
            not_after=not_after,
            extensions=profile_extensions(
                public_key=key.public_key(),
                issuer_public_key=key.public_key(),
                ca=True,
                path_length=0,
                key_usage={"key_cert_sign", "crl_sign"},
            ),
            rsa_pss=rsa_pss,
        )
        return cls(certificate, key)

    @property
    def public_key(self) -> PublicKey:
        return self.__key.public_key()

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.certificate)

    def certify(
        self,
        role: LeafRole,
        name: x509.Name | str,
        public_key: PublicKey,
        *,
        hosts: tuple[str, ...] = (),
        not_before: datetime | None = None,
        not_after: datetime | None = None,
        serial: int | None = None,
        rsa_pss: bool = False,
    ) -> x509.Certificate:
        """A leaf certificate for someone else's public key."""
        start = not_before or self.certificate.not_valid_before_utc
        end = not_after or self.certificate.not_valid_after_utc
        check_validity(start, end)
        key_usage, eku, dns, ips = leaf_profile(role, hosts)
        return sign_certificate(
            subject=as_name(name),
            issuer=self.certificate.subject,
            issuer_key=self.__key,
            public_key=public_key,
            serial=serial if serial is not None else x509.random_serial_number(),
            not_before=start,
            not_after=end,
            extensions=profile_extensions(
                public_key=public_key,
                issuer_public_key=self.public_key,
                ca=False,
                key_usage=key_usage,
                extended_key_usage=eku,
                san_dns=dns,
                san_ip=ips,
            ),
            rsa_pss=rsa_pss,
        )

    def issue(
        self,
        role: LeafRole,
        name: x509.Name | str,
        *,
        hosts: tuple[str, ...] = (),
        key_type: KeyType = "p256",
        private_key: PrivateKey | None = None,
        not_before: datetime | None = None,
        not_after: datetime | None = None,
        serial: int | None = None,
        rsa_pss: bool = False,
    ) -> Issued:
        """A new leaf key (or the one given) and its certificate."""
        key = private_key or generate_key(key_type)
        certificate = self.certify(
            role,
            name,
            key.public_key(),
            hosts=hosts,
            not_before=not_before,
            not_after=not_after,
            serial=serial,
            rsa_pss=rsa_pss,
        )
        return Issued(certificate, key)

    def __repr__(self) -> str:
        return f"CertificateAuthority({self.certificate.subject.rfc4514_string()}, key=<in memory>)"

    def __reduce__(self) -> NoReturn:
        raise TypeError("the CA key does not leave memory")

    def __copy__(self) -> NoReturn:
        raise TypeError("the CA key does not leave memory")

    def __deepcopy__(self, memo: object) -> NoReturn:
        raise TypeError("the CA key does not leave memory")


@dataclass(frozen=True)
class Ceremony:
    """What a ceremony leaves behind: the CA (key in memory) and the piñata's leaves."""

    authority: CertificateAuthority
    server: Issued
    client: Issued
    web: Issued

    @property
    def anchor(self) -> x509.Certificate:
        return self.authority.certificate

    @property
    def fingerprint(self) -> str:
        return self.authority.fingerprint


def ceremony(
    host_name: str,
    *,
    now: datetime,
    validity: timedelta = DEFAULT_VALIDITY,
    not_before: datetime | None = None,
    not_after: datetime | None = None,
    key_type: KeyType = "p256",
    rsa_pss: bool = False,
    anchor_name: x509.Name | str = ANCHOR_NAME,
) -> Ceremony:
    """Mint an anchor and the piñata's server, client and web certificates.

    The validity runs from `not_before` (default: `now`) to `not_after`
    (default: start + `validity`). The server and web certificates name
    `host_name`; the client certificate names no host.
    """
    split_hosts((host_name,))  # refuse a bad name before any key exists
    start = not_before or now
    end = not_after or start + validity
    check_validity(start, end)
    authority = CertificateAuthority.create(
        not_before=start, not_after=end, name=anchor_name, key_type=key_type, rsa_pss=rsa_pss
    )

    def leaf(role: LeafRole, hosts: tuple[str, ...]) -> Issued:
        return authority.issue(
            role, f"BTC Pinata {role}", hosts=hosts, key_type=key_type, rsa_pss=rsa_pss
        )

    return Ceremony(
        authority=authority,
        server=leaf("server", (host_name,)),
        client=leaf("client", ()),
        web=leaf("web", (host_name,)),
    )
