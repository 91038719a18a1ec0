"""What a connection is told before it starts: credentials, preferences, and
how to judge the peer's certificates.

Peer authentication is a function passed in, so the engine knows nothing of
X.509 path validation: it hands over the certificate list exactly as received
and gets back either a `VerifiedPeer` or a `PeerRejected` naming the alert.
The engine itself checks CertificateVerify against the leaf key it is given.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.types import (
    CertificateIssuerPrivateKeyTypes,
    CertificatePublicKeyTypes,
)
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from pinata.tls.constants import (
    TLS12,
    TLS13,
    CipherSuite,
    ClientCertificateType,
    ECPointFormat,
    NamedGroup,
    SignatureScheme,
)
from pinata.tls.errors import AlertDescription, LocalProtocolError
from pinata.tls.extensions import (
    CertificateAuthorities,
    EcPointFormats,
    ExtendedMasterSecret,
    Extension,
    RenegotiationInfo,
    ServerName,
    SignatureAlgorithms,
    SignatureAlgorithmsCert,
    SupportedGroups,
    SupportedVersionsClientHello,
)
from pinata.tls.messages import (
    Certificate,
    Certificate12,
    CertificateEntry,
    CertificateRequest,
    CertificateRequest12,
    EncryptedExtensions,
)
from pinata.tls.signatures import schemes_for_key, schemes_for_key_tls12, sign, sign_tls12


@dataclass(frozen=True)
class VerifiedPeer:
    """A peer chain that validated: DER certificates, leaf first, anchor last."""

    chain: tuple[bytes, ...] = field(repr=False)
    leaf_public_key: CertificatePublicKeyTypes = field(repr=False)
    # Human-readable subjects, leaf first, for traces and logs.
    subjects: tuple[str, ...] = ()
    # An id-RSASSA-PSS key may sign only with rsa_pss_pss_* (RFC 8446 §4.2.3);
    # `cryptography` gives both kinds as RSAPublicKey, so the validator says.
    leaf_key_is_rsassa_pss: bool = False


@dataclass(frozen=True)
class PeerRejected:
    """Why a peer chain did not validate, and the alert that says so."""

    alert: AlertDescription
    reason: str


def spki_is_rsassa_pss(certificate_der: bytes) -> bool:
    """Whether a certificate's key is id-RSASSA-PSS rather than rsaEncryption.

    `cryptography` loads both as RSA keys; the algorithm identifier in the
    SubjectPublicKeyInfo is what tells them apart (RFC 4055 §1.2).
    """
    spki = x509.load_der_x509_certificate(certificate_der).public_key_algorithm_oid
    return spki.dotted_string == "1.2.840.113549.1.1.10"


# (certificate list as sent, leaf first; the connection's notion of now)
PeerAuthenticator = Callable[[Sequence[bytes], datetime], VerifiedPeer | PeerRejected]


class InvalidCredentials(ValueError):
    """A certificate and key that cannot be our credentials (a local mistake)."""


def _spki(public_key: object) -> bytes:
    public_bytes = getattr(public_key, "public_bytes")  # noqa: B009 - every key type has it
    der: bytes = public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    return der


class Credentials:
    """Our own certificate chain (DER, leaf first) and the leaf's private key.

    The only way to build one is from the chain and the key: the constructor
    checks that the key is the leaf's, reads the key's kind off the leaf's
    SubjectPublicKeyInfo (an id-RSASSA-PSS key signs only with
    rsa_pss_pss_*, RFC 8446 §4.2.3) and derives the CertificateVerify
    schemes it can sign with, best first. Nothing else decides them.
    """

    __slots__ = ("_private_key", "chain", "key_is_rsassa_pss", "schemes", "schemes_tls12")

    def __init__(
        self, chain: Sequence[bytes], private_key: CertificateIssuerPrivateKeyTypes
    ) -> None:
        """Takes the chain (DER, leaf first) and the leaf's key; raises
        `InvalidCredentials` if the chain is empty or unreadable, the key is
        not the leaf's, or the key can sign no TLS 1.3 scheme."""
        self.chain: tuple[bytes, ...] = tuple(chain)
        if not self.chain:
            raise InvalidCredentials("no certificate")
        try:
            leaf = x509.load_der_x509_certificate(self.chain[0])
            leaf_spki = _spki(leaf.public_key())
        except ValueError as error:
            raise InvalidCredentials(f"the leaf certificate cannot be read: {error}") from None
        if leaf_spki != _spki(private_key.public_key()):
            raise InvalidCredentials("the key does not match the leaf certificate")
        self._private_key = private_key
        self.key_is_rsassa_pss: bool = spki_is_rsassa_pss(self.chain[0])
        self.schemes: tuple[SignatureScheme, ...] = schemes_for_key(
            private_key, key_is_rsassa_pss=self.key_is_rsassa_pss
        )
        if not self.schemes:
            raise InvalidCredentials("the key can sign with no TLS 1.3 signature scheme")
        # TLS 1.2 adds RSA PKCS#1 v1.5 (RFC 5246 §7.4.1.4.1), SHA-2 only.
        self.schemes_tls12: tuple[SignatureScheme, ...] = schemes_for_key_tls12(
            private_key, key_is_rsassa_pss=self.key_is_rsassa_pss
        )

    @property
    def private_key(self) -> CertificateIssuerPrivateKeyTypes:
        return self._private_key

    def choose_scheme(self, offered: Sequence[int]) -> SignatureScheme | None:
        """Our preferred scheme among those the peer offered, or None (§4.4.2.2)."""
        wanted = frozenset(offered)
        for scheme in self.schemes:
            if scheme in wanted:
                return scheme
        return None

    def choose_scheme_tls12(self, offered: Sequence[int]) -> SignatureScheme | None:
        """Our preferred TLS 1.2 scheme among those the peer offered, or None."""
        wanted = frozenset(offered)
        for scheme in self.schemes_tls12:
            if scheme in wanted:
                return scheme
        return None

    def sign_tls12(self, scheme: SignatureScheme, message: bytes) -> bytes:
        """A TLS 1.2 signature (RFC 5246 §4.7) with one of `schemes_tls12`."""
        if scheme not in self.schemes_tls12:
            raise LocalProtocolError(f"these credentials cannot sign with {scheme.name}")
        return sign_tls12(
            scheme, self._private_key, message, key_is_rsassa_pss=self.key_is_rsassa_pss
        )

    def sign(self, scheme: SignatureScheme, message: bytes) -> bytes:
        """A CertificateVerify signature with one of `schemes` (else `LocalProtocolError`)."""
        if scheme not in self.schemes:
            raise LocalProtocolError(f"these credentials cannot sign with {scheme.name}")
        return sign(scheme, self._private_key, message, key_is_rsassa_pss=self.key_is_rsassa_pss)

    def __repr__(self) -> str:  # never print a key
        return f"Credentials(chain=<{len(self.chain)} certificates>, private_key=<hidden>)"


DEFAULT_CIPHER_SUITES: tuple[CipherSuite, ...] = (
    CipherSuite.TLS_AES_128_GCM_SHA256,
    CipherSuite.TLS_CHACHA20_POLY1305_SHA256,
    CipherSuite.TLS_AES_256_GCM_SHA384,
)
# TLS 1.2 suites, server preference first: AEAD ECDHE only (RFC 5289, RFC 7905).
DEFAULT_CIPHER_SUITES_TLS12: tuple[CipherSuite, ...] = (
    CipherSuite.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
    CipherSuite.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
    CipherSuite.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
    CipherSuite.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
    CipherSuite.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
    CipherSuite.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
)
# The schemes only TLS 1.2 adds to signature_algorithms (RFC 5246
# §7.4.1.4.1): RSA PKCS#1 v1.5 with SHA-2. Never SHA-1 or MD5.
TLS12_ONLY_SCHEMES: tuple[SignatureScheme, ...] = (
    SignatureScheme.rsa_pkcs1_sha256,
    SignatureScheme.rsa_pkcs1_sha384,
    SignatureScheme.rsa_pkcs1_sha512,
)
# What a ClientHello offering TLS 1.2 adds: uncompressed points only (RFC
# 8422 §5.1.2), the extended master secret (RFC 7627 §5.1), and an empty
# renegotiation_info (RFC 5746 §3.4: the extension rather than the SCSV, so
# that every extension in the ServerHello is one we sent).
TLS12_HELLO_EXTENSIONS: tuple[Extension, ...] = (
    EcPointFormats((ECPointFormat.uncompressed,)).to_extension(),
    ExtendedMasterSecret().to_extension(),
    RenegotiationInfo(b"").to_extension(),
)
# The protocol versions negotiated, best first; nothing else ever is.
DEFAULT_VERSIONS: tuple[int, ...] = (TLS13, TLS12)
DEFAULT_GROUPS: tuple[NamedGroup, ...] = (
    NamedGroup.x25519,
    NamedGroup.secp256r1,
    NamedGroup.secp384r1,
    NamedGroup.X25519MLKEM768,
)
DEFAULT_SIGNATURE_SCHEMES: tuple[SignatureScheme, ...] = (
    SignatureScheme.ecdsa_secp256r1_sha256,
    SignatureScheme.ecdsa_secp384r1_sha384,
    SignatureScheme.ed25519,
    SignatureScheme.rsa_pss_rsae_sha256,
    SignatureScheme.rsa_pss_rsae_sha384,
    SignatureScheme.rsa_pss_rsae_sha512,
    SignatureScheme.rsa_pss_pss_sha256,
    SignatureScheme.rsa_pss_pss_sha384,
    SignatureScheme.rsa_pss_pss_sha512,
)
# Schemes we accept in certificates but never in CertificateVerify (§4.2.3).
DEFAULT_SIGNATURE_SCHEMES_CERT: tuple[SignatureScheme, ...] = (
    *DEFAULT_SIGNATURE_SCHEMES,
    SignatureScheme.ecdsa_secp521r1_sha512,
    SignatureScheme.rsa_pkcs1_sha256,
    SignatureScheme.rsa_pkcs1_sha384,
    SignatureScheme.rsa_pkcs1_sha512,
)


@dataclass(frozen=True)
class ServerConfig:
    credentials: Credentials
    # None: no CertificateRequest is sent (the HTTPS page). Otherwise the
    # client must present a chain this function accepts, or the handshake
    # fails (certificate_required for an empty Certificate, §4.4.2.4).
    authenticate_client: PeerAuthenticator | None = None
    # DER-encoded distinguished names for certificate_authorities (§4.2.4).
    certificate_authorities: tuple[bytes, ...] = ()
    cipher_suites: tuple[CipherSuite, ...] = DEFAULT_CIPHER_SUITES
    groups: tuple[NamedGroup, ...] = DEFAULT_GROUPS
    signature_schemes: tuple[SignatureScheme, ...] = DEFAULT_SIGNATURE_SCHEMES
    # (TLS13,) speaks TLS 1.3 only, exactly as before TLS 1.2 existed here.
    versions: tuple[int, ...] = DEFAULT_VERSIONS
    cipher_suites_tls12: tuple[CipherSuite, ...] = DEFAULT_CIPHER_SUITES_TLS12

    # The server's Certificate and CertificateRequest are the same for every
    # connection: encode them once per configuration, not once per handshake.
    @cached_property
    def encoded_certificate(self) -> bytes:
        entries = tuple(CertificateEntry(der, ()) for der in self.credentials.chain)
        return Certificate(b"", entries).encode()

    @cached_property
    def encoded_certificate_request(self) -> bytes:
        extensions = [SignatureAlgorithms(tuple(self.signature_schemes)).to_extension()]
        if self.certificate_authorities:
            extensions.append(CertificateAuthorities(self.certificate_authorities).to_extension())
        return CertificateRequest(b"", tuple(extensions)).encode()

    @cached_property
    def encoded_flight_head(self) -> bytes:
        """EncryptedExtensions (empty: we negotiate nothing it carries), the
        CertificateRequest when clients authenticate, and the Certificate
        (RFC 8446 §4.3, §4.4.2): the part of our TLS 1.3 flight that is the
        same for every connection, sent and hashed as one (its order is §4.4's)."""
        request = b"" if self.authenticate_client is None else self.encoded_certificate_request
        return EncryptedExtensions(()).encode() + request + self.encoded_certificate

    @cached_property
    def signature_schemes_tls12(self) -> tuple[SignatureScheme, ...]:
        """What we accept in a TLS 1.2 CertificateVerify: `signature_schemes`
        and RSA PKCS#1 v1.5 with SHA-2, which TLS 1.2 allows (RFC 5246 §7.4.1.4.1)."""
        extra = tuple([s for s in TLS12_ONLY_SCHEMES if s not in self.signature_schemes])
        return (*self.signature_schemes, *extra)

    @cached_property
    def encoded_certificate12(self) -> bytes:
        return Certificate12(self.credentials.chain).encode()

    @cached_property
    def encoded_certificate_request12(self) -> bytes:
        # RFC 5246 §7.4.4, RFC 8422 §5.5: ECDSA (and Ed25519) or RSA client keys.
        return CertificateRequest12(
            (ClientCertificateType.ecdsa_sign, ClientCertificateType.rsa_sign),
            self.signature_schemes_tls12,
            self.certificate_authorities,
        ).encode()


def _is_ip_literal(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class ClientConfig:
    # How the server's chain is judged; required: this engine never skips it.
    authenticate_server: PeerAuthenticator
    # Presented when the server sends CertificateRequest; None sends an empty
    # Certificate message.
    credentials: Credentials | None = None
    server_name: str | None = None
    cipher_suites: tuple[CipherSuite, ...] = DEFAULT_CIPHER_SUITES
    groups: tuple[NamedGroup, ...] = DEFAULT_GROUPS
    # Groups for which the first ClientHello carries a key share (those also
    # in `groups`: a share for a group not offered is never sent).
    key_share_groups: tuple[NamedGroup, ...] = (NamedGroup.x25519,)
    signature_schemes: tuple[SignatureScheme, ...] = DEFAULT_SIGNATURE_SCHEMES
    signature_schemes_cert: tuple[SignatureScheme, ...] = DEFAULT_SIGNATURE_SCHEMES_CERT
    versions: tuple[int, ...] = DEFAULT_VERSIONS
    cipher_suites_tls12: tuple[CipherSuite, ...] = DEFAULT_CIPHER_SUITES_TLS12

    # What the ClientHello says that depends on this configuration alone is
    # built once per configuration, not once per connection.
    @cached_property
    def offered_schemes(self) -> tuple[SignatureScheme, ...]:
        """What our signature_algorithms lists: the configured schemes, and the
        PKCS#1 v1.5 ones when TLS 1.2 is offered (RFC 5246 §7.4.1.4.1)."""
        schemes = tuple(self.signature_schemes)
        if TLS12 in self.versions:
            schemes += tuple([s for s in TLS12_ONLY_SCHEMES if s not in schemes])
        return schemes

    @cached_property
    def hello_extensions(self) -> tuple[tuple[Extension, ...], tuple[Extension, ...]]:
        """The ClientHello's extensions but key_share, in their order: those
        before it and those after it (§4.2; RFC 5246 §7.4.1.4). TLS 1.3 only:
        exactly the hello of a TLS 1.3 client. With TLS 1.2,
        `TLS12_HELLO_EXTENSIONS` join it. TLS 1.2 only: no supported_versions
        (legacy_version says 1.2, RFC 8446 §4.2.1), no key_share or
        signature_algorithms_cert (TLS 1.3's)."""
        offers13 = TLS13 in self.versions
        before = []
        # §4.4.2.2 / RFC 6066 §3: SNI carries DNS names only, never IP literals.
        if self.server_name and not _is_ip_literal(self.server_name):
            before.append(ServerName(self.server_name).to_extension())
        if offers13:
            before.append(SupportedVersionsClientHello(tuple(self.versions)).to_extension())
        before += [
            SupportedGroups(tuple(self.groups)).to_extension(),
            SignatureAlgorithms(self.offered_schemes).to_extension(),
        ]
        if offers13:
            before.append(
                SignatureAlgorithmsCert(tuple(self.signature_schemes_cert)).to_extension()
            )
        after = TLS12_HELLO_EXTENSIONS if TLS12 in self.versions else ()
        return tuple(before), after
