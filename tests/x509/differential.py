"""Differential testing against `cryptography.x509.verification`.

Run as a subprocess (`python -m tests.x509.differential N`) so a verifier
that hangs cannot hang the suite: hypothesis builds chains with random
extensions, depths, key types and validity windows, both validators judge
each, and every disagreement is printed as one JSON line with the name of
the documented difference (pinata/x509/DIFFERENCES.md) that explains it,
matched on both validators' reasons, or "UNEXPLAINED". Seeded: `python -m
tests.x509.differential N SEED` replays a run; the seed is printed.
"""

from __future__ import annotations

import json
import random
import sys
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID
from cryptography.x509.verification import DNSName, PolicyBuilder, Store, VerificationError
from hypothesis import HealthCheck, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st

from bait_ca import forge
from bait_ca.keys import cached_key
from pinata.x509 import InvalidTrustAnchor, Purpose, TrustAnchor, ValidatedChain, validate

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


@dataclass(frozen=True)
class Verdict:
    """One validator's answer: accepted, or the reason it refused. Ours is
    split into the check (pinata.x509.Check) and its reason text."""

    accepted: bool
    check: str = ""
    reason: str = ""


def judge(spec: ChainSpec) -> tuple[Verdict, Verdict]:
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
    except InvalidTrustAnchor as error:
        ours = Verdict(False, str(error.check), f"anchor: {error.reason}")
    else:
        result = validate(anchor, chain, NOW, purpose, PEER if spec.purpose == "server" else None)
        if isinstance(result, ValidatedChain):
            ours = Verdict(True)
        else:
            ours = Verdict(False, str(result.check), result.reason)

    builder = PolicyBuilder().store(Store([anchor_issued.certificate])).time(NOW)
    intermediates = [m.certificate for m in reversed(middles)]
    try:
        if spec.purpose == "client":
            builder.build_client_verifier().verify(leaf.certificate, intermediates)
        else:
            verifier = builder.build_server_verifier(DNSName(PEER))
            verifier.verify(leaf.certificate, intermediates)
        theirs = Verdict(True)
    except VerificationError as error:
        theirs = Verdict(False, "", str(error)[:300])
    return ours, theirs


@dataclass(frozen=True)
class Difference:
    """A documented disagreement (pinata/x509/DIFFERENCES.md), matched on
    both validators' reasons: the check we refused with and a piece of its
    reason, and a piece of pyca's refusal; never on how the chain was built.
    When we accept, only pyca's reason is matched; when pyca accepts, ours."""

    we_accept: bool
    our_check: str = ""
    our_reason: str = ""
    their_reason: str = ""

    def explains(self, ours: Verdict, theirs: Verdict) -> bool:
        if self.we_accept:
            return ours.accepted and not theirs.accepted and self.their_reason in theirs.reason
        return (
            theirs.accepted
            and not ours.accepted
            and ours.check == self.our_check
            and self.our_reason in ours.reason
        )


EXPLANATIONS: dict[str, Difference] = {
    # We accept Ed25519 (RFC 8410, the issue); pyca's WebPKI profile forbids it.
    "ed25519-keys": Difference(
        # pyca: "Forbidden public key algorithm: AlgorithmIdentifier { oid: ...,
        # params: Ed25519 }"; another forbidden algorithm is not explained.
        True,
        their_reason="params: Ed25519 }",
    ),
    # A client certificate needs no subjectAltName to us; pyca requires one.
    "client-san-optional": Difference(
        True, their_reason="2.5.29.17: Certificate is missing required extension"
    ),
    # RFC 5280 §4.2.1.2: every CA certificate, anchor included, MUST carry an SKI.
    "ca-ski-required": Difference(False, "extension", "without subjectKeyIdentifier"),
    # CA/B BR §7.1.2.1.2: a root carries no extKeyUsage.
    "anchor-eku-forbidden": Difference(False, "eku", "anchor carries extendedKeyUsage"),
    # CA/B BR §7.1.2.7.6: a subscriber certificate MUST carry extKeyUsage.
    "leaf-eku-required": Difference(False, "eku", "leaf without extendedKeyUsage"),
    # CA/B BR §7.1.2.7.10: anyExtendedKeyUsage never in a leaf.
    "leaf-any-eku": Difference(False, "eku", "leaf extendedKeyUsage lists anyExtendedKeyUsage"),
    # TLS 1.3 signs with the leaf key: keyUsage, when present, has digitalSignature.
    "leaf-digital-signature": Difference(False, "key_usage", "lacks digitalSignature"),
    # RFC 9525 §6.3 leaves it to policy; we never let `*.tld` match (pyca does).
    "wildcard-over-one-label": Difference(
        False, "peer_name", "matches only a wildcard over one label"
    ),
}


def explain(ours: Verdict, theirs: Verdict) -> str:
    for name, difference in EXPLANATIONS.items():
        if difference.explains(ours, theirs):
            return name
    return "UNEXPLAINED"


def main(examples: int, seed: int) -> int:
    disagreements: list[dict[str, Any]] = []
    both_accepted = 0

    @hypothesis_seed(seed)
    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(chains)
    def explore(spec: ChainSpec) -> None:
        nonlocal both_accepted
        ours, theirs = judge(spec)
        both_accepted += ours.accepted and theirs.accepted
        if ours.accepted != theirs.accepted:
            disagreements.append(
                {
                    "explanation": explain(ours, theirs),
                    "ours": asdict(ours),
                    "theirs": asdict(theirs),
                    "spec": asdict(spec),
                }
            )

    explore()
    for disagreement in disagreements:
        print(json.dumps(disagreement))
    summary = {"examples": examples, "seed": seed, "both_accepted": both_accepted}
    print(json.dumps({**summary, "disagreements": len(disagreements)}))
    return 0


if __name__ == "__main__":
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    chosen = int(sys.argv[2]) if len(sys.argv) > 2 else random.SystemRandom().randrange(2**32)
    sys.exit(main(count, chosen))
