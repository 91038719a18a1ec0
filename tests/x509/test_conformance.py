"""The rules of pinata/x509/CONFORMANCE.md that x509-limbo's public cases do
not all reach: one certificate built per rule, refused for that rule's check,
beside a near twin that is accepted (so each test can fail both ways)."""

from __future__ import annotations

import ipaddress

import pytest

from bait_ca import forge
from bait_ca.issued import Issued
from pinata.x509 import Check, Purpose, TrustAnchor, validate

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
