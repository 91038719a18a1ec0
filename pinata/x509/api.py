"""The validator's one entry point, and its adapter to the TLS engine."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from datetime import UTC, datetime

from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes

from pinata.tls.config import PeerAuthenticator, PeerRejected, VerifiedPeer
from pinata.tls.values import value
from pinata.x509 import checks, path
from pinata.x509.anchor import TrustAnchor
from pinata.x509.checks import Purpose
from pinata.x509.errors import CertificateRefused, Check, ValidationFailure, alert_for
from pinata.x509.parse import ParsedCertificate

PeerName = str | ipaddress.IPv4Address | ipaddress.IPv6Address


@value
class ValidatedChain:
    chain: tuple[bytes, ...]  # DER, leaf first, anchor last
    leaf_public_key: CertificatePublicKeyTypes
    leaf_key_is_rsassa_pss: bool
    subjects: tuple[str, ...]  # RFC 4514, leaf first


def validate(
    anchor: TrustAnchor,
    certificates: Sequence[bytes],
    now: datetime,
    purpose: Purpose,
    peer_name: PeerName | None = None,
    max_depth: int = 8,
) -> ValidatedChain | ValidationFailure:
    """Validate `certificates` (leaf first, then any bag, as the peer sent
    them) against `anchor` at `now` (RFC 5280 §6.1, with the stricter
    profile this package documents). `max_depth` bounds the intermediates.
    Returns the path, or the first reason it failed; never raises on input."""
    if not certificates:
        return ValidationFailure(Check.empty, None, "no certificate", alert_for(Check.empty))
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    # RFC 5280 §4.1.2.5: validity has a granularity of seconds, so 5 ms past
    # a notAfter of 00:00:00 is still within it.
    if now.microsecond:
        now = now.replace(microsecond=0)
    try:
        leaf = anchor.cache.parse(bytes(certificates[0]))
        checks.check_leaf(leaf, purpose)
        checks.check_validity(leaf, now)
        if peer_name is not None:
            checks.check_peer_name(leaf, peer_name)
    except CertificateRefused as refused:
        return refused.failure(0)
    search = path.PathSearch(
        anchor=anchor.certificate,
        cache=anchor.cache,
        bag=path.bag_of(certificates, anchor.der),
        now=now,
        purpose=purpose,
        max_depth=max(0, min(max_depth, path.HARD_MAX_DEPTH)),
    )
    found = search.find(leaf)
    if isinstance(found, ValidationFailure):
        return found
    chain: list[ParsedCertificate] = [leaf]
    chain += [anchor.certificate if i == path.ANCHOR else search.parsed[i] for i in found[1:]]
    return ValidatedChain(
        chain=tuple([certificate.der for certificate in chain]),
        leaf_public_key=leaf.public_key,
        leaf_key_is_rsassa_pss=leaf.key_is_rsassa_pss,
        subjects=(*[certificate.subject_text for certificate in chain[:-1]], anchor.subject_text),
    )


def authenticator(
    anchor: TrustAnchor,
    purpose: Purpose,
    peer_name: PeerName | None = None,
    max_depth: int = 8,
) -> PeerAuthenticator:
    """The TLS engine's peer-authentication hook, bound to one anchor."""

    def authenticate(certificates: Sequence[bytes], now: datetime) -> VerifiedPeer | PeerRejected:
        result = validate(anchor, certificates, now, purpose, peer_name, max_depth)
        if isinstance(result, ValidationFailure):
            where = (
                ""
                if result.certificate_index is None
                else f" (certificate {result.certificate_index})"
            )
            return PeerRejected(result.alert, f"{result.check}{where}: {result.reason}")
        return VerifiedPeer(
            chain=result.chain,
            leaf_public_key=result.leaf_public_key,
            subjects=result.subjects,
            leaf_key_is_rsassa_pss=result.leaf_key_is_rsassa_pss,
        )

    return authenticate
