"""Differential testing against `cryptography.x509.verification`.

Run as a subprocess (`python -m tests.x509.differential N`) so a verifier
that hangs cannot hang the suite: hypothesis builds chains with random
extensions, depths, key types and validity windows, both validators judge
each, and every disagreement is printed as one JSON line with the name of
the documented difference (pinata/x509/DIFFERENCES.md) that explains it, or
"UNEXPLAINED".
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID
from cryptography.x509.verification import DNSName, PolicyBuilder, Store, VerificationError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bait_ca import forge
from bait_ca.keys import cached_key
from pinata.x509 import Purpose, TrustAnchor, ValidatedChain, validate

NOW = datetime(2026, 6, 1, 12, 0, 0, tzinfo=UTC)
PEER = "pinata.example"

EKUS = {
    "none": None,
    "client": [ExtendedKeyUsageOID.CLIENT_AUTH],
    "server": [ExtendedKeyUsageOID.SERVER_AUTH],
    "both": [ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.SERVER_AUTH],
    "any": [ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE],
}
KEY_USAGES: dict[str, set[str] | None] = {
    "none": None,
    "sign": {"digital_signature"},
    "certsign": {"key_cert_sign", "crl_sign"},
    "encipher": {"key_encipherment"},
}
WINDOWS = {
    "valid": (forge.NOT_BEFORE, forge.NOT_AFTER),
    "expired": (NOW - timedelta(days=30), NOW - timedelta(seconds=1)),
    "future": (NOW + timedelta(seconds=1), NOW + timedelta(days=30)),
    "edge": (NOW, NOW),
}


@dataclass
class CertSpec:
    key: str = "p256"
    window: str = "valid"
    ca: bool | None = True
    path_length: int | None = None
    key_usage: str = "certsign"
    eku: str = "none"
    key_identifiers: bool = True
    unknown_critical: bool = False
    nc: str = "none"  # none | permit-example | exclude-pinata
    san: str = "peer"  # none | peer | other | wildcard
    signature: str = "default"  # how its issuer signs it: default | sha384 | sha512 | pss


@dataclass
class ChainSpec:
    purpose: str
    anchor: CertSpec
    intermediates: list[CertSpec] = field(default_factory=list)
    leaf: CertSpec = field(default_factory=CertSpec)


# Mutations of a clean certificate: (field, values). A certificate gets up to
# two, so most chains are one or two defects away from valid and the two
# validators are compared where it matters, near the boundary.
_MUTATIONS: dict[str, list[Any]] = {
    "window": ["expired", "future", "edge"],
    "ca": [False, None, True],
    "path_length": [0, 1],
    "key_usage": list(KEY_USAGES),
    "eku": list(EKUS),
    "key_identifiers": [False],
    "unknown_critical": [True],
    "nc": ["permit-example", "exclude-pinata"],
    "san": ["none", "other", "wildcard"],
    "signature": ["sha384", "sha512", "pss"],
}
_LEAF_ONLY = {"san"}
_CA_ONLY = {"path_length", "nc"}


@st.composite
def _cert_specs(draw: st.DrawFn, role: str) -> CertSpec:
    leaf = role == "leaf"
    spec = CertSpec(
        key=draw(st.sampled_from(["p256"] * 4 + ["p384", "p384", "ed25519", "rsa2048", "rsa2048"])),
        ca=not leaf,
        key_usage="sign" if leaf else "certsign",
        eku="both" if leaf else "none",
        san="peer" if leaf else "none",
    )
    allowed = [f for f in _MUTATIONS if f not in (_CA_ONLY if leaf else _LEAF_ONLY)]
    for name in draw(st.lists(st.sampled_from(allowed), max_size=2, unique=True)):
        setattr(spec, name, draw(st.sampled_from(_MUTATIONS[name])))
    return spec


chains = st.builds(
    ChainSpec,
    purpose=st.sampled_from(["client", "server"]),
    anchor=_cert_specs("anchor"),
    intermediates=st.lists(_cert_specs("intermediate"), max_size=3),
    leaf=_cert_specs("leaf"),
)

_SANS = {"none": [], "peer": [PEER], "other": ["other.example"], "wildcard": ["*.example"]}
_NCS = {
    "permit-example": x509.NameConstraints([x509.DNSName("example")], None),
    "exclude-pinata": x509.NameConstraints(None, [x509.DNSName(PEER)]),
}


def _build(spec: CertSpec, name: str, issuer: Any, index: int) -> Any:
    not_before, not_after = WINDOWS[spec.window]
    key = (
        cached_key("rsa2048", f"differential {index}")
        if spec.key == "rsa2048"
        else forge.generate_key(spec.key)  # type: ignore[arg-type]
    )
    signer_key = (issuer.private_key if issuer else key).public_key()
    signature_hash = "default"
    rsa_pss = False
    if not isinstance(signer_key, ed25519.Ed25519PublicKey):
        if spec.signature in ("sha384", "sha512"):
            signature_hash = spec.signature
        rsa_pss = spec.signature == "pss" and isinstance(signer_key, rsa.RSAPublicKey)
    return forge.build_certificate(
        subject=name,
        signature_hash=signature_hash,  # type: ignore[arg-type]
        rsa_pss=rsa_pss,
        issuer=issuer,
        private_key=key,
        not_before=not_before,
        not_after=not_after,
        ca=spec.ca,
        path_length=spec.path_length,
        key_usage=KEY_USAGES[spec.key_usage],
        extended_key_usage=EKUS[spec.eku],
        san_dns=_SANS[spec.san],
        name_constraints=_NCS.get(spec.nc),
        key_identifiers=spec.key_identifiers,
        unknown_critical_extension=spec.unknown_critical,
    )


def judge(spec: ChainSpec) -> tuple[bool, str, bool, str]:
    anchor_issued = _build(spec.anchor, "Differential Anchor", None, 0)
    issuer = anchor_issued
    middles = []
    for i, middle_spec in enumerate(spec.intermediates):
        issuer = _build(middle_spec, f"Intermediate {i}", issuer, i + 1)
        middles.append(issuer)
    leaf = _build(spec.leaf, "Leaf", issuer, 9)
    purpose = Purpose.CLIENT_AUTH if spec.purpose == "client" else Purpose.SERVER_AUTH
    chain = (leaf.der, *(m.der for m in reversed(middles)))

    try:
        anchor = TrustAnchor.from_der(anchor_issued.der)
    except ValueError as error:
        ours, our_reason = False, f"anchor: {error}"
    else:
        result = validate(anchor, chain, NOW, purpose, PEER if spec.purpose == "server" else None)
        ours = isinstance(result, ValidatedChain)
        our_reason = "" if ours else f"{result.check}: {result.reason}"  # type: ignore[union-attr]

    builder = PolicyBuilder().store(Store([anchor_issued.certificate])).time(NOW)
    intermediates = [m.certificate for m in reversed(middles)]
    try:
        if spec.purpose == "client":
            builder.build_client_verifier().verify(leaf.certificate, intermediates)
        else:
            verifier = builder.build_server_verifier(DNSName(PEER))
            verifier.verify(leaf.certificate, intermediates)
        theirs, their_reason = True, ""
    except VerificationError as error:
        theirs, their_reason = False, str(error)[:300]
    return ours, our_reason, theirs, their_reason


# Each documented difference (pinata/x509/DIFFERENCES.md), as a predicate on
# (chain, did we accept, our refusal's check name). Each is narrow: it names
# the direction of the disagreement and, for our refusals, the check.
def _certs(spec: ChainSpec) -> list[CertSpec]:
    return [spec.anchor, *spec.intermediates, spec.leaf]


EXPLANATIONS: dict[str, Callable[[ChainSpec, bool, str], bool]] = {
    # AKI is a path-building hint to us; pyca requires it in the leaf.
    "leaf-aki-optional": lambda spec, ours, check: ours and not spec.leaf.key_identifiers,
    # A client certificate needs no subjectAltName to us; pyca requires one.
    "client-san-optional": lambda spec, ours, check: (
        ours and spec.purpose == "client" and spec.leaf.san == "none"
    ),
    # RFC 5280 §4.2.1.2: a CA certificate MUST carry an SKI; pyca does not check.
    "intermediate-ski-required": lambda spec, ours, check: (
        not ours and check == "extension" and any(not c.key_identifiers for c in spec.intermediates)
    ),
    # CA/B BR §7.1.2.7.10: anyExtendedKeyUsage never in a leaf.
    "leaf-any-eku": lambda spec, ours, check: (
        not ours and check == "eku" and spec.leaf.eku == "any"
    ),
    # The issue: a leaf's keyUsage, when present, must include digitalSignature.
    "leaf-digital-signature": lambda spec, ours, check: (
        not ours and check == "key_usage" and spec.leaf.key_usage in ("certsign", "encipher")
    ),
    # RFC 9525 §6.3 leaves it to policy; we never let `*.tld` match (pyca does).
    "wildcard-over-one-label": lambda spec, ours, check: (
        not ours and check == "peer_name" and spec.leaf.san == "wildcard"
    ),
    # Last, as the broadest. We accept Ed25519 (RFC 8410); pyca's WebPKI profile forbids it.
    "ed25519-keys": lambda spec, ours, check: (
        ours and any(c.key == "ed25519" for c in _certs(spec))
    ),
}


def explain(spec: ChainSpec, ours: bool, our_reason: str) -> str:
    check = our_reason.split(":", 1)[0]
    for name, predicate in EXPLANATIONS.items():
        if predicate(spec, ours, check):
            return name
    return "UNEXPLAINED"


def main(examples: int) -> int:
    disagreements: list[dict[str, Any]] = []
    both_accepted = 0

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(chains)
    def explore(spec: ChainSpec) -> None:
        nonlocal both_accepted
        ours, our_reason, theirs, their_reason = judge(spec)
        both_accepted += ours and theirs
        if ours != theirs:
            disagreements.append(
                {
                    "explanation": explain(spec, ours, our_reason),
                    "ours": ours,
                    "our_reason": our_reason,
                    "theirs": theirs,
                    "their_reason": their_reason,
                    "spec": asdict(spec),
                }
            )

    explore()
    for disagreement in disagreements:
        print(json.dumps(disagreement))
    summary = {"examples": examples, "both_accepted": both_accepted}
    print(json.dumps({**summary, "disagreements": len(disagreements)}))
    return 0


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1]) if len(sys.argv) > 1 else 200))
