"""Name syntax, name constraints and peer-name matching, alone."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pinata.x509 import names
from pinata.x509.names import ConstrainedNames, NameConstraints, Subtrees

labels = st.text(alphabet="abcxyz0-", min_size=1, max_size=5).filter(
    lambda s: s[0] != "-" and s[-1] != "-"
)
domains = st.lists(labels, min_size=1, max_size=4).map(lambda ls: ".".join([*ls, "test"]))


@pytest.mark.parametrize(
    ("name", "wildcard", "ok"),
    [
        ("example.com", False, True),
        ("a-b.example.com", False, True),
        ("*.example.com", True, True),
        ("*.example.com", False, False),
        ("w*.example.com", True, False),
        ("*", True, False),
        ("foo_bar.example.com", False, False),
        ("-a.example.com", False, False),
        (".example.com", False, False),
        ("example.com.", False, False),
        ("8.8.8.8", False, False),
        ("xn--628h.example.com", False, True),
        ("\N{GRINNING FACE}.example.com", False, False),
        ("a" * 64 + ".com", False, False),
    ],
)
def test_dns_syntax(name: str, wildcard: bool, ok: bool) -> None:
    assert names.is_dns_name(name, wildcard=wildcard) is ok


@given(domains, labels)
def test_adding_a_label_stays_within(base: str, label: str) -> None:
    assert names.dns_within(base, base)
    assert names.dns_within(f"{label}.{base}", base)
    assert not names.dns_within(base, f"{label}.{base}")
    assert not names.dns_within(f"{label}{base}", base) or label.endswith(".")


def _dns(*constraints: str, excluded: bool = False) -> NameConstraints:
    subtrees = Subtrees(dns=constraints)
    return NameConstraints(None, subtrees) if excluded else NameConstraints(subtrees, None)


@given(domains, domains, st.lists(labels, min_size=1, max_size=4))
def test_wildcards_are_judged_by_every_name_they_stand_for(
    base: str, constraint: str, samples: list[str]
) -> None:
    """`*.B` is excluded if some `x.B` is; permitted only if every `x.B` is.
    The samples include the constraint's own leftmost label, the critical `x`."""
    wildcard = ConstrainedNames(dns=(f"*.{base}",))
    xs = [*samples, constraint.split(".")[0]]
    concrete = [ConstrainedNames(dns=(f"{x}.{base}",)) for x in xs]
    if names.violation(wildcard, _dns(constraint, excluded=True)) is None:
        assert all(names.violation(c, _dns(constraint, excluded=True)) is None for c in concrete)
    if names.violation(wildcard, _dns(constraint)) is None:
        assert all(names.violation(c, _dns(constraint)) is None for c in concrete)


def test_cve_2025_61727() -> None:
    wildcard = ConstrainedNames(dns=("*.example.com",))
    assert names.violation(wildcard, _dns("bar.example.com", excluded=True)) is not None
    assert names.violation(wildcard, _dns("foo.example.com")) is not None
    assert names.violation(wildcard, _dns("example.com")) is None


@pytest.mark.parametrize(
    ("address", "constraint", "within"),
    [
        ("me@example.com", "example.com", True),
        ("me@sub.example.com", "example.com", False),
        ("me@sub.example.com", ".example.com", True),
        ("me@example.com", ".example.com", False),
        ("me@EXAMPLE.com", "me@example.com", True),
        ("Me@example.com", "me@example.com", False),
        ("*@example.com", "*@example.com", True),
        ("user@example.com", "*@example.com", False),
    ],
)
def test_email_within(address: str, constraint: str, within: bool) -> None:
    assert names.email_within(address, constraint) is within


def test_ip_constraints_keep_families_apart() -> None:
    v4 = NameConstraints(Subtrees(ip=(ipaddress.ip_network("0.0.0.0/0"),)), None)
    assert names.violation(ConstrainedNames(ip=(ipaddress.ip_address("::1"),)), v4) is not None
    assert names.violation(ConstrainedNames(ip=(ipaddress.ip_address("1.2.3.4"),)), v4) is None


def test_directory_constraints_are_prefixes() -> None:
    o = frozenset({("2.5.4.10", "pinata")})
    cn = frozenset({("2.5.4.3", "x")})
    permitted = NameConstraints(Subtrees(directory=((o,),)), None)
    assert names.violation(ConstrainedNames(directory=((o, cn),)), permitted) is None
    assert names.violation(ConstrainedNames(directory=((cn, o),)), permitted) is not None


def test_unsupported_forms_refused_only_when_present() -> None:
    constraints = NameConstraints(None, Subtrees(other_forms=frozenset({"OtherName"})))
    assert names.violation(ConstrainedNames(dns=("a.test",)), constraints) is None
    used = ConstrainedNames(other_forms=frozenset({"OtherName"}))
    assert names.violation(used, constraints) is not None


@given(labels, domains)
def test_wildcard_matches_exactly_one_label(label: str, base: str) -> None:
    sans = (f"*.{base}",)
    assert names.matches_peer_name(f"{label}.{base}", sans, ())
    assert not names.matches_peer_name(base, sans, ())
    assert not names.matches_peer_name(f"{label}.{label}.{base}", sans, ())


def test_peer_ip_never_matches_dns() -> None:
    assert not names.matches_peer_name("127.0.0.1", ("127.0.0.1",), ())
    assert names.matches_peer_name(
        ipaddress.ip_address("127.0.0.1"), (), (ipaddress.ip_address("127.0.0.1"),)
    )


def test_normalize_value() -> None:
    assert names.normalize_value("  Pinata   CA ") == names.normalize_value("pinata ca")
    assert names.normalize_value(b"\x01") == b"\x01"
