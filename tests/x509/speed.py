"""Microseconds per validation of the toy researcher client (a leaf issued
directly by the anchor): ours, pyca's ClientVerifier on the same chain, and
the one ECDSA verification the chain needs. Ours also hands back the leaf's
public key (`ValidatedChain.leaf_public_key`, for CertificateVerify), which
pyca's verifier does not build, so "pyca+key" adds that to pyca's figure:
the like-for-like comparison. Not a test: run it by hand,

    python -m tests.x509.speed [rounds] [validations per batch]

Each figure starts from DER, as a handshake delivers it; both anchors are
built once. Batches alternate (A B C, C B A, ...) so that a noisy neighbour
hurts all three alike; the medians and the median of per-round ratios are
printed.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.x509.verification import Criticality, ExtensionPolicy, PolicyBuilder, Store

from bait_ca import toy
from pinata.x509 import Purpose, TrustAnchor, ValidatedChain, validate

NOW = datetime(2026, 6, 1, 12, 0, 0, tzinfo=UTC)


def contenders() -> dict[str, Callable[[], object]]:
    credentials = toy.load()
    anchor_der = credentials.anchor.der
    leaf_der = credentials.researcher_client.der
    ours_anchor = TrustAnchor.from_der(anchor_der)
    pyca_anchor = x509.load_der_x509_certificate(anchor_der)
    # The toy client leaf carries no subjectAltName (nothing to name), which
    # pyca's Web PKI end-entity policy demands; only that is relaxed.
    ee_policy = ExtensionPolicy.webpki_defaults_ee().may_be_present(
        x509.SubjectAlternativeName, Criticality.AGNOSTIC, None
    )
    verifier = (
        PolicyBuilder()
        .store(Store([pyca_anchor]))
        .time(NOW)
        .extension_policies(ca_policy=ExtensionPolicy.webpki_defaults_ca(), ee_policy=ee_policy)
        .build_client_verifier()
    )
    leaf = x509.load_der_x509_certificate(leaf_der)
    tbs, signature = leaf.tbs_certificate_bytes, leaf.signature
    key = pyca_anchor.public_key()
    assert isinstance(key, ec.EllipticCurvePublicKey)

    def ours() -> object:
        result = validate(ours_anchor, (leaf_der,), NOW, Purpose.CLIENT_AUTH)
        if not isinstance(result, ValidatedChain):
            raise AssertionError(f"our validator refused the toy client: {result}")
        return result

    def pyca() -> object:
        return verifier.verify(x509.load_der_x509_certificate(leaf_der), [])

    def pyca_and_key() -> object:
        verified = verifier.verify(x509.load_der_x509_certificate(leaf_der), [])
        return verified.chain[0].public_key()

    ecdsa = ec.ECDSA(SHA256())

    def bare_verify() -> object:
        key.verify(signature, tbs, ecdsa)
        return None

    return {"ours": ours, "pyca": pyca, "pyca+key": pyca_and_key, "verify": bare_verify}


def batch(function: Callable[[], object], n: int) -> float:
    """µs per call over `n` calls."""
    started = time.perf_counter()
    for _ in range(n):
        function()
    return (time.perf_counter() - started) / n * 1e6


def main(argv: list[str]) -> int:
    rounds = int(argv[0]) if argv else 9
    n = int(argv[1]) if len(argv) > 1 else 2000
    functions = contenders()
    for function in functions.values():
        batch(function, max(1, n // 10))
    times: dict[str, list[float]] = {name: [] for name in functions}
    order = list(functions.items())
    for r in range(rounds):
        for name, function in order if r % 2 == 0 else order[::-1]:
            times[name].append(batch(function, n))
    for name, values in times.items():
        print(
            f"{name:8} median {statistics.median(values):7.1f} µs"
            f"  (min {min(values):6.1f}, max {max(values):6.1f})"
        )
    for other in ("pyca", "pyca+key", "verify"):
        ratios = [a / b for a, b in zip(times["ours"], times[other], strict=True)]
        print(f"ours/{other}: median of per-round ratios {statistics.median(ratios):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
