"""Each work bound the README states, at its figure: one past it refuses,
the figure itself does not."""

from __future__ import annotations

import pytest
from cryptography import x509

from bait_ca import forge
from bait_ca.issued import Issued
from bait_ca.keys import cached_key
from pinata.x509 import Check, Purpose, TrustAnchor, ValidationFailure, path, validate
from pinata.x509.parse import CACHE_ENTRIES, MAX_CERTIFICATE_SIZE, MAX_SUBJECT_ALT_NAMES, ParseCache

from .conftest import NOW, accepted, refused

CLIENT = Purpose.CLIENT_AUTH
CA_USAGE = {"key_cert_sign", "crl_sign"}


def test_the_figures() -> None:
    assert (path.MAX_BAG, path.MAX_STEPS, path.MAX_SIGNATURE_WORK) == (64, 512, 256)
    assert (path.HARD_MAX_DEPTH, MAX_CERTIFICATE_SIZE, MAX_SUBJECT_ALT_NAMES) == (16, 32768, 256)
    assert CACHE_ENTRIES == 256


def test_only_the_first_64_certificates_after_the_leaf_are_looked_at(
    ca: Issued, anchor: TrustAnchor
) -> None:
    middle = forge.issue_intermediate(ca)
    leaf = forge.issue_leaf(middle)
    junk = [b"junk %d" % i for i in range(path.MAX_BAG)]
    accepted(validate(anchor, (leaf.der, *junk[:63], middle.der), NOW, CLIENT))
    refused(validate(anchor, (leaf.der, *junk, middle.der), NOW, CLIENT), Check.no_path)


def test_512_candidate_issuers(ca: Issued, anchor: TrustAnchor) -> None:
    """64 CAs of one subject and one RSA key (so each verification costs a
    single unit), none leading to the anchor: each one tried puts all 64
    back in front of the search, and the candidate bound ends it."""
    key = cached_key("rsa2048", "bounds")
    name = "Look-alike"
    look_alikes = [
        forge.build_certificate(subject=name, private_key=key, ca=True, key_usage=CA_USAGE).der
        for _ in range(path.MAX_BAG)
    ]
    leaf = forge.build_certificate(
        subject="leaf",
        issuer=Issued(x509.load_der_x509_certificate(look_alikes[0]), key),
        **forge.role_profile("client"),
    )
    result = validate(anchor, (leaf.der, *look_alikes), NOW, CLIENT)
    assert isinstance(result, ValidationFailure)
    refused(result, Check.budget)
    assert f"more than {path.MAX_STEPS} candidate issuers" in result.reason


def test_max_depth_is_at_most_16(ca: Issued, anchor: TrustAnchor) -> None:
    deep = forge.long_chain(ca, path.HARD_MAX_DEPTH + 1)
    refused(validate(anchor, deep.chain, NOW, CLIENT, max_depth=64), Check.max_depth)
    within = forge.long_chain(ca, path.HARD_MAX_DEPTH)
    accepted(validate(anchor, within.chain, NOW, CLIENT, max_depth=64))


@pytest.mark.parametrize(("count", "ok"), [(256, True), (257, False)])
def test_256_subject_alt_names(ca: Issued, anchor: TrustAnchor, count: int, ok: bool) -> None:
    # The server profile adds one iPAddress (127.0.0.1) to these dNSNames.
    names = [f"h{i}.example" for i in range(count - 1)]
    leaf = forge.issue_leaf(ca, "server", name="server", san_dns=names)
    assert (
        len(leaf.certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value)
        == count
    )
    result = validate(anchor, (leaf.der,), NOW, Purpose.SERVER_AUTH)
    if ok:
        accepted(result)
    else:
        refused(result, Check.name)


def test_32_kib_per_certificate(ca: Issued, anchor: TrustAnchor) -> None:
    # The size bound is checked before any decoding: 32 KiB + 1 of anything.
    refused(validate(anchor, (bytes(MAX_CERTIFICATE_SIZE + 1),), NOW, CLIENT), Check.too_large)
    result = validate(anchor, (bytes(MAX_CERTIFICATE_SIZE),), NOW, CLIENT)
    assert isinstance(result, ValidationFailure) and result.check == Check.malformed


def test_parse_cache_holds_256(ca: Issued) -> None:
    cache = ParseCache()
    leaves = [forge.issue_leaf(ca).der for _ in range(CACHE_ENTRIES + 1)]
    for der in leaves:
        cache.parse(der)
    assert len(cache) == CACHE_ENTRIES
    first = cache.parse(leaves[-1])
    assert cache.parse(leaves[-1]) is first  # the same record, not parsed again
