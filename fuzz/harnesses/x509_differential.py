"""Harness 6: our validator against pyca/cryptography's, on mutated chains.

Input: as harness 5's mutated-chain mode. Both judge the same list for
client authentication at the same time. Where we accept and pyca refuses,
it is a finding (we would hand the secret to a chain a second, independent
validator rejects). Where we refuse and pyca accepts, it is a finding
unless our reason is a documented part of our stricter profile
(`STRICTER`): those are the checks pinata/x509 adds beyond RFC 5280.
"""

from __future__ import annotations

import itertools
import time

from cryptography import x509 as cx509
from cryptography.x509 import verification

from fuzz.harnesses import chains
from fuzz.harnesses.support import FuzzFinding, Input
from fuzz.harnesses.x509 import anchor, check_accepted
from pinata.x509 import Check, Purpose, ValidatedChain, ValidationFailure, validate
from pinata.x509.errors import CertificateRefused
from pinata.x509.parse import parse_certificate

# Refusals of ours that pyca may not share, by design of our profile.
STRICTER = frozenset(
    {
        Check.malformed,  # we parse each extension pyca reads lazily or not at all
        Check.version,
        Check.serial,
        Check.name,
        Check.common_name,
        Check.extension,
        Check.unsupported_extension,
        Check.key_usage,
        Check.public_key,
        Check.signature_algorithm,
    }
)
# Refusals of ours for a check pyca also makes, where only these reasons are
# our profile's own (CA/B BR §7.1.2.7.6 and §7.1.2.7.10): matched on check
# and reason, so any other refusal for that check is still a finding.
STRICTER_REASONS = (
    (Check.eku, "leaf without extendedKeyUsage"),
    (Check.eku, "leaf extendedKeyUsage lists"),
    (Check.eku, "leaf extendedKeyUsage marked critical"),
)
# Refusals of pyca's that our profile does not share: its client verifier
# demands a subjectAltName on the leaf and an authorityKeyIdentifier below
# the anchor (CA/Browser-style rules RFC 5280 leaves optional); and it
# refuses critical policy extensions, which pinata/x509 recognises without
# a policy tree (pinata/x509/parse.py explains why that changes no outcome).
PYCA_ONLY = (
    "2.5.29.17: Certificate is missing required extension",
    "2.5.29.35: Certificate is missing required extension",
    "2.5.29.32: certificate contains unaccounted-for critical extensions",
    "2.5.29.33: certificate contains unaccounted-for critical extensions",
    "2.5.29.54: certificate contains unaccounted-for critical extensions",
)
# Neither validator may take this long on a chain of at most four certificates.
MAX_SECONDS = 2.0


def pyca_verdict(anchor_der: bytes, certificates: list[bytes]) -> str | None:
    """None if pyca/cryptography accepts the chain, else its reason.

    pyca is the oracle, not the system under test: any exception it raises
    (VerificationError, ValueError, UnsupportedGeneralNameType for an
    x400Address or ediPartyName, ...) is its refusal, never a finding.
    Certificates after the first that pyca cannot even load are left out of
    its bag, as our validator ignores (never uses) what it cannot parse."""
    try:
        leaf = cx509.load_der_x509_certificate(certificates[0])
    except Exception as error:  # the oracle refuses; see above
        return f"leaf does not load: {type(error).__name__}: {error}"
    bag = []
    for der in certificates[1:]:
        try:
            bag.append(cx509.load_der_x509_certificate(der))
        except Exception:  # unusable to pyca, as to us
            continue
    store = verification.Store([cx509.load_der_x509_certificate(anchor_der)])
    policy = verification.PolicyBuilder().store(store).time(chains.TOY_NOW)
    verifier = policy.build_client_verifier()
    try:
        verifier.verify(leaf, bag)
    except Exception as error:  # the oracle refuses; see above
        return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
    return None


def _names_folded(result: ValidatedChain) -> bool:
    """Whether some link of our path matched an issuer name to a subject
    that differs in bytes: RFC 5280 §7.1 asks for RFC 4518 string
    preparation (case, spaces, control characters fold), pyca compares bytes."""
    parsed = [cx509.load_der_x509_certificate(der) for der in result.chain]
    return any(
        child.issuer.public_bytes() != issuer.subject.public_bytes()
        for child, issuer in itertools.pairwise(parsed)
    )


def _refused_in_bag(certificates: list[bytes]) -> bool:
    """Whether we parse and refuse, by our stricter profile, a certificate
    pyca could use: we then never use it, and may report no_path."""
    for der in certificates[1:]:
        try:
            parse_certificate(der)
        except CertificateRefused as refused:
            if refused.check in STRICTER:
                return True
    return False


def _stricter(ours: ValidationFailure) -> bool:
    if ours.check in STRICTER:
        return True
    return any(ours.check == check and part in ours.reason for check, part in STRICTER_REASONS)


def one_input(data: bytes) -> None:
    inp = Input(data)
    chain, certificates = chains.mutated_chain(inp)
    if not certificates:
        return
    trust = anchor(chain.anchor_der)
    started = time.monotonic()
    ours = validate(trust, certificates, chains.TOY_NOW, Purpose.CLIENT_AUTH)
    middle = time.monotonic()
    refusal = pyca_verdict(chain.anchor_der, certificates)
    if middle - started > MAX_SECONDS or time.monotonic() - middle > MAX_SECONDS:
        raise FuzzFinding("a validator took longer than its bound")
    if isinstance(ours, ValidatedChain):
        check_accepted(ours, certificates, trust, chains.TOY_NOW)
        if refusal is None or any(known in refusal for known in PYCA_ONLY):
            return
        if not _names_folded(ours):
            raise FuzzFinding(f"we accept a chain pyca/cryptography refuses: {refusal[:300]}")
    elif refusal is None and not _stricter(ours) and not _refused_in_bag(certificates):
        raise FuzzFinding(
            f"pyca/cryptography accepts a chain we refuse ({ours.check}: {ours.reason})"
        )
