"""`pinata bench validation`: microseconds per X.509 validation of a client leaf
issued directly by the anchor, ours (`pinata.x509.validate`) against pyca's
`cryptography.x509.verification` client verifier, in this process.

Both start from the DER bytes a handshake delivers and both are built once
per anchor (our `TrustAnchor`, pyca's `PolicyBuilder`). Ours keeps parsed
certificates in the anchor's bounded ParseCache, so a leaf seen before is
not parsed again (a client that reconnects): that is "ours". "ours, cold"
gives every validation an empty cache, so it parses the leaf as pyca does
each time. Batches alternate A B C, C B A ...; each figure is the median of
the per-round ratios.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import shutil
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.verification import Criticality, ExtensionPolicy, PolicyBuilder, Store

from pinata.bench import report
from pinata.bench.creds import KEY_KINDS, KeyKind, write_pki
from pinata.bench.runs import scratch_directory
from pinata.x509 import Purpose, TrustAnchor, ValidatedChain, validate
from pinata.x509.parse import ParseCache


def _validators(
    directory: Path,
) -> tuple[Callable[[], object], Callable[[], object], Callable[[], object]]:
    anchor = x509.load_pem_x509_certificate((directory / "anchor.pem").read_bytes())
    leaf_der = x509.load_pem_x509_certificate(
        (directory / "client.pem").read_bytes()).public_bytes(Encoding.DER)
    now = datetime.now(UTC)
    ours_anchor = TrustAnchor.from_der(anchor.public_bytes(Encoding.DER))
    # The Web PKI profile pyca defaults to wants a subjectAltName on a client
    # leaf; the appliance's client leaves carry none (nothing to name), so
    # that one requirement is relaxed. Everything else stays pyca's default.
    ee_policy = ExtensionPolicy.webpki_defaults_ee().may_be_present(
        x509.SubjectAlternativeName, Criticality.AGNOSTIC, None)
    verifier = (PolicyBuilder().store(Store([anchor])).time(now)
                .extension_policies(ca_policy=ExtensionPolicy.webpki_defaults_ca(),
                                    ee_policy=ee_policy)
                .build_client_verifier())

    def ours() -> object:
        result = validate(ours_anchor, (leaf_der,), now, Purpose.CLIENT_AUTH)
        if not isinstance(result, ValidatedChain):
            raise AssertionError(f"our validator refused the bench leaf: {result}")
        return result

    def ours_cold() -> object:
        cold = dataclasses.replace(ours_anchor, cache=ParseCache())
        result = validate(cold, (leaf_der,), now, Purpose.CLIENT_AUTH)
        if not isinstance(result, ValidatedChain):
            raise AssertionError(f"our validator refused the bench leaf: {result}")
        return result

    def pyca() -> object:
        return verifier.verify(x509.load_der_x509_certificate(leaf_der), [])

    return ours, ours_cold, pyca


def _batch(function: Callable[[], object], n: int) -> float:
    """µs per call over `n` calls."""
    started = time.perf_counter()
    for _ in range(n):
        function()
    return (time.perf_counter() - started) / n * 1e6


def measure(kind: KeyKind, directory: Path, n: int, rounds: int) -> dict[str, object]:
    ours, ours_cold, pyca = _validators(write_pki(kind, directory / kind))
    contenders = (("ours", ours), ("ours_cold", ours_cold), ("pyca", pyca))
    for _, function in contenders:
        _batch(function, max(1, n // 10))
    times: dict[str, list[float]] = {name: [] for name, _ in contenders}
    for r in range(rounds):
        for name, function in contenders if r % 2 == 0 else contenders[::-1]:
            times[name].append(_batch(function, n))
    ratios = report.pair_ratios(times["ours"], times["pyca"])
    cold_ratios = report.pair_ratios(times["ours_cold"], times["pyca"])
    return {
        "leaf": kind,
        "ours_us": report.median(times["ours"]),
        "ours_cold_us": report.median(times["ours_cold"]),
        "pyca_us": report.median(times["pyca"]),
        "ratio_ours_over_pyca_median": report.median(ratios),
        "ratio_ours_cold_over_pyca_median": report.median(cold_ratios),
        "ratios": ratios,
        "batches_us": times,
    }


def render(result: dict[str, object]) -> str:
    rows: list[list[report.Cell]] = [
        [r["leaf"], r["ours_us"], r["ours_cold_us"], r["pyca_us"],
         r["ratio_ours_over_pyca_median"], r["ratio_ours_cold_over_pyca_median"]]
        for r in result["leaves"]  # type: ignore[attr-defined]
    ]
    return report.table(["leaf (issued by the anchor)", "ours µs", "ours, cold µs", "pyca µs",
                         "ours/pyca (median)", "cold/pyca (median)"], rows)


def main(args: argparse.Namespace, argv: list[str]) -> int:
    n = 20 if args.smoke else args.n
    rounds = 1 if args.smoke else args.rounds
    scratch = scratch_directory()
    try:
        leaves = [measure(kind, scratch, n, rounds) for kind in KEY_KINDS]
    finally:
        with contextlib.suppress(OSError):
            shutil.rmtree(scratch)
    result: dict[str, object] = {"smoke": args.smoke,
                                 "parameters": {"validations_per_batch": n, "rounds": rounds},
                                 "leaves": leaves}
    report.finish("validation", argv, args.json, render(result), result)
    return 0
