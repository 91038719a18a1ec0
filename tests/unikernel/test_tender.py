"""The tender's connect rule, without a sandbox: addresses as the guest's sockaddr holds them."""

from __future__ import annotations

import errno
import ipaddress
import socket

from unikernel import tender

SELF = frozenset({10000, 10002})


def dialing() -> tender.Dialing:
    return tender.Dialing(connect_back_port=40001, selftalk_ports=SELF)


def target(host: str, port: int) -> tuple[tender.IPAddress, int] | None:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    address = (host, port, 0, 0) if family == socket.AF_INET6 else (host, port)
    return tender.parse_sockaddr(tender.sockaddr_of(address))


def test_selftalk_dials_loopback_at_our_own_ports_only() -> None:
    d = dialing()
    for host in ("127.0.0.1", "127.5.5.5", "::1", "::ffff:127.0.0.1"):
        for port in SELF:
            assert d.check(target(host, port)) == 0, (host, port)
    for host in ("10.0.0.1", "192.0.2.7", "2001:db8::1", "::ffff:10.0.0.1", "0.0.0.0"):
        assert d.check(target(host, 10000)) == errno.EACCES, host
    assert d.check(target("127.0.0.1", 22)) == errno.EACCES
    off = tender.Dialing(40001, frozenset())
    assert off.check(target("127.0.0.1", 10000)) == errno.EACCES, "self-talk off: no dial"


def test_selftalk_may_dial_our_own_listeners_address() -> None:
    own = ipaddress.ip_address("192.0.2.7")
    d = tender.Dialing(40001, SELF, frozenset({own}))
    assert d.check(target("192.0.2.7", 10002)) == 0
    assert d.check(target("::ffff:192.0.2.7", 10000)) == 0
    assert d.check(target("192.0.2.7", 8080)) == errno.EACCES, "not a self-talk port"
    assert d.check(target("192.0.2.8", 10000)) == errno.EACCES


def test_connect_back_dials_each_initiator_once_at_the_manifest_port() -> None:
    d = dialing()
    assert d.check(target("192.0.2.7", 40001)) == errno.EACCES, "nobody knocked"
    d.initiated(ipaddress.ip_address("192.0.2.7"))
    assert d.check(target("192.0.2.8", 40001)) == errno.EACCES, "not the initiator"
    assert d.check(target("192.0.2.7", 40002)) == errno.EACCES, "not the manifest's port"
    assert d.check(target("::ffff:192.0.2.7", 40001)) == 0, "v4-mapped is the same address"
    assert d.check(target("192.0.2.7", 40001)) == errno.EACCES, "one knock, one dial"


def test_licences_are_bounded() -> None:
    d = dialing()
    for i in range(tender.MAX_LICENCES + 10):
        d.initiated(ipaddress.IPv4Address(0x0A000000 + i))
    assert len(d.licences) == tender.MAX_LICENCES
    assert d.check(target("10.0.0.0", 40001)) == errno.EACCES, "the oldest went first"
    assert d.check(target("10.0.0.10", 40001)) == 0


def test_a_sockaddr_of_another_family_or_too_short_is_refused() -> None:
    d = dialing()
    unix = socket.AF_UNIX.to_bytes(2, "little") + b"/dev/log\0"
    assert tender.parse_sockaddr(unix) is None
    assert d.check(None) == errno.EAFNOSUPPORT
    assert tender.parse_sockaddr(b"\x02") is None
    assert tender.parse_sockaddr(tender.sockaddr_of(("127.0.0.1", 1))[:6]) is None
    assert tender.parse_sockaddr(tender.sockaddr_of(("::1", 1, 0, 0))[:20]) is None


def test_sockaddr_round_trips() -> None:
    for address in (("127.0.0.1", 40001), ("::1", 10000, 0, 0), ("2001:db8::5", 1, 7, 0)):
        parsed = tender.parse_sockaddr(tender.sockaddr_of(address))
        assert parsed == (ipaddress.ip_address(address[0]), address[1])
