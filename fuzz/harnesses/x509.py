"""Harness 5: the X.509 validator (`pinata.x509.validate`).

Input: [mode][purpose/time] then either a bag of arbitrary DER (mode even:
two-byte lengths, against the toy anchor) or mutations of a valid chain,
re-signed so the profile and path checks see them (mode odd; see
`fuzz.harnesses.chains`).

The invariant: `validate` returns a `ValidatedChain` or a
`ValidationFailure`; nothing escapes. And, checked independently with
`cryptography`: an accepted path runs from the first certificate sent to
the anchor, each certificate signed by the next, every one within its
validity period at the time asked.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Sequence
from functools import cache

from cryptography import x509 as cx509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

from fuzz.harnesses import chains
from fuzz.harnesses.support import FuzzFinding, Input
from pinata.x509 import Purpose, TrustAnchor, ValidatedChain, ValidationFailure, validate

_TIMES = (
    chains.TOY_NOW,
    dt.datetime(2024, 12, 31, 23, 59, 59, tzinfo=dt.UTC),
    dt.datetime(2030, 1, 1, 0, 0, 1, tzinfo=dt.UTC),
    dt.datetime(2099, 12, 31, 23, 59, 59, tzinfo=dt.UTC),
)
MAX_BAG = 12


@cache
def anchor(der: bytes) -> TrustAnchor:
    return TrustAnchor.from_der(der)


def check_accepted(result: ValidatedChain, sent: Sequence[bytes], trust: TrustAnchor,
                   now: dt.datetime) -> None:
    """What an accepted path must be, whatever the validator's reasons."""
    if result.chain[0] != bytes(sent[0]):
        raise FuzzFinding("the path does not start at the first certificate sent")
    if result.chain[-1] != trust.der:
        raise FuzzFinding("the path does not end at the anchor")
    if any(der not in sent for der in result.chain[:-1]):
        raise FuzzFinding("the path holds a certificate nobody sent")
    parsed = [cx509.load_der_x509_certificate(der) for der in result.chain]
    for certificate, issuer in itertools.pairwise(parsed):
        if not signed_by(certificate, issuer):
            raise FuzzFinding("accepted a link whose signature does not verify")
    for certificate in parsed:
        if not certificate.not_valid_before_utc <= now <= certificate.not_valid_after_utc:
            raise FuzzFinding("accepted a certificate outside its validity period")


def signed_by(certificate: cx509.Certificate, issuer: cx509.Certificate) -> bool:
    """The signature check alone (issuer names are compared by RFC 5280
    §7.1 rules in our validator, byte for byte in `cryptography`'s
    `verify_directly_issued_by`, so that is not the oracle)."""
    key = issuer.public_key()
    signature, tbs = certificate.signature, certificate.tbs_certificate_bytes
    try:
        if isinstance(key, rsa.RSAPublicKey):
            parameters = certificate.signature_algorithm_parameters
            digest = certificate.signature_hash_algorithm
            if not isinstance(parameters, padding.PSS | padding.PKCS1v15) or digest is None:
                return False
            key.verify(signature, tbs, parameters, digest)
        elif isinstance(key, ec.EllipticCurvePublicKey):
            parameters = certificate.signature_algorithm_parameters
            if not isinstance(parameters, ec.ECDSA):
                return False
            key.verify(signature, tbs, parameters)
        elif isinstance(key, ed25519.Ed25519PublicKey):
            key.verify(signature, tbs)
        else:
            return False
    except (InvalidSignature, ValueError, UnsupportedAlgorithm):
        return False
    return True


def certificates_from(inp: Input) -> tuple[TrustAnchor, list[bytes]]:
    """The anchor and the certificates the peer sends, as the mode says."""
    mode = inp.u8()
    if mode & 1:
        chain, certificates = chains.mutated_chain(inp)
        return anchor(chain.anchor_der), certificates
    bag: list[bytes] = []
    while inp.remaining and len(bag) < MAX_BAG:
        bag.append(inp.take(inp.u16()))
    return anchor(chains.toy_chain().anchor_der), bag


def one_input(data: bytes) -> None:
    inp = Input(data)
    knobs = inp.u8()
    purpose = Purpose.SERVER_AUTH if knobs & 1 else Purpose.CLIENT_AUTH
    now = _TIMES[(knobs >> 1) % len(_TIMES)]
    trust, certificates = certificates_from(inp)
    result = validate(trust, certificates, now, purpose)
    if isinstance(result, ValidatedChain):
        check_accepted(result, certificates, trust, now)
    elif not isinstance(result, ValidationFailure):
        raise FuzzFinding(f"validate returned {type(result).__name__}")
