"""Each forge builder makes exactly the defect it names, and nothing else breaks."""

from __future__ import annotations

import functools
from datetime import UTC, datetime

import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, ExtensionOID, SignatureAlgorithmOID
from hypothesis import given, settings
from hypothesis import strategies as st

from bait_ca import der, forge
from bait_ca.build import UNKNOWN_CRITICAL_OID, SignatureHash
from bait_ca.keys import same_public_key


@pytest.fixture(scope="module")
def anchor() -> forge.Issued:
    return forge.make_anchor()


@pytest.fixture(scope="module")
def rsa_anchor() -> forge.Issued:
    return forge.make_anchor("RSA forge anchor", key_type="rsa2048")


def load(data: bytes) -> x509.Certificate:
    return x509.load_der_x509_certificate(data)


def signed_by(child: bytes, parent: bytes) -> bool:
    try:
        load(child).verify_directly_issued_by(load(parent))
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True


def tbs_and_outer_algorithm(data: bytes) -> tuple[bytes, bytes]:
    (_, tbs), (_, outer), _ = der.read_sequence(data)
    return tbs, outer


def tbs_fields(data: bytes) -> list[tuple[int, bytes]]:
    return der.read_sequence(tbs_and_outer_algorithm(data)[0])


def extension(cert: x509.Certificate, oid: x509.ObjectIdentifier) -> x509.ExtensionType:
    return cert.extensions.get_extension_for_oid(oid).value


def test_anchor_is_a_self_signed_ca(anchor: forge.Issued) -> None:
    cert = anchor.certificate
    assert cert.subject == cert.issuer
    assert signed_by(anchor.der, anchor.der)
    constraints = extension(cert, ExtensionOID.BASIC_CONSTRAINTS)
    assert isinstance(constraints, x509.BasicConstraints) and constraints.ca
    usage = extension(cert, ExtensionOID.KEY_USAGE)
    assert isinstance(usage, x509.KeyUsage) and usage.key_cert_sign and usage.crl_sign
    assert same_public_key(cert.public_key(), anchor.public_key)


@pytest.mark.parametrize("role", ["client", "server"])
def test_good_chain_is_well_formed(anchor: forge.Issued, role: forge.Role) -> None:
    good = forge.good_chain(anchor, role)
    leaf = load(good.leaf)
    assert signed_by(good.leaf, anchor.der)
    assert leaf.issuer == anchor.subject
    eku = extension(leaf, ExtensionOID.EXTENDED_KEY_USAGE)
    wanted = (
        ExtendedKeyUsageOID.CLIENT_AUTH if role == "client" else ExtendedKeyUsageOID.SERVER_AUTH
    )
    assert isinstance(eku, x509.ExtendedKeyUsage) and list(eku) == [wanted]
    usage = extension(leaf, ExtensionOID.KEY_USAGE)
    assert isinstance(usage, x509.KeyUsage) and usage.digital_signature
    assert same_public_key(leaf.public_key(), good.private_key.public_key())


def test_rogue_ca_has_the_anchor_name_and_key_id_but_not_its_key(anchor: forge.Issued) -> None:
    forged = forge.rogue_ca_same_subject(anchor)
    leaf, rogue = map(load, forged.chain)
    assert rogue.subject == anchor.subject and leaf.issuer == anchor.subject
    assert not same_public_key(rogue.public_key(), anchor.public_key)
    ski = extension(rogue, ExtensionOID.SUBJECT_KEY_IDENTIFIER)
    assert ski == extension(anchor.certificate, ExtensionOID.SUBJECT_KEY_IDENTIFIER)
    assert signed_by(forged.chain[0], forged.chain[1])
    assert not signed_by(forged.chain[0], anchor.der)


def test_anchor_key_under_new_name(anchor: forge.Issued) -> None:
    forged = forge.anchor_key_under_new_name(anchor)
    leaf, impostor = map(load, forged.chain)
    assert same_public_key(impostor.public_key(), anchor.public_key)
    assert impostor.subject != anchor.subject and leaf.issuer == impostor.subject
    # The signature itself verifies under the real anchor's key: only names differ.
    public = anchor.public_key
    assert isinstance(public, ec.EllipticCurvePublicKey) and leaf.signature_hash_algorithm
    public.verify(
        leaf.signature, leaf.tbs_certificate_bytes, ec.ECDSA(leaf.signature_hash_algorithm)
    )


def test_self_signed_leaf() -> None:
    forged = forge.self_signed_leaf("server")
    leaf = load(forged.leaf)
    assert leaf.subject == leaf.issuer and signed_by(forged.leaf, forged.leaf)
    constraints = extension(leaf, ExtensionOID.BASIC_CONSTRAINTS)
    assert isinstance(constraints, x509.BasicConstraints) and not constraints.ca


def test_forged_and_corrupted_signatures(anchor: forge.Issued) -> None:
    for forged in (forge.forged_signature_leaf(anchor), forge.corrupted_signature_leaf(anchor)):
        assert load(forged.leaf).issuer == anchor.subject
        assert not signed_by(forged.leaf, anchor.der)


def test_validity_defects(anchor: forge.Issued) -> None:
    now = datetime(2026, 6, 1, tzinfo=UTC)
    assert load(forge.expired_leaf(anchor, now=now).leaf).not_valid_after_utc < now
    assert load(forge.not_yet_valid_leaf(anchor, now=now).leaf).not_valid_before_utc > now
    assert load(forge.expired_leaf(anchor).leaf).not_valid_after_utc < datetime.now(UTC)
    assert load(forge.not_yet_valid_leaf(anchor).leaf).not_valid_before_utc > datetime.now(UTC)


@pytest.mark.parametrize("role", ["client", "server"])
def test_wrong_and_missing_eku(anchor: forge.Issued, role: forge.Role) -> None:
    leaf = load(forge.wrong_eku_leaf(anchor, role).leaf)
    eku = extension(leaf, ExtensionOID.EXTENDED_KEY_USAGE)
    other = ExtendedKeyUsageOID.SERVER_AUTH if role == "client" else ExtendedKeyUsageOID.CLIENT_AUTH
    assert isinstance(eku, x509.ExtendedKeyUsage) and list(eku) == [other]
    bare = load(forge.missing_eku_leaf(anchor, role).leaf)
    with pytest.raises(x509.ExtensionNotFound):
        bare.extensions.get_extension_for_oid(ExtensionOID.EXTENDED_KEY_USAGE)


def test_no_digital_signature(anchor: forge.Issued) -> None:
    usage = extension(load(forge.no_digital_signature_leaf(anchor).leaf), ExtensionOID.KEY_USAGE)
    assert isinstance(usage, x509.KeyUsage)
    assert not usage.digital_signature and usage.key_encipherment


def test_ca_certificate_as_leaf(anchor: forge.Issued) -> None:
    constraints = extension(
        load(forge.ca_certificate_as_leaf(anchor).leaf), ExtensionOID.BASIC_CONSTRAINTS
    )
    assert isinstance(constraints, x509.BasicConstraints) and constraints.ca


def test_unknown_critical_extension(anchor: forge.Issued) -> None:
    leaf = load(forge.unknown_critical_extension_leaf(anchor).leaf)
    ext = leaf.extensions.get_extension_for_oid(UNKNOWN_CRITICAL_OID)
    assert ext.critical and isinstance(ext.value, x509.UnrecognizedExtension)
    assert signed_by(forge.unknown_critical_extension_leaf(anchor).leaf, anchor.der)


def test_duplicate_extension(anchor: forge.Issued) -> None:
    forged = forge.duplicate_extension_leaf(anchor)
    with pytest.raises(x509.DuplicateExtension):
        _ = load(forged.leaf).extensions
    assert signed_by(forged.leaf, anchor.der)


def test_sha1_signature(anchor: forge.Issued) -> None:
    forged = forge.sha1_leaf(anchor)
    leaf = load(forged.leaf)
    assert leaf.signature_algorithm_oid == SignatureAlgorithmOID.ECDSA_WITH_SHA1
    assert leaf.signature_hash_algorithm is not None
    assert leaf.signature_hash_algorithm.name == "sha1"
    public = anchor.public_key
    assert isinstance(public, ec.EllipticCurvePublicKey)
    public.verify(
        leaf.signature, leaf.tbs_certificate_bytes, ec.ECDSA(leaf.signature_hash_algorithm)
    )


def test_md5_signature(rsa_anchor: forge.Issued, anchor: forge.Issued) -> None:
    forged = forge.md5_leaf(rsa_anchor)
    leaf = load(forged.leaf)
    assert leaf.signature_algorithm_oid == SignatureAlgorithmOID.RSA_WITH_MD5
    public = rsa_anchor.public_key
    assert isinstance(public, rsa.RSAPublicKey)
    public.verify(leaf.signature, leaf.tbs_certificate_bytes, padding.PKCS1v15(), hashes.MD5())
    with pytest.raises(ValueError, match="RSA"):
        forge.md5_leaf(anchor)


def test_rsa1024(anchor: forge.Issued) -> None:
    forged = forge.rsa1024_leaf(anchor)
    public = load(forged.leaf).public_key()
    assert isinstance(public, rsa.RSAPublicKey) and public.key_size == 1024
    assert signed_by(forged.leaf, anchor.der)


def test_v1_with_extensions(anchor: forge.Issued) -> None:
    forged = forge.v1_with_extensions_leaf(anchor)
    fields = tbs_fields(forged.leaf)
    assert fields[0][0] == der.INTEGER  # no [0] version: DER's encoding of v1
    assert fields[-1][0] == 0xA3  # but [3] extensions are there
    assert load(forged.leaf).version == x509.Version.v1
    assert signed_by(forged.leaf, anchor.der)


def test_mismatched_signature_algorithm(anchor: forge.Issued) -> None:
    forged = forge.mismatched_signature_algorithm_leaf(anchor)
    tbs, outer = tbs_and_outer_algorithm(forged.leaf)
    inner = der.read_sequence(tbs)[2][1]
    assert inner != outer
    assert not signed_by(forged.leaf, anchor.der)  # cryptography refuses the mismatch...
    leaf = load(forged.leaf)  # ...but the signature is valid per the outer algorithm
    assert leaf.signature_hash_algorithm is not None
    public = anchor.public_key
    assert isinstance(public, ec.EllipticCurvePublicKey)
    public.verify(
        leaf.signature, leaf.tbs_certificate_bytes, ec.ECDSA(leaf.signature_hash_algorithm)
    )


def test_ca_false_intermediate(anchor: forge.Issued) -> None:
    forged = forge.ca_false_intermediate_chain(anchor)
    leaf, middle = forged.chain
    constraints = extension(load(middle), ExtensionOID.BASIC_CONSTRAINTS)
    assert isinstance(constraints, x509.BasicConstraints) and not constraints.ca
    assert signed_by(leaf, middle) and signed_by(middle, anchor.der)


def test_intermediate_without_basic_constraints_or_key_cert_sign(anchor: forge.Issued) -> None:
    leaf, middle = forge.no_basic_constraints_intermediate_chain(anchor).chain
    with pytest.raises(x509.ExtensionNotFound):
        load(middle).extensions.get_extension_for_oid(ExtensionOID.BASIC_CONSTRAINTS)
    assert signed_by(leaf, middle)
    leaf, middle = forge.no_key_cert_sign_intermediate_chain(anchor).chain
    usage = extension(load(middle), ExtensionOID.KEY_USAGE)
    assert isinstance(usage, x509.KeyUsage) and not usage.key_cert_sign
    assert signed_by(leaf, middle)


def test_path_len_violation(anchor: forge.Issued) -> None:
    leaf, second, first = forge.path_len_violation_chain(anchor).chain
    constraints = extension(load(first), ExtensionOID.BASIC_CONSTRAINTS)
    assert isinstance(constraints, x509.BasicConstraints) and constraints.path_length == 0
    second_bc = extension(load(second), ExtensionOID.BASIC_CONSTRAINTS)
    assert isinstance(second_bc, x509.BasicConstraints) and second_bc.ca
    assert signed_by(leaf, second) and signed_by(second, first) and signed_by(first, anchor.der)


def test_v1_intermediate(anchor: forge.Issued) -> None:
    leaf, middle = forge.v1_intermediate_chain(anchor).chain
    assert load(middle).version == x509.Version.v1
    assert len(load(middle).extensions) == 0
    assert signed_by(leaf, middle) and signed_by(middle, anchor.der)


def test_name_constraints_violation(anchor: forge.Issued) -> None:
    leaf, middle = forge.name_constraints_violation_chain(anchor).chain
    constraints = load(middle).extensions.get_extension_for_oid(ExtensionOID.NAME_CONSTRAINTS)
    assert constraints.critical
    san = extension(load(leaf), ExtensionOID.SUBJECT_ALTERNATIVE_NAME)
    assert isinstance(san, x509.SubjectAlternativeName)
    assert san.get_values_for_type(x509.DNSName) == ["localhost"]


def test_long_chain_links(anchor: forge.Issued) -> None:
    forged = forge.long_chain(anchor, 12)
    assert len(forged.chain) == 13
    for child, parent in zip(forged.chain, forged.chain[1:], strict=False):
        assert signed_by(child, parent)
    assert signed_by(forged.chain[-1], anchor.der)


def test_junk_bag(anchor: forge.Issued) -> None:
    forged = forge.junk_bag(anchor, 30)
    assert len(forged.chain) == 31 and signed_by(forged.leaf, anchor.der)
    for junk in forged.chain[1:]:
        assert load(junk).subject == anchor.subject
        assert not signed_by(forged.leaf, junk)
    assert len({load(j).serial_number for j in forged.chain[1:]}) == 30


@pytest.mark.parametrize("name", sorted(forge.HOSTILE))
def test_catalogue_entries_parse_and_carry_the_leaf_key(anchor: forge.Issued, name: str) -> None:
    forged = forge.HOSTILE[name](anchor)
    assert forged.chain and forged.defect
    leaf = load(forged.leaf)
    if name != "rsa1024_leaf" or isinstance(forged.private_key, rsa.RSAPrivateKey):
        assert same_public_key(leaf.public_key(), forged.private_key.public_key())
    assert forged.pem_chain.count(b"BEGIN CERTIFICATE") == len(forged.chain)


@pytest.mark.parametrize(
    ("key_type", "rsa_pss"),
    [("p384", False), ("ed25519", False), ("rsa2048", False), ("rsa2048", True)],
)
def test_key_types_and_rsa_pss(key_type: str, rsa_pss: bool) -> None:
    ca = forge.make_anchor(f"{key_type} anchor", key_type=key_type, rsa_pss=rsa_pss)  # type: ignore[arg-type]
    leaf = forge.issue_leaf(ca, "server", key_type=key_type, rsa_pss=rsa_pss)
    assert signed_by(leaf.der, ca.der)
    if rsa_pss:
        assert leaf.certificate.signature_algorithm_oid == SignatureAlgorithmOID.RSASSA_PSS


def test_hand_built_pss_matches_the_builders_parameters(rsa_anchor: forge.Issued) -> None:
    by_hand = forge.build_certificate(
        subject="pss by hand", issuer=rsa_anchor, rsa_pss=True, duplicate_extension=True
    )
    assert by_hand.certificate.signature_algorithm_oid == SignatureAlgorithmOID.RSASSA_PSS
    assert signed_by(by_hand.der, rsa_anchor.der)


@settings(max_examples=25, deadline=None)
@given(
    version=st.sampled_from([1, 3]),
    signature_hash=st.sampled_from(["default", "sha1", "sha256", "sha384", "sha512"]),
    duplicate_extension=st.booleans(),
    unknown_critical_extension=st.booleans(),
    ca=st.sampled_from([None, False, True]),
)
def test_any_combination_builds_a_parseable_correctly_signed_certificate(
    version: int,
    signature_hash: SignatureHash,
    duplicate_extension: bool,
    unknown_critical_extension: bool,
    ca: bool | None,
) -> None:
    issuer = _property_anchor()
    issued = forge.build_certificate(
        subject="property",
        issuer=issuer,
        version=version,
        signature_hash=signature_hash,
        duplicate_extension=duplicate_extension,
        unknown_critical_extension=unknown_critical_extension,
        ca=ca,
    )
    cert = load(issued.der)
    assert cert.version == (x509.Version.v1 if version == 1 else x509.Version.v3)
    fields = tbs_fields(issued.der)
    assert (fields[0][0] == 0xA0) == (version != 1)
    assert cert.issuer == issuer.subject
    hash_name = "sha256" if signature_hash == "default" else signature_hash
    assert cert.signature_hash_algorithm is not None
    assert cert.signature_hash_algorithm.name == hash_name
    public = issuer.public_key
    assert isinstance(public, ec.EllipticCurvePublicKey)
    public.verify(
        cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(cert.signature_hash_algorithm)
    )


@functools.lru_cache(maxsize=1)
def _property_anchor() -> forge.Issued:
    return forge.make_anchor("property anchor")
