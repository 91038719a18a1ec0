"""The fast readers (`dname.read_plain`, `extensions.read_plain`, the frame's
TBS and signature, the anchor's issuer name) against the slow ones through
`cryptography`: on any certificate, the parsed record, or the refusal, is
the same with the fast paths as without them."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.name import _ASN1Type
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from bait_ca import forge, toy
from pinata.x509 import der, dname, extensions, parse
from pinata.x509.errors import CertificateRefused

_KEY = ec.derive_private_key(0x5EED, ec.SECP256R1())
_ANCHOR = forge.make_anchor("fast path anchor")
_ANCHOR_PARSED = parse.parse_certificate(_ANCHOR.der, anchor=True)

# -- strategies: names --------------------------------------------------------

_TEXT = st.text(
    alphabet=st.sampled_from("abcXYZ09 -.,+=#;<>\\\"'@*_\x00é中\u00a0"), min_size=1, max_size=12
)
_ATTRIBUTE_TYPES = [
    NameOID.COMMON_NAME,
    NameOID.ORGANIZATION_NAME,
    NameOID.ORGANIZATIONAL_UNIT_NAME,
    NameOID.LOCALITY_NAME,
    NameOID.EMAIL_ADDRESS,
    NameOID.DOMAIN_COMPONENT,
    NameOID.SERIAL_NUMBER,
    NameOID.USER_ID,
    x509.ObjectIdentifier("1.3.6.1.4.1.55555.1"),
    x509.ObjectIdentifier("2.999.1234567"),
]
_STRING_TYPES = [
    None,
    _ASN1Type.UTF8String,
    _ASN1Type.PrintableString,
    _ASN1Type.IA5String,
    _ASN1Type.BMPString,
    _ASN1Type.UniversalString,
    _ASN1Type.T61String,
]


@st.composite
def _attributes(draw: st.DrawFn) -> x509.NameAttribute[str]:
    if draw(st.integers(0, 9)) == 0:
        return x509.NameAttribute(NameOID.COUNTRY_NAME, draw(st.sampled_from(["NL", "CH", "FR"])))
    oid = draw(st.sampled_from(_ATTRIBUTE_TYPES))
    kind = draw(st.sampled_from(_STRING_TYPES))
    return x509.NameAttribute(oid, draw(_TEXT), kind)


_NAMES = st.lists(
    st.lists(_attributes(), min_size=1, max_size=2, unique_by=lambda a: (a.oid, a.value)),
    min_size=0,
    max_size=4,
).map(lambda rdns: x509.Name([x509.RelativeDistinguishedName(rdn) for rdn in rdns]))

# -- strategies: extensions ---------------------------------------------------

_PURPOSES = [
    ExtendedKeyUsageOID.CLIENT_AUTH,
    ExtendedKeyUsageOID.SERVER_AUTH,
    ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE,
    ExtendedKeyUsageOID.CODE_SIGNING,
    x509.ObjectIdentifier("1.3.6.1.4.1.311.10.3.4"),
    x509.ObjectIdentifier("2.999.200000"),
]
_DNS = st.text(alphabet=st.sampled_from("abZ09-.*_"), min_size=0, max_size=14)


def _mailbox(value: str) -> x509.GeneralName:
    try:
        return x509.RFC822Name(value)
    except ValueError:  # `cryptography` refuses to build some; any name will do
        return x509.DNSName(value)


_GENERAL_NAMES = st.one_of(
    _DNS.map(x509.DNSName),
    st.builds(lambda n: x509.IPAddress(ipaddress.ip_address(n)), st.integers(0, 2**32 - 1)),
    st.builds(lambda n: x509.IPAddress(ipaddress.IPv6Address(n)), st.integers(0, 2**128 - 1)),
    st.builds(
        lambda h: x509.IPAddress(ipaddress.ip_network(f"10.{h}.0.0/16")), st.integers(0, 255)
    ),
    st.builds(lambda local, host: _mailbox(f"{local}@{host}"), _DNS, _DNS),
    _DNS.map(_mailbox),
    _DNS.map(lambda h: x509.UniformResourceIdentifier(f"https://{h}/")),
    _NAMES.map(x509.DirectoryName),
    st.just(x509.RegisteredID(x509.ObjectIdentifier("1.2.3.4"))),
)


@st.composite
def _key_usage(draw: st.DrawFn) -> x509.KeyUsage:
    bits = draw(st.lists(st.booleans(), min_size=9, max_size=9))
    agreement = bits[4]
    return x509.KeyUsage(
        bits[0], bits[1], bits[2], bits[3], agreement, bits[5], bits[6],
        agreement and bits[7], agreement and bits[8],
    )  # fmt: skip


@st.composite
def _basic_constraints(draw: st.DrawFn) -> x509.BasicConstraints:
    ca = draw(st.booleans())
    length = draw(st.one_of(st.none(), st.integers(0, 300))) if ca else None
    return x509.BasicConstraints(ca, length)


_SKI = st.binary(min_size=1, max_size=40).map(x509.SubjectKeyIdentifier)
_AKI = st.one_of(
    st.binary(min_size=1, max_size=40).map(lambda k: x509.AuthorityKeyIdentifier(k, None, None)),
    st.builds(
        lambda k, name, serial: x509.AuthorityKeyIdentifier(k, [x509.DirectoryName(name)], serial),
        st.one_of(st.none(), st.binary(min_size=20, max_size=20)),
        _NAMES,
        st.integers(1, 2**64),
    ),
)
_VALUES: list[st.SearchStrategy[Any]] = [
    _basic_constraints(),
    _key_usage(),
    st.lists(st.sampled_from(_PURPOSES), min_size=1, max_size=3).map(x509.ExtendedKeyUsage),
    _SKI,
    _AKI,
    st.lists(_GENERAL_NAMES, min_size=1, max_size=4).map(x509.SubjectAlternativeName),
    st.just(x509.NameConstraints([x509.DNSName("example")], None)),
    st.just(x509.UnrecognizedExtension(x509.ObjectIdentifier("1.3.6.1.4.1.55555.9"), b"\x05\x00")),
    st.just(
        x509.CertificatePolicies(
            [x509.PolicyInformation(x509.ObjectIdentifier("2.23.140.1.2.1"), None)]
        )
    ),
]


@st.composite
def certificates(draw: st.DrawFn) -> bytes:
    builder = (
        x509.CertificateBuilder()
        .subject_name(draw(_NAMES))
        .issuer_name(draw(st.one_of(st.just(_ANCHOR.certificate.subject), _NAMES)))
        .public_key(_KEY.public_key())
        .serial_number(draw(st.integers(1, 2**159 - 1)))
        .not_valid_before(datetime(2025, 1, 1, tzinfo=UTC))
        .not_valid_after(
            draw(
                st.sampled_from(
                    [datetime(2049, 12, 31, tzinfo=UTC), datetime(2099, 1, 1, tzinfo=UTC)]
                )
            )
        )
    )
    chosen = draw(st.lists(st.sampled_from(range(len(_VALUES))), max_size=6, unique=True))
    for index in chosen:
        builder = builder.add_extension(draw(_VALUES[index]), critical=draw(st.booleans()))
    try:
        certificate = builder.sign(_KEY, hashes.SHA256())
    except ValueError:
        assume(False)
        raise
    return certificate.public_bytes(serialization.Encoding.DER)


# -- the comparison -----------------------------------------------------------


@contextmanager
def _slow_paths_only() -> Iterator[None]:
    saved = dname.read_plain, extensions.read_plain
    dname.read_plain = lambda name: None  # type: ignore[assignment]
    extensions.read_plain = lambda contents: None  # type: ignore[assignment]
    try:
        yield
    finally:
        dname.read_plain, extensions.read_plain = saved


def _outcome(data: bytes, **options: Any) -> tuple[object, ...]:
    try:
        certificate = parse.parse_certificate(data, **options)
    except CertificateRefused as refused:
        return ("refused", refused.check, refused.subject)
    fields = certificate._asdict()
    del fields["derived"]
    fields["public_key"] = certificate.spki
    lazy = (
        certificate.subject,
        certificate.issuer,
        certificate.subject_text,
        certificate.common_names,
        certificate.self_issued,
        certificate.constrained_names,
    )
    return ("parsed", fields, lazy)


def _same_both_ways(data: bytes) -> None:
    fast = _outcome(data)
    hinted = _outcome(data, known_issuer=_ANCHOR_PARSED)
    with _slow_paths_only():
        slow = _outcome(data)
    assert fast == slow
    assert hinted == slow


_SETTINGS = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


@_SETTINGS
@given(certificates())
def test_fast_and_slow_readers_agree(data: bytes) -> None:
    _same_both_ways(data)


# A damaged serial number may read as negative, which `cryptography` warns of.
_DAMAGED = pytest.mark.filterwarnings("ignore::cryptography.utils.CryptographyDeprecationWarning")


@_DAMAGED
@_SETTINGS
@given(certificates(), st.integers(min_value=0), st.integers(0, 255))
def test_fast_and_slow_readers_agree_on_damaged_certificates(
    data: bytes, position: int, value: int
) -> None:
    damaged = bytearray(data)
    damaged[position % len(data)] = value
    _same_both_ways(bytes(damaged))


def _extensions_both_ways(data: bytes) -> None:
    frame = der.certificate_frame(data)
    fast = extensions.read_plain(frame.extensions)
    if fast is None:
        return
    # Whatever the fast reader takes, `cryptography` decodes, to the same.
    assert fast == extensions.from_cryptography(x509.load_der_x509_certificate(data))


@_SETTINGS
@given(certificates())
def test_extension_readers_agree(data: bytes) -> None:
    _extensions_both_ways(data)


@_DAMAGED
@_SETTINGS
@given(certificates(), st.integers(min_value=0), st.integers(0, 255))
def test_extension_readers_agree_on_damaged_certificates(
    data: bytes, position: int, value: int
) -> None:
    damaged = bytearray(data)
    damaged[position % len(data)] = value
    try:
        x509.load_der_x509_certificate(bytes(damaged))
        der.certificate_frame(bytes(damaged))
    except Exception:  # not a certificate at all (ValueError, InvalidVersion, ...)
        assume(False)
    _extensions_both_ways(bytes(damaged))


@pytest.mark.parametrize("name", ["anchor", "server", "client", "web", "researcher_client"])
def test_toy_certificates_take_the_fast_paths(name: str) -> None:
    """What the piñata and its researchers use is read without `cryptography`'s
    slow accessors: names and extensions by the fast readers."""
    data = getattr(toy.load(), name).der
    frame = der.certificate_frame(data)
    assert extensions.read_plain(frame.extensions) is not None
    assert dname.read_plain(frame.subject) is not None
    assert dname.read_plain(frame.issuer) is not None
    _same_both_ways(data)


@_SETTINGS
@given(certificates())
def test_frame_matches_cryptography(data: bytes) -> None:
    frame = der.certificate_frame(data)
    certificate = x509.load_der_x509_certificate(data)
    assert frame.tbs == certificate.tbs_certificate_bytes
    assert frame.signature == certificate.signature
    assert frame.version == der.VERSION_3
    assert int.from_bytes(frame.serial, "big", signed=True) == certificate.serial_number
    assert frame.issuer == certificate.issuer.public_bytes()
    assert frame.subject == certificate.subject.public_bytes()


@_SETTINGS
@given(_NAMES)
def test_names_read_plain_as_cryptography_reads_them(name: x509.Name) -> None:
    try:
        encoded = name.public_bytes()
        parsed = x509.Name.from_bytes(encoded)
    except ValueError:  # e.g. a PrintableString outside its alphabet
        assume(False)
        raise
    plain = dname.read_plain(encoded)
    decoded = dname.from_cryptography(parsed)
    assert plain is None or plain == decoded
    assert dname.rfc4514(decoded) == parsed.rfc4514_string()


def test_plain_names_are_recognised() -> None:
    name = x509.Name.from_rfc4514_string("CN=toy  researcher,O=Example\\, Inc.,C=NL")
    assert dname.read_plain(name.public_bytes()) == dname.from_cryptography(name)
    # A BMPString is not plain: it is left to `cryptography`.
    bmp = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "x", _ASN1Type.BMPString)])
    assert dname.read_plain(bmp.public_bytes()) is None


@given(st.binary(max_size=300))
def test_fast_readers_are_total(data: bytes) -> None:
    dname.read_plain(data)
    extensions.read_plain(data)
    extensions.read_plain(b"\x30" + bytes([len(data) % 256]) + data)


def test_exact_table_holds_what_the_reader_decodes() -> None:
    """Every whole-extension encoding in the table decodes, by the general
    reader, to the fields the table gives it."""
    assert extensions._EXACT
    for encoding, (bit, settings_) in extensions._EXACT.items():
        contents = bytes((0x30, len(encoding))) + encoding
        found = extensions.read_plain(contents)
        assert found is not None
        for index, value in settings_:
            assert found[index] == value
        assert bit == 1 << encoding[6]


@st.composite
def _object_identifiers(draw: st.DrawFn) -> str:
    first = draw(st.integers(0, 2))
    second = draw(st.integers(0, 39 if first < 2 else 2**40))
    rest = draw(st.lists(st.integers(0, 2**70), max_size=6))
    return ".".join(str(arc) for arc in (first, second, *rest))


@given(_object_identifiers())
def test_object_identifiers_decode_as_cryptography_writes_them(dotted: str) -> None:
    encoded = x509.ExtendedKeyUsage([x509.ObjectIdentifier(dotted)]).public_bytes()
    contents = der.body(der.body(encoded, der.SEQUENCE) or b"", 0x06)
    assert contents is not None
    if len(contents) <= 64:
        assert der.object_identifier(contents) == dotted
    # X.690 §8.19.2: a subidentifier never starts with 0x80.
    assert der.object_identifier(b"\x80" + contents) is None
