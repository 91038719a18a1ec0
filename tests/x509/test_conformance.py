"""The rules of pinata/x509/CONFORMANCE.md that x509-limbo's public cases do
not all reach: one certificate built per rule, refused for that rule's check,
beside a near twin that is accepted (so each test can fail both ways)."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import (
    AuthorityInformationAccessOID,
    ExtendedKeyUsageOID,
    SubjectInformationAccessOID,
)

from bait_ca import forge
from bait_ca.issued import Issued
from fuzz.harnesses import chains
from pinata.x509 import Check, InvalidTrustAnchor, Purpose, TrustAnchor, path, validate
from pinata.x509.signature import verification_cost

from .conftest import NOW, accepted, refused

SERVER = Purpose.SERVER_AUTH
V4 = ipaddress.ip_address("192.168.1.1")
V6 = ipaddress.ip_address("2001:db8::1:0:0:1")


def _server(ca: Issued, cn: str, dns: tuple[str, ...] = (), ip: tuple[object, ...] = ()) -> bytes:
    leaf = forge.issue_leaf(ca, "server", name=cn, san_dns=dns, san_ip=ip)
    return leaf.der


# -- commonName: CA/B BR §7.1.4.3, one rule for DNS, IP and IDN ----------------


@pytest.mark.parametrize(
    ("cn", "dns", "ip"),
    [
        ("0xC0A80101", (), (V4,)),  # IPv4 in hexadecimal
        ("192.168.001.001", (), (V4,)),  # IPv4 with leading zeros
        ("3232235777", (), (V4,)),  # IPv4 as one number
        ("2001:DB8::1:0:0:1", (), (V6,)),  # IPv6 in upper case
        ("2001:db8:0:0:1:0:0:1", (), (V6,)),  # IPv6 not RFC 5952-compressed
        ("test-測試.com", ("xn--test--wg5h0h.com",), ()),  # U-label for the A-label
        ("xn--nxasmq6b.com", ("xn--n3h.com",), ()),  # another A-label
        ("notinsan.example.com", ("valid.example.com", "another.example.com"), ()),
        ("Example.COM", ("example.com",), ()),  # not character for character
        ("127.0.0.1", ("localhost",), ()),  # an address no SAN lists
    ],
)
def test_host_common_name_must_be_a_canonical_copy_of_a_san(
    ca: Issued, anchor: TrustAnchor, cn: str, dns: tuple[str, ...], ip: tuple[object, ...]
) -> None:
    result = validate(anchor, (_server(ca, cn, dns, ip),), NOW, SERVER)
    refused(result, Check.common_name)


@pytest.mark.parametrize(
    ("cn", "dns", "ip"),
    [
        ("192.168.1.1", (), (V4,)),
        ("2001:db8::1:0:0:1", (), (V6,)),
        ("xn--n3h.com", ("xn--n3h.com",), ()),
        ("*.example.com", ("*.example.com",), ()),
        ("BTC Pinata server", ("localhost",), ()),  # a label, not a host
        ("EE", ("localhost",), ()),  # one label is not a domain name
    ],
)
def test_canonical_copy_or_label_is_accepted(
    ca: Issued, anchor: TrustAnchor, cn: str, dns: tuple[str, ...], ip: tuple[object, ...]
) -> None:
    accepted(validate(anchor, (_server(ca, cn, dns, ip),), NOW, SERVER))


def test_common_name_rule_is_for_server_certificates(ca: Issued, anchor: TrustAnchor) -> None:
    leaf = forge.issue_leaf(ca, "client", name="notinsan.example.com", san_dns=("a.example",))
    accepted(validate(anchor, (leaf.der,), NOW, Purpose.CLIENT_AUTH))


# -- key identifiers, criticality, EKU: RFC 5280 §4.2 and CA/B BR §7.1.2 -------

CA_USAGE = {"key_cert_sign", "crl_sign"}
_URI = x509.UniformResourceIdentifier("http://ca.example/")


def _extension(value: x509.ExtensionType, *, critical: bool) -> x509.Extension[x509.ExtensionType]:
    return x509.Extension(value.oid, critical, value)


def _anchor_refused(check: Check, **options: Any) -> None:
    options = {"ca": True, "key_usage": CA_USAGE, **options}
    root = forge.build_certificate(subject="conformance root", **options)
    with pytest.raises(InvalidTrustAnchor) as raised:
        TrustAnchor.from_der(root.der)
    assert raised.value.check == check, raised.value.reason
    # The same anchor without the defect is accepted, and issues a good leaf.
    clean = forge.build_certificate(subject="conformance root", ca=True, key_usage=CA_USAGE)
    leaf = forge.issue_leaf(clean)
    accepted(validate(TrustAnchor.from_der(clean.der), (leaf.der,), NOW, Purpose.CLIENT_AUTH))


def test_anchor_without_subject_key_identifier() -> None:
    _anchor_refused(Check.extension, key_identifiers=False)  # rfc5280::ski::root-missing-ski


def test_anchor_with_extended_key_usage() -> None:
    _anchor_refused(Check.eku, extended_key_usage=[ExtendedKeyUsageOID.SERVER_AUTH])


def test_anchor_with_non_critical_basic_constraints() -> None:
    bc = _extension(x509.BasicConstraints(ca=True, path_length=None), critical=False)
    _anchor_refused(Check.basic_constraints, ca=None, extra_extensions=[bc])


def test_anchor_with_critical_authority_key_identifier() -> None:
    key = forge.generate_key("p256")
    aki = x509.AuthorityKeyIdentifier.from_issuer_public_key(key.public_key())
    _anchor_refused(
        Check.extension,
        private_key=key,
        key_identifiers=False,
        extra_extensions=[
            _extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False),
            _extension(aki, critical=True),
        ],
    )


def test_leaf_without_authority_key_identifier(ca: Issued, anchor: TrustAnchor) -> None:
    bare = forge.issue_leaf(ca, key_identifiers=False)
    refused(validate(anchor, (bare.der,), NOW, Purpose.CLIENT_AUTH), Check.extension)
    accepted(validate(anchor, (forge.issue_leaf(ca).der,), NOW, Purpose.CLIENT_AUTH))


@pytest.mark.parametrize(
    ("extension", "check"),
    [
        (
            x509.AuthorityInformationAccess(
                [x509.AccessDescription(AuthorityInformationAccessOID.CA_ISSUERS, _URI)]
            ),
            Check.extension,
        ),
        (
            x509.SubjectInformationAccess(
                [x509.AccessDescription(SubjectInformationAccessOID.CA_REPOSITORY, _URI)]
            ),
            Check.extension,
        ),
        (
            x509.FreshestCRL([x509.DistributionPoint([_URI], None, None, None)]),
            Check.extension,
        ),
    ],
)
def test_extensions_that_must_not_be_critical(
    ca: Issued, anchor: TrustAnchor, extension: x509.ExtensionType, check: Check
) -> None:
    for critical, ok in ((True, False), (False, True)):
        leaf = forge.issue_leaf(ca, extra_extensions=[_extension(extension, critical=critical)])
        result = validate(anchor, (leaf.der,), NOW, Purpose.CLIENT_AUTH)
        if ok:
            accepted(result)
        else:
            refused(result, check)


def test_inhibit_any_policy_must_be_critical(ca: Issued, anchor: TrustAnchor) -> None:
    for critical, ok in ((False, False), (True, True)):
        inhibit = _extension(x509.InhibitAnyPolicy(0), critical=critical)
        middle = forge.issue_intermediate(ca, "inhibiting", extra_extensions=[inhibit])
        chain = (forge.issue_leaf(middle).der, middle.der)
        result = validate(anchor, chain, NOW, Purpose.CLIENT_AUTH)
        if ok:
            accepted(result)
        else:
            refused(result, Check.extension)


def test_empty_subject_needs_a_critical_subject_alt_name(ca: Issued, anchor: TrustAnchor) -> None:
    names = x509.SubjectAlternativeName([x509.DNSName("localhost")])
    profile = {"ca": False, "key_usage": {"digital_signature"}}
    profile["extended_key_usage"] = [ExtendedKeyUsageOID.SERVER_AUTH]
    for critical, ok in ((False, False), (True, True)):
        leaf = forge.build_certificate(
            subject=x509.Name([]),
            issuer=ca,
            extra_extensions=[_extension(names, critical=critical)],
            **profile,
        )
        result = validate(anchor, (leaf.der,), NOW, SERVER, "localhost")
        if ok:
            accepted(result)
        else:
            refused(result, Check.extension)


@pytest.mark.parametrize(
    ("purposes", "ok"),
    [
        ([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH], True),
        ([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CODE_SIGNING], False),
        ([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.EMAIL_PROTECTION], False),
        ([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.TIME_STAMPING], False),
        ([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.OCSP_SIGNING], False),
        (
            [ExtendedKeyUsageOID.SERVER_AUTH, x509.ObjectIdentifier("1.3.6.1.4.1.11129.2.4.4")],
            False,
        ),
        ([x509.ObjectIdentifier("1.3.6.1.4.1.11129.2.4.4")], False),
        ([ExtendedKeyUsageOID.CLIENT_AUTH], False),
    ],
)
def test_leaf_purposes(
    ca: Issued, anchor: TrustAnchor, purposes: list[x509.ObjectIdentifier], ok: bool
) -> None:
    leaf = forge.issue_leaf(ca, "server", name="localhost", extended_key_usage=purposes)
    result = validate(anchor, (leaf.der,), NOW, SERVER, "localhost")
    if ok:
        accepted(result)
    else:
        refused(result, Check.eku)


# -- keys: issue 11's bounds ----------------------------------------------------


def _certify(ca: Issued, public_key: Any) -> bytes:
    return forge.issue_leaf(ca, public_key=public_key).der


def test_rsa_exponent_is_65537(ca: Issued, anchor: TrustAnchor) -> None:
    small = rsa.generate_private_key(3, 2048).public_key()
    refused(validate(anchor, (_certify(ca, small),), NOW, Purpose.CLIENT_AUTH), Check.public_key)
    usual = rsa.generate_private_key(65537, 2048).public_key()
    accepted(validate(anchor, (_certify(ca, usual),), NOW, Purpose.CLIENT_AUTH))


def test_rsa_modulus_above_8192_bits_is_refused(ca: Issued, anchor: TrustAnchor) -> None:
    # A public key needs no private half: an odd 8200-bit modulus will do.
    big = rsa.RSAPublicNumbers(65537, (1 << 8199) | 1).public_key()
    refused(validate(anchor, (_certify(ca, big),), NOW, Purpose.CLIENT_AUTH), Check.public_key)
    top = rsa.RSAPublicNumbers(65537, (1 << 8191) | 1).public_key()
    accepted(validate(anchor, (_certify(ca, top),), NOW, Purpose.CLIENT_AUTH))


def test_ec_point_off_the_curve_is_refused(ca: Issued, anchor: TrustAnchor) -> None:
    leaf = forge.issue_leaf(ca)
    point = leaf.certificate.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    off = point[:-1] + bytes([point[-1] ^ 1])
    tbs = leaf.certificate.tbs_certificate_bytes.replace(point, off)
    assert isinstance(ca.private_key, ec.EllipticCurvePrivateKey)
    der = chains.sign_tbs(tbs, ca.private_key)
    refused(validate(anchor, (der,), NOW, Purpose.CLIENT_AUTH), Check.public_key)


def test_signature_budget_counts_cost_not_calls() -> None:
    p256 = ec.generate_private_key(ec.SECP256R1()).public_key()
    p384 = ec.generate_private_key(ec.SECP384R1()).public_key()
    rsa2048 = rsa.RSAPublicNumbers(65537, (1 << 2047) | 1).public_key()
    rsa8192 = rsa.RSAPublicNumbers(65537, (1 << 8191) | 1).public_key()
    assert verification_cost(rsa2048) == 1
    assert verification_cost(rsa8192) == 16
    assert verification_cost(p256) < verification_cost(p384)
    # The budget admits a legitimate chain at the maximum depth of the
    # slowest keys (16 intermediates and the leaf, all P-384)...
    assert (path.HARD_MAX_DEPTH // 2 + 1) * verification_cost(p384) <= path.MAX_SIGNATURE_WORK
    # ...but far fewer P-384 verifications than RSA-2048 ones.
    assert path.MAX_SIGNATURE_WORK // verification_cost(p384) < 16


def test_p384_junk_exhausts_the_budget_in_fewer_verifications() -> None:
    ca = forge.make_anchor("P-384 anchor", key_type="p384")
    trust = TrustAnchor.from_der(ca.der)
    rogue = forge.build_certificate(
        subject=ca.subject, key_label="rogue384", key_type="p384", ca=True, key_usage=CA_USAGE
    )
    leaf = forge.issue_leaf(rogue)
    key = ec.generate_private_key(ec.SECP384R1())
    junk = tuple(
        forge.build_certificate(
            subject=ca.subject, issuer=ca, private_key=key, ca=True, key_usage=CA_USAGE
        ).der
        for _ in range(12)
    )
    refused(validate(trust, (leaf.der, *junk), NOW, Purpose.CLIENT_AUTH), Check.budget)


def test_server_leaf_needs_a_subject_alt_name(ca: Issued, anchor: TrustAnchor) -> None:
    bare = forge.issue_leaf(ca, "server", name="server", san_dns=(), san_ip=())
    refused(validate(anchor, (bare.der,), NOW, SERVER), Check.name)
    client = forge.issue_leaf(ca, "client", name="client")
    accepted(validate(anchor, (client.der,), NOW, Purpose.CLIENT_AUTH))
    named = forge.issue_leaf(ca, "server", name="server")
    accepted(validate(anchor, (named.der,), NOW, SERVER))
