"""The hostile catalogue: chains attackers send a bounty, each refused for
the right reason, next to the well-formed control that must pass."""

from __future__ import annotations

import time

import pytest
from cryptography.x509.oid import ExtendedKeyUsageOID

from bait_ca import forge
from bait_ca.issued import Issued
from pinata.tls.errors import AlertDescription
from pinata.x509 import Check, Purpose, TrustAnchor, validate
from pinata.x509.path import MAX_SIGNATURE_WORK
from pinata.x509.signature import verification_cost

from .conftest import NOW, accepted, refused

# Every forge builder, and the check that must refuse it. `junk_bag` is a
# good leaf followed by look-alike CAs: the anchor is tried first, so it is
# accepted (see the junk tests below for the refusal side).
EXPECTED: dict[str, Check | None] = {
    # The rogue CA is refused by the profile (no AKI) before its signature.
    "rogue_ca_same_subject": Check.extension,
    "anchor_key_under_new_name": Check.no_path,
    "self_signed_leaf": Check.no_path,
    "forged_signature_leaf": Check.signature,
    "corrupted_signature_leaf": Check.signature,
    "expired_leaf": Check.expired,
    "not_yet_valid_leaf": Check.not_yet_valid,
    "wrong_eku_leaf": Check.eku,
    "no_digital_signature_leaf": Check.key_usage,
    "ca_certificate_as_leaf": Check.basic_constraints,
    "unknown_critical_extension_leaf": Check.unknown_critical_extension,
    "duplicate_extension_leaf": Check.extension,
    "sha1_leaf": Check.signature_algorithm,
    "rsa1024_leaf": Check.public_key,
    "v1_with_extensions_leaf": Check.version,
    "mismatched_signature_algorithm_leaf": Check.signature_algorithm,
    "ca_false_intermediate_chain": Check.key_usage,
    # keyCertSign without cA=TRUE is refused by the profile (RFC 5280 §4.2.1.3).
    "no_basic_constraints_intermediate_chain": Check.key_usage,
    "no_key_cert_sign_intermediate_chain": Check.key_usage,
    "path_len_violation_chain": Check.path_length,
    "v1_intermediate_chain": Check.version,
    "long_chain": Check.max_depth,
    "junk_bag": None,
}


def test_every_builder_has_an_expectation() -> None:
    assert set(EXPECTED) == set(forge.HOSTILE)


def test_control_is_accepted(ca: Issued, anchor: TrustAnchor) -> None:
    good = forge.good_chain(ca)
    result = accepted(validate(anchor, good.chain, NOW, Purpose.CLIENT_AUTH))
    assert result.chain == (good.leaf, ca.der)


@pytest.mark.parametrize("name", sorted(forge.HOSTILE))
def test_hostile_chain_is_refused(name: str, ca: Issued, anchor: TrustAnchor) -> None:
    forged = forge.HOSTILE[name](ca)
    result = validate(anchor, forged.chain, NOW, Purpose.CLIENT_AUTH)
    expected = EXPECTED[name]
    if expected is None:
        accepted(result)
    else:
        refused(result, expected)


def test_rogue_ca_with_key_identifiers_fails_on_signature(ca: Issued, anchor: TrustAnchor) -> None:
    """Same subject as the anchor, a well-formed profile: only the signature tells."""
    key = forge.generate_key("p256")
    rogue = forge.build_certificate(
        subject=ca.subject, issuer=ca, private_key=key, ca=True, key_usage={"key_cert_sign"}
    )
    impostor = forge.build_certificate(
        subject=ca.subject, private_key=key, ca=True, key_usage={"key_cert_sign"}
    )
    leaf = forge.issue_leaf(impostor)
    result = validate(anchor, (leaf.der, impostor.der), NOW, Purpose.CLIENT_AUTH)
    refused(result, Check.signature)
    # The same key, properly certified by the anchor, is a real intermediate.
    accepted(validate(anchor, (leaf.der, rogue.der), NOW, Purpose.CLIENT_AUTH))


def test_intermediate_without_basic_constraints(ca: Issued, anchor: TrustAnchor) -> None:
    middle = forge.issue_intermediate(ca, "bare", ca=None, key_usage=None)
    leaf = forge.issue_leaf(middle)
    refused(
        validate(anchor, (leaf.der, middle.der), NOW, Purpose.CLIENT_AUTH), Check.basic_constraints
    )


def test_ca_false_intermediate_without_key_cert_sign(ca: Issued, anchor: TrustAnchor) -> None:
    """The forge's CA:FALSE intermediate keeps keyCertSign, which the profile
    refuses first; without it, basicConstraints is what stops it."""
    middle = forge.issue_intermediate(ca, "plain CA:FALSE", ca=False, key_usage=None)
    leaf = forge.issue_leaf(middle)
    result = validate(anchor, (leaf.der, middle.der), NOW, Purpose.CLIENT_AUTH)
    refused(result, Check.basic_constraints)


def test_leaf_that_is_the_anchor(ca: Issued, anchor: TrustAnchor) -> None:
    result = refused(validate(anchor, (ca.der,), NOW, Purpose.CLIENT_AUTH), Check.basic_constraints)
    assert result.certificate_index == 0


def test_server_purpose_refuses_client_leaf(ca: Issued, anchor: TrustAnchor) -> None:
    good = forge.good_chain(ca, "client")
    refused(validate(anchor, good.chain, NOW, Purpose.SERVER_AUTH), Check.eku)


def test_chain_of_100_is_refused_quickly(ca: Issued, anchor: TrustAnchor) -> None:
    forged = forge.long_chain(ca, 100)
    start = time.perf_counter()
    result = validate(anchor, forged.chain, NOW, Purpose.CLIENT_AUTH)
    elapsed = time.perf_counter() - start
    refused(result, Check.max_depth)
    assert elapsed < 2.0  # a generous bound: a hang here is the bug


def test_chain_within_the_depth_is_accepted(ca: Issued, anchor: TrustAnchor) -> None:
    forged = forge.long_chain(ca, 8)
    accepted(validate(anchor, forged.chain, NOW, Purpose.CLIENT_AUTH))
    refused(validate(anchor, forged.chain, NOW, Purpose.CLIENT_AUTH, max_depth=7), Check.max_depth)


def test_1000_junk_certificates_after_a_good_leaf(ca: Issued, anchor: TrustAnchor) -> None:
    """The anchor is tried first, so a good leaf is found at once."""
    forged = forge.junk_bag(ca, 1000)
    accepted(validate(anchor, forged.chain, NOW, Purpose.CLIENT_AUTH))


def test_1000_junk_certificates_cannot_make_it_spin(ca: Issued, anchor: TrustAnchor) -> None:
    """A leaf under a rogue anchor look-alike, then 1000 look-alike CAs that
    carry key identifiers (so they pass the profile and reach signature
    verification): the signature budget ends the search."""
    rogue = forge.build_certificate(
        subject=ca.subject, key_label="rogue", ca=True, key_usage={"key_cert_sign"}
    )
    leaf = forge.issue_leaf(rogue)
    key = forge.generate_key("p256")
    junk = [
        forge.build_certificate(
            subject=ca.subject, issuer=ca, private_key=key, ca=True, key_usage={"key_cert_sign"}
        ).der
        for _ in range(MAX_SIGNATURE_WORK // verification_cost(key.public_key()) + 8)
    ]
    chain = (leaf.der, *junk, *(junk * 30))
    start = time.perf_counter()
    result = validate(anchor, chain, NOW, Purpose.CLIENT_AUTH)
    elapsed = time.perf_counter() - start
    assert result.alert in (AlertDescription.unknown_ca, AlertDescription.bad_certificate)
    refused(result, Check.budget)
    assert elapsed < 2.0


def test_wrong_eku_for_server(ca: Issued, anchor: TrustAnchor) -> None:
    forged = forge.wrong_eku_leaf(ca, "server")
    refused(validate(anchor, forged.chain, NOW, Purpose.SERVER_AUTH), Check.eku)


def test_any_extended_key_usage_does_not_count(ca: Issued, anchor: TrustAnchor) -> None:
    leaf = forge.issue_leaf(ca, extended_key_usage=[ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE])
    refused(validate(anchor, (leaf.der,), NOW, Purpose.CLIENT_AUTH), Check.eku)


def test_md5_is_refused() -> None:
    rsa_ca = forge.make_anchor("RSA anchor", key_type="rsa2048")
    forged = forge.md5_leaf(rsa_ca)
    rsa_anchor = TrustAnchor.from_der(rsa_ca.der)
    refused(validate(rsa_anchor, forged.chain, NOW, Purpose.CLIENT_AUTH), Check.signature_algorithm)
