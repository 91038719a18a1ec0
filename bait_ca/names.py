"""Host names a certificate may carry: a DNS name or an IP address, nothing else."""

from __future__ import annotations

import ipaddress
import re

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# RFC 1035 §2.3.1 letter-digit-hyphen labels, with RFC 1123 §2.1's leading digit.
_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\Z")
MAX_NAME_LENGTH = 253  # RFC 1035 §3.1: 255 octets on the wire, less length bytes.


def parse_host(text: str) -> str | IPAddress:
    """An IP address, or a lower-cased DNS name; ValueError for anything else."""
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        pass
    if not text or len(text) > MAX_NAME_LENGTH or not text.isascii():
        raise ValueError(f"{text!r} is not a valid DNS name or IP address")
    labels = text.split(".")
    # A name made only of digits and dots is a mangled IPv4 address, not a name.
    if not all(_LABEL.match(label) for label in labels) or labels[-1].isdigit():
        raise ValueError(f"{text!r} is not a valid DNS name or IP address")
    return text.lower()


def split_hosts(
    hosts: list[str] | tuple[str, ...],
) -> tuple[tuple[str, ...], tuple[IPAddress, ...]]:
    """Hosts parsed and split into (DNS names, IP addresses) for subjectAltName."""
    dns: list[str] = []
    ips: list[IPAddress] = []
    for host in hosts:
        parsed = parse_host(host)
        if isinstance(parsed, str):
            dns.append(parsed)
        else:
            ips.append(parsed)
    return tuple(dns), tuple(ips)
