from __future__ import annotations

import contextlib
import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bait_ca.names import parse_host, split_hosts


@pytest.mark.parametrize(
    "good", ["localhost", "pinata.example", "a-b.c0", "xn--pinata-xxa.example", "3com.com"]
)
def test_dns_names(good: str) -> None:
    assert parse_host(good) == good.lower()


@pytest.mark.parametrize("good", ["127.0.0.1", "::1", "2001:db8::1"])
def test_ip_addresses(good: str) -> None:
    assert parse_host(good) == ipaddress.ip_address(good)


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "bad_name",
        "-lead.example",
        "trail-.example",
        "a..b",
        "piñata.example",
        "*.example",
        "1.2.3.256",
        "a" * 64 + ".example",
        ("a" * 63 + ".") * 4 + "a",
        "host name",
    ],
)
def test_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="not a valid DNS name or IP address"):
        parse_host(bad)


def test_split() -> None:
    assert split_hosts(["localhost", "127.0.0.1"]) == (
        ("localhost",),
        (ipaddress.IPv4Address("127.0.0.1"),),
    )


@given(st.text(max_size=300))
def test_total(text: str) -> None:
    with contextlib.suppress(ValueError):
        parse_host(text)
