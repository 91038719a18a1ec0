"""One test (at least) per check of the issue, each able to fail without it."""

from __future__ import annotations

import ipaddress
from datetime import timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, ExtensionOID, NameOID

from bait_ca import forge
from bait_ca.issued import Issued
from pinata.tls.config import PeerRejected, VerifiedPeer
from pinata.tls.errors import AlertDescription
from pinata.x509 import (
    Check,
    InvalidTrustAnchor,
    Purpose,
    TrustAnchor,
    ValidationFailure,
    authenticator,
    validate,
)

from .conftest import NOW, accepted, refused

CLIENT = Purpose.CLIENT_AUTH
SERVER = Purpose.SERVER_AUTH


def _chain(*certificates: Issued) -> tuple[bytes, ...]:
    return tuple(c.der for c in certificates)


# -- path building -----------------------------------------------------------


def test_issuer_names_compare_case_and_space_insensitively(ca: Issued, anchor: TrustAnchor) -> None:
    middle = forge.issue_intermediate(ca, "Forge Intermediate")
    spelled = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "  forge   INTERMEDIATE ")])
    leaf = forge.issue_leaf(middle, issuer_name=spelled)
    accepted(validate(anchor, _chain(leaf, middle), NOW, CLIENT))
    other = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Forge Intermediat")])
    stray = forge.issue_leaf(middle, issuer_name=other)
    refused(validate(anchor, _chain(stray, middle), NOW, CLIENT), Check.no_path)


def test_key_identifiers_are_hints_only(ca: Issued, anchor: TrustAnchor) -> None:
    """An intermediate whose SKI does not match the leaf's AKI still issues it."""
    wrong_ski = x509.Extension(
        ExtensionOID.SUBJECT_KEY_IDENTIFIER, False, x509.SubjectKeyIdentifier(b"\x01" * 20)
    )
    aki = x509.Extension(
        ExtensionOID.AUTHORITY_KEY_IDENTIFIER,
        False,
        x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.public_key),  # type: ignore[arg-type]
    )
    middle = forge.issue_intermediate(
        ca, "odd SKI", key_identifiers=False, extra_extensions=[wrong_ski, aki]
    )
    leaf = forge.issue_leaf(middle)
    accepted(validate(anchor, _chain(leaf, middle), NOW, CLIENT))


def test_every_candidate_is_tried(ca: Issued, anchor: TrustAnchor) -> None:
    """Two intermediates, same name and key: the first (expired) fails, the second serves."""
    key = forge.generate_key("p256")
    old = forge.issue_intermediate(ca, "twin", private_key=key, not_after=NOW - timedelta(days=1))
    new = forge.issue_intermediate(ca, "twin", private_key=key)
    leaf = forge.issue_leaf(new)
    accepted(validate(anchor, _chain(leaf, old, new), NOW, CLIENT))
    refused(validate(anchor, _chain(leaf, old), NOW, CLIENT), Check.expired)


def test_cycles_end(ca: Issued, anchor: TrustAnchor) -> None:
    """A and B cross-certify each other, neither reaches the anchor."""
    stranger = forge.make_anchor("stranger")
    key_a, key_b = forge.generate_key("p256"), forge.generate_key("p256")
    a = forge.issue_intermediate(stranger, "A", private_key=key_a)
    b = forge.issue_intermediate(a, "B", private_key=key_b)
    a_by_b = forge.issue_intermediate(b, "A", private_key=key_a)
    leaf = forge.issue_leaf(b)
    result = validate(anchor, _chain(leaf, a, b, a_by_b), NOW, CLIENT)
    assert isinstance(result, ValidationFailure)
    assert result.alert in (AlertDescription.unknown_ca, AlertDescription.bad_certificate)


def test_anchor_in_the_bag_and_duplicates(ca: Issued, anchor: TrustAnchor) -> None:
    middle = forge.issue_intermediate(ca)
    leaf = forge.issue_leaf(middle)
    chain = (leaf.der, ca.der, middle.der, middle.der, b"junk", ca.der)
    result = accepted(validate(anchor, chain, NOW, CLIENT))
    assert result.chain == (leaf.der, middle.der, ca.der)
    assert len(result.subjects) == 3


def test_empty_list() -> None:
    anchor = TrustAnchor.from_der(forge.make_anchor().der)
    result = refused(validate(anchor, (), NOW, CLIENT), Check.empty)
    assert result.alert == AlertDescription.certificate_required


# -- signatures and keys -----------------------------------------------------


@pytest.mark.parametrize(
    ("key_type", "signature_hash", "rsa_pss"),
    [
        ("p256", "sha256", False),
        ("p256", "sha384", False),
        ("p384", "sha512", False),
        ("p521", "sha512", False),
        ("rsa2048", "sha256", False),
        ("rsa2048", "sha384", False),
        ("rsa2048", "sha512", False),
        ("rsa2048", "sha256", True),
        ("rsa2048", "sha512", True),
        ("ed25519", "default", False),
    ],
)
def test_accepted_signature_algorithms(key_type: str, signature_hash: str, rsa_pss: bool) -> None:
    if key_type == "p521":
        issuer = forge.make_anchor(
            "P-521 anchor", private_key=ec.generate_private_key(ec.SECP521R1())
        )
    else:
        issuer = forge.make_anchor(f"{key_type} anchor", key_type=key_type)  # type: ignore[arg-type]
    leaf = forge.issue_leaf(issuer, signature_hash=signature_hash, rsa_pss=rsa_pss)
    anchor = TrustAnchor.from_der(issuer.der)
    accepted(validate(anchor, (leaf.der,), NOW, CLIENT))
    # The same leaf with one bit of its signature flipped is refused.
    broken = bytearray(leaf.der)
    broken[-3] ^= 0x10
    result = validate(anchor, (bytes(broken),), NOW, CLIENT)
    assert isinstance(result, ValidationFailure)


def test_rsa_pss_key_leaf_is_flagged() -> None:
    issuer = forge.make_anchor("PSS anchor", key_type="rsa2048", rsa_pss=True)
    leaf = forge.issue_leaf(issuer, key_type="rsa2048", rsa_pss=True)
    anchor = TrustAnchor.from_der(issuer.der)
    result = accepted(validate(anchor, (leaf.der,), NOW, CLIENT))
    assert result.leaf_public_key is not None


def test_p192_key_is_refused(ca: Issued, anchor: TrustAnchor) -> None:
    try:
        key = ec.generate_private_key(ec.SECP192R1())
    except Exception:  # pragma: no cover - OpenSSL without P-192
        pytest.skip("P-192 unavailable")
    leaf = forge.issue_leaf(ca, public_key=key.public_key())
    refused(validate(anchor, (leaf.der,), NOW, CLIENT), Check.public_key)


def test_weak_anchor_is_refused_at_start_up() -> None:
    weak = forge.make_anchor("weak", key_type="rsa1024")
    with pytest.raises(InvalidTrustAnchor) as raised:
        TrustAnchor.from_der(weak.der)
    assert raised.value.check == Check.public_key


# -- validity ----------------------------------------------------------------


def test_validity_bounds_are_inclusive(ca: Issued, anchor: TrustAnchor) -> None:
    start, end = NOW - timedelta(days=1), NOW + timedelta(days=1)
    leaf = forge.issue_leaf(ca, not_before=start, not_after=end)
    chain = (leaf.der,)
    accepted(validate(anchor, chain, start, CLIENT))
    accepted(validate(anchor, chain, end, CLIENT))
    accepted(validate(anchor, chain, end + timedelta(milliseconds=999), CLIENT))
    refused(validate(anchor, chain, start - timedelta(seconds=1), CLIENT), Check.not_yet_valid)
    result = refused(validate(anchor, chain, end + timedelta(seconds=1), CLIENT), Check.expired)
    assert result.alert == AlertDescription.certificate_expired


def test_expired_intermediate_and_anchor() -> None:
    root = forge.make_anchor("short-lived root", not_after=NOW - timedelta(days=1))
    anchor = TrustAnchor.from_der(root.der)
    leaf = forge.issue_leaf(root)
    result = refused(validate(anchor, (leaf.der,), NOW, CLIENT), Check.expired)
    assert result.certificate_index is None
    fresh = forge.make_anchor()
    middle = forge.issue_intermediate(fresh, not_before=NOW + timedelta(days=1))
    leaf = forge.issue_leaf(middle)
    result = refused(
        validate(TrustAnchor.from_der(fresh.der), _chain(leaf, middle), NOW, CLIENT),
        Check.not_yet_valid,
    )
    assert result.certificate_index == 1


# -- profile -----------------------------------------------------------------


def test_unknown_critical_extension_in_intermediate_and_anchor(
    ca: Issued, anchor: TrustAnchor
) -> None:
    middle = forge.issue_intermediate(ca, unknown_critical_extension=True)
    leaf = forge.issue_leaf(middle)
    refused(validate(anchor, _chain(leaf, middle), NOW, CLIENT), Check.unknown_critical_extension)
    odd = forge.build_certificate(
        subject="odd root", ca=True, key_usage={"key_cert_sign"}, unknown_critical_extension=True
    )
    with pytest.raises(InvalidTrustAnchor):
        TrustAnchor.from_der(odd.der)


def test_unparseable_leaf(anchor: TrustAnchor) -> None:
    for junk in (b"", b"\x30\x00", b"\x30\x82\xff\xff" + b"\x00" * 10, bytes(range(256))):
        result = validate(anchor, (junk,), NOW, CLIENT)
        assert isinstance(result, ValidationFailure)
        assert result.alert == AlertDescription.bad_certificate
        assert result.certificate_index == 0


def test_oversized_certificate(ca: Issued, anchor: TrustAnchor) -> None:
    names = [f"host{i}.example.com" for i in range(300)]
    leaf = forge.issue_leaf(ca, "server", san_dns=names)
    refused(validate(anchor, (leaf.der,), NOW, SERVER), Check.name)


# -- issuers -----------------------------------------------------------------


def test_path_length_ignores_self_issued(ca: Issued, anchor: TrustAnchor) -> None:
    key = forge.generate_key("p256")
    first = forge.issue_intermediate(ca, "ICA", private_key=key, path_length=1)
    rekey = forge.generate_key("p256")
    renewed = forge.issue_intermediate(first, "ICA", private_key=rekey, path_length=1)
    last = forge.issue_intermediate(renewed, "ICA2", path_length=0)
    leaf = forge.issue_leaf(last)
    accepted(validate(anchor, _chain(leaf, last, renewed, first), NOW, CLIENT))
    tight = forge.issue_intermediate(ca, "ICA", private_key=key, path_length=0)
    refused(validate(anchor, _chain(leaf, last, renewed, tight), NOW, CLIENT), Check.path_length)


def test_anchor_path_length_is_honoured() -> None:
    root = forge.make_anchor("pathLen 0 root", path_length=0)
    anchor = TrustAnchor.from_der(root.der)
    middle = forge.issue_intermediate(root)
    leaf = forge.issue_leaf(middle)
    accepted(validate(anchor, (forge.issue_leaf(root).der,), NOW, CLIENT))
    refused(validate(anchor, _chain(leaf, middle), NOW, CLIENT), Check.path_length)


def test_intermediate_eku_must_allow_the_purpose(ca: Issued, anchor: TrustAnchor) -> None:
    middle = forge.issue_intermediate(ca, extended_key_usage=[ExtendedKeyUsageOID.SERVER_AUTH])
    leaf = forge.issue_leaf(middle)
    result = refused(validate(anchor, _chain(leaf, middle), NOW, CLIENT), Check.eku)
    assert result.certificate_index == 1
    both = forge.issue_intermediate(
        ca, extended_key_usage=[ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
    )
    accepted(validate(anchor, _chain(forge.issue_leaf(both), both), NOW, CLIENT))


def test_leaf_without_key_usage_is_accepted_without_eku_refused(
    ca: Issued, anchor: TrustAnchor
) -> None:
    # keyUsage is optional in a leaf (RFC 5280 §4.2.1.3); extKeyUsage is not
    # (CA/B BR §7.1.2.7.6).
    leaf = forge.issue_leaf(ca, key_usage=None)
    accepted(validate(anchor, (leaf.der,), NOW, CLIENT))
    leaf = forge.issue_leaf(ca, key_usage=None, extended_key_usage=None)
    refused(validate(anchor, (leaf.der,), NOW, CLIENT), Check.eku)


# -- name constraints --------------------------------------------------------


def _constrained(
    ca: Issued, permitted: list[x509.GeneralName] | None, excluded: list[x509.GeneralName] | None
) -> Issued:
    return forge.issue_intermediate(
        ca, "constrained", name_constraints=x509.NameConstraints(permitted, excluded)
    )


@pytest.mark.parametrize(
    ("permitted", "excluded", "san", "ok"),
    [
        ([x509.DNSName("example.com")], None, ["a.example.com"], True),
        ([x509.DNSName("example.com")], None, ["example.com"], True),
        ([x509.DNSName("example.com")], None, ["badexample.com"], False),
        ([x509.DNSName("example.com")], None, ["*.example.com"], True),
        ([x509.DNSName("a.example.com")], None, ["*.example.com"], False),
        (None, [x509.DNSName("bad.example.com")], ["*.example.com"], False),
        (None, [x509.DNSName("x.bad.example.com")], ["*.example.com"], True),
        (None, [x509.DNSName("example.com")], ["a.example.com"], False),
        (
            [x509.DNSName("example.com")],
            [x509.DNSName("no.example.com")],
            ["no.example.com"],
            False,
        ),
        ([x509.IPAddress(ipaddress.ip_network("10.0.0.0/8"))], None, ["10.1.2.3"], True),
        ([x509.IPAddress(ipaddress.ip_network("10.0.0.0/8"))], None, ["11.1.2.3"], False),
        (None, [x509.IPAddress(ipaddress.ip_network("::1/128"))], ["::1"], False),
        ([x509.IPAddress(ipaddress.ip_network("10.0.0.0/8"))], None, ["::1"], False),
        ([x509.IPAddress(ipaddress.ip_network("10.0.0.0/8"))], None, ["a.example.com"], True),
    ],
)
def test_name_constraints_on_san(
    ca: Issued,
    anchor: TrustAnchor,
    permitted: list[x509.GeneralName] | None,
    excluded: list[x509.GeneralName] | None,
    san: list[str],
    ok: bool,
) -> None:
    middle = _constrained(ca, permitted, excluded)
    ips, dns = [], []
    for name in san:
        try:
            ips.append(ipaddress.ip_address(name))
        except ValueError:
            dns.append(name)
    leaf = forge.issue_leaf(middle, "server", san_dns=dns, san_ip=ips)
    result = validate(anchor, _chain(leaf, middle), NOW, SERVER)
    if ok:
        accepted(result)
    else:
        refused(result, Check.name_constraints)


def test_name_constraints_on_email_and_directory(ca: Issued, anchor: TrustAnchor) -> None:
    middle = _constrained(
        ca,
        [
            x509.RFC822Name("example.com"),
            x509.DirectoryName(
                x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Pinata")])
            ),
        ],
        None,
    )

    def leaf_with(email: str, organization: str) -> tuple[bytes, ...]:
        subject = x509.Name(
            [
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization),
                x509.NameAttribute(NameOID.COMMON_NAME, "someone"),
            ]
        )
        san = x509.Extension(
            ExtensionOID.SUBJECT_ALTERNATIVE_NAME,
            False,
            x509.SubjectAlternativeName([x509.RFC822Name(email)]),
        )
        leaf = forge.issue_leaf(middle, name=subject, extra_extensions=[san])
        return _chain(leaf, middle)

    accepted(validate(anchor, leaf_with("me@example.com", "Pinata"), NOW, CLIENT))
    refused(
        validate(anchor, leaf_with("me@example.org", "Pinata"), NOW, CLIENT), Check.name_constraints
    )
    refused(
        validate(anchor, leaf_with("me@example.com", "Other"), NOW, CLIENT), Check.name_constraints
    )


def test_unsupported_constraint_form_is_refused_when_used(ca: Issued, anchor: TrustAnchor) -> None:
    middle = _constrained(ca, None, [x509.UniformResourceIdentifier("https://example.com")])
    plain = forge.issue_leaf(middle)
    accepted(validate(anchor, _chain(plain, middle), NOW, CLIENT))
    san = x509.Extension(
        ExtensionOID.SUBJECT_ALTERNATIVE_NAME,
        False,
        x509.SubjectAlternativeName([x509.UniformResourceIdentifier("https://example.org")]),
    )
    uri_leaf = forge.issue_leaf(middle, extra_extensions=[san])
    refused(validate(anchor, _chain(uri_leaf, middle), NOW, CLIENT), Check.name_constraints)


def test_anchor_name_constraints_bind_the_path() -> None:
    root = forge.build_certificate(
        subject="constrained root",
        ca=True,
        key_usage={"key_cert_sign"},
        name_constraints=x509.NameConstraints([x509.DNSName("example.com")], None),
    )
    anchor = TrustAnchor.from_der(root.der)
    inside = forge.issue_leaf(root, "server", san_dns=["a.example.com"], san_ip=[])
    outside = forge.issue_leaf(root, "server")  # localhost
    accepted(validate(anchor, (inside.der,), NOW, SERVER))
    refused(validate(anchor, (outside.der,), NOW, SERVER), Check.name_constraints)


# -- peer names --------------------------------------------------------------


@pytest.mark.parametrize(
    ("sans", "peer", "ok"),
    [
        (["example.com"], "example.com", True),
        (["example.com"], "EXAMPLE.com.", True),
        (["example.com"], "www.example.com", False),
        (["*.example.com"], "www.example.com", True),
        (["*.example.com"], "example.com", False),
        (["*.example.com"], "a.b.example.com", False),
        (["*.com"], "example.com", False),
        (["localhost"], "127.0.0.1", False),
        (["127.0.0.1"], "127.0.0.1", True),
        (["127.0.0.1"], "127.0.0.2", False),
        (["::1"], "::1", True),
    ],
)
def test_peer_name(ca: Issued, anchor: TrustAnchor, sans: list[str], peer: str, ok: bool) -> None:
    ips, dns = [], []
    for name in sans:
        try:
            ips.append(ipaddress.ip_address(name))
        except ValueError:
            dns.append(name)
    leaf = forge.issue_leaf(ca, "server", name="server", san_dns=dns, san_ip=ips)
    result = validate(anchor, (leaf.der,), NOW, SERVER, peer_name=peer)
    if ok:
        accepted(result)
    else:
        refused(result, Check.peer_name)


def test_partial_label_wildcard_is_refused(ca: Issued, anchor: TrustAnchor) -> None:
    leaf = forge.issue_leaf(ca, "server", name="server", san_dns=["w*.example.com"])
    refused(validate(anchor, (leaf.der,), NOW, SERVER, peer_name="www.example.com"), Check.name)


# -- the engine's hook -------------------------------------------------------


def test_authenticator(ca: Issued, anchor: TrustAnchor) -> None:
    authenticate = authenticator(anchor, CLIENT)
    good = forge.good_chain(ca)
    verified = authenticate(good.chain, NOW)
    assert isinstance(verified, VerifiedPeer)
    assert verified.chain == (good.leaf, ca.der)
    assert verified.subjects[0] == "CN=forged client"
    rejected = authenticate(forge.expired_leaf(ca).chain, NOW)
    assert isinstance(rejected, PeerRejected)
    assert rejected.alert == AlertDescription.certificate_expired
    assert "expired" in rejected.reason


# -- the anchor and the bounds -------------------------------------------------


def test_anchor_from_pem(ca: Issued) -> None:
    anchor = TrustAnchor.from_pem(ca.pem)
    assert anchor.der == ca.der
    assert anchor.subject_der == ca.subject.public_bytes()
    with pytest.raises(InvalidTrustAnchor):
        TrustAnchor.from_pem(b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
    with pytest.raises(InvalidTrustAnchor):
        TrustAnchor.from_der(forge.issue_leaf(ca).der)  # not a CA


def test_max_depth_zero_allows_only_the_anchor_as_issuer(ca: Issued, anchor: TrustAnchor) -> None:
    accepted(validate(anchor, forge.good_chain(ca).chain, NOW, CLIENT, max_depth=0))
    middle = forge.issue_intermediate(ca)
    leaf = forge.issue_leaf(middle)
    refused(validate(anchor, _chain(leaf, middle), NOW, CLIENT, max_depth=0), Check.max_depth)


def test_signature_budget_is_per_validation(ca: Issued, anchor: TrustAnchor) -> None:
    from pinata.x509 import path
    from pinata.x509.parse import parse_certificate

    rogue = forge.build_certificate(
        subject=ca.subject, key_label="r", ca=True, key_usage={"key_cert_sign"}
    )
    leaf = forge.issue_leaf(rogue)
    key = forge.generate_key("p256")
    junk = tuple(
        forge.build_certificate(
            subject=ca.subject, issuer=ca, private_key=key, ca=True, key_usage={"key_cert_sign"}
        ).der
        for _ in range(10)
    )
    search = path.PathSearch(
        anchor=anchor.certificate,
        cache=anchor.cache,
        bag=path.bag_of((leaf.der, *junk), anchor.der),
        now=NOW,
        purpose=CLIENT,
        max_depth=8,
    )
    result = search.find(parse_certificate(leaf.der))
    assert isinstance(result, ValidationFailure)
    # Each (child, issuer) pair is verified once: the leaf against the anchor
    # and the ten look-alikes, then each look-alike against the anchor.
    # P-256 verifications cost 4 units each.
    assert search.work <= 4 * (1 + 10 + 10) <= path.MAX_SIGNATURE_WORK
