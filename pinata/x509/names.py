"""Names: comparison (RFC 5280 §7.1), syntax of the names we match, name
constraints (RFC 5280 §4.2.1.10 and §6.1.3 (b)(c)) and the peer-name match
(RFC 9525 §6.3).

Everything here works on plain values already lifted out of `cryptography`'s
objects by `parse.py`, so it is pure and easy to test alone.
"""

from __future__ import annotations

import contextlib
import ipaddress
import re
import string
from dataclasses import dataclass, field

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
# A distinguished name as a sequence of RDNs, each a set of (type, value).
NormalizedName = tuple[frozenset[tuple[str, str | bytes]], ...]

_LDH = frozenset(string.ascii_lowercase + string.digits + "-")
# An IPv4 address as inet_aton(3) reads it: one to four parts, each decimal,
# octal (leading 0) or hexadecimal (0x), e.g. 0xC0A80101 or 192.168.001.001.
_IPV4_ANY_SPELLING = re.compile(r"(?:0x[0-9a-f]*|[0-9]+)(?:\.(?:0x[0-9a-f]*|[0-9]+)){0,3}\.?")
_IPV6_CHARACTERS = frozenset(string.hexdigits + ":.")


def normalize_value(value: str | bytes) -> str | bytes:
    """RFC 5280 §7.1 via RFC 4518 (approximated): case-insensitive, with
    leading, trailing and repeated inner whitespace insignificant."""
    if isinstance(value, bytes):
        return value
    return " ".join(value.split()).casefold()


def is_dns_name(name: str, *, wildcard: bool) -> bool:
    """RFC 5280 §4.2.1.6: "preferred name syntax" (RFC 1034 §3.5, RFC 1123
    §2.1), already lower-cased. With `wildcard`, the leftmost label may be
    exactly `*` (RFC 9525 §6.3: no partial-label wildcards)."""
    if not name or len(name) > 253 or not name.isascii():
        return False
    labels = name.split(".")
    if wildcard and labels[0] == "*":
        labels = labels[1:]
        if not labels:
            return False
    for label in labels:
        if not 0 < len(label) <= 63 or label[0] == "-" or label[-1] == "-":
            return False
        if not set(label) <= _LDH:
            return False
    # RFC 1123 §2.1: the top-level label is alphabetic; this also refuses an
    # IPv4 address written as a dNSName.
    return not labels[-1].isdigit()


def names_a_host(text: str) -> bool:
    """Whether a commonName reads as a host: an IP address in any spelling
    a resolver or a browser would accept (inet_aton forms, IPv6 in any case
    or compression), or a domain name of at least two labels, A-labels or
    U-labels, possibly a wildcard. Free text ("BTC Pinata server") and a
    single label ("EE") do not."""
    lowered = text.lower()
    if _IPV4_ANY_SPELLING.fullmatch(lowered):
        return True
    if ":" in text and set(text) <= _IPV6_CHARACTERS:
        return True
    labels = lowered.removesuffix(".").split(".")
    if len(labels) < 2 or not all(labels):
        return False
    return not any(character.isspace() or character in "/@,;=" for character in text)


def is_email(address: str) -> bool:
    local, at, host = address.rpartition("@")
    return (
        bool(at) and bool(local) and "@" not in local and is_dns_name(host.lower(), wildcard=False)
    )


def dns_within(name: str, base: str) -> bool:
    """RFC 5280 §4.2.1.10: a dNSName constraint covers itself and any name
    made by adding labels on the left."""
    return base == "" or name == base or name.endswith("." + base)


def wildcard_base(name: str) -> str | None:
    return name[2:] if name.startswith("*.") else None


def email_within(address: str, constraint: str) -> bool:
    """RFC 5280 §4.2.1.10: a mailbox, all mailboxes on a host, or on any host
    in a domain (leading period). Local parts are compared exactly."""
    local, _, host = address.rpartition("@")
    host = host.lower()
    if "@" in constraint:
        c_local, _, c_host = constraint.rpartition("@")
        return local == c_local and host == c_host.lower()
    if constraint.startswith("."):
        return host.endswith(constraint.lower())
    return host == constraint.lower()


@dataclass(frozen=True, slots=True)
class Subtrees:
    """One GeneralSubtrees (permitted or excluded), split by name form."""

    dns: tuple[str, ...] = ()
    ip: tuple[IPNetwork, ...] = ()
    email: tuple[str, ...] = ()
    directory: tuple[NormalizedName, ...] = ()
    # Forms we do not process (uniformResourceIdentifier, otherName, ...).
    other_forms: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class NameConstraints:
    permitted: Subtrees | None
    excluded: Subtrees | None


@dataclass(frozen=True, slots=True)
class ConstrainedNames:
    """The names of one certificate that name constraints apply to: its
    subject and subjectAltName (RFC 5280 §6.1.3 (b)(c))."""

    directory: tuple[NormalizedName, ...] = ()
    dns: tuple[str, ...] = ()
    ip: tuple[IPAddress, ...] = ()
    email: tuple[str, ...] = ()
    other_forms: frozenset[str] = field(default_factory=frozenset)


def _dns_permitted(name: str, constraints: tuple[str, ...]) -> bool:
    base = wildcard_base(name)
    # A wildcard is permitted only if every name it could stand for is.
    return any(dns_within(base if base is not None else name, c) for c in constraints)


def _dns_excluded(name: str, constraints: tuple[str, ...]) -> bool:
    base = wildcard_base(name)
    if base is None:
        return any(dns_within(name, c) for c in constraints)
    # `*.B` is excluded if any name it could stand for is (CVE-2025-61727):
    # B lies in the subtree, or the subtree is exactly one label below B.
    return any(dns_within(base, c) or c.partition(".")[2] == base for c in constraints)


def _directory_within(name: NormalizedName, base: NormalizedName) -> bool:
    return name[: len(base)] == base


def _ip_within(address: IPAddress, network: IPNetwork) -> bool:
    return address.version == network.version and address in network


def violation(names: ConstrainedNames, constraints: NameConstraints) -> str | None:
    """Why `names` break `constraints`, or None if they do not."""
    for subtrees in (constraints.permitted, constraints.excluded):
        if subtrees is not None and names.other_forms & subtrees.other_forms:
            # RFC 5280 §4.2.1.10: process the constraint or reject.
            form = sorted(names.other_forms & subtrees.other_forms)[0]
            return f"constraint on the unsupported name form {form}"
    permitted = constraints.permitted
    if permitted is not None:
        if permitted.dns:
            for dns in names.dns:
                if not _dns_permitted(dns, permitted.dns):
                    return f"dNSName {dns} not in the permitted subtrees"
        if permitted.ip:
            for ip in names.ip:
                if not any(_ip_within(ip, n) for n in permitted.ip):
                    return f"iPAddress {ip} not in the permitted subtrees"
        if permitted.email:
            for email in names.email:
                if not any(email_within(email, c) for c in permitted.email):
                    return f"rfc822Name {email} not in the permitted subtrees"
        if permitted.directory:
            for directory in names.directory:
                if not any(_directory_within(directory, c) for c in permitted.directory):
                    return "directoryName not in the permitted subtrees"
    excluded = constraints.excluded
    if excluded is not None:
        for dns in names.dns:
            if _dns_excluded(dns, excluded.dns):
                return f"dNSName {dns} in an excluded subtree"
        for ip in names.ip:
            if any(_ip_within(ip, n) for n in excluded.ip):
                return f"iPAddress {ip} in an excluded subtree"
        for email in names.email:
            if any(email_within(email, c) for c in excluded.email):
                return f"rfc822Name {email} in an excluded subtree"
        for directory in names.directory:
            if any(_directory_within(directory, c) for c in excluded.directory):
                return "directoryName in an excluded subtree"
    return None


def matches_peer_name(
    peer_name: str | IPAddress, dns_names: tuple[str, ...], ip_addresses: tuple[IPAddress, ...]
) -> bool:
    """RFC 9525 §6.3/§6.4: the reference identity against subjectAltName
    only; the subject's CN is never consulted (§6.1)."""
    if isinstance(peer_name, str):
        with contextlib.suppress(ValueError):
            peer_name = ipaddress.ip_address(peer_name)
    if not isinstance(peer_name, str):
        return peer_name in ip_addresses
    name = peer_name.lower()
    if name.endswith("."):
        name = name[:-1]
    if not is_dns_name(name, wildcard=False):
        return False
    for candidate in dns_names:
        base = wildcard_base(candidate)
        if base is None:
            if candidate == name:
                return True
        # RFC 9525 §6.3: the wildcard is the whole leftmost label and stands
        # for exactly one label; we refuse `*.tld` (no registrable domain).
        elif "." in base:
            label, _, rest = name.partition(".")
            if label and rest == base:
                return True
    return False
