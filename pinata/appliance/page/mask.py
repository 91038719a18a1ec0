"""Other players' addresses, shown only as the network they came from.

The page is public: a visitor sees that someone from 203.0.113.0/24 tried,
never who. IPv4 keeps its /24 and IPv6 its /48 (the usual size of a site's
allocation, RFC 6177 §2), so the page cannot single out one host.
"""

from __future__ import annotations

import ipaddress

IPV4_PREFIX = 24
IPV6_PREFIX = 48


def mask_address(address: str) -> str:
    """The network of `address`: `a.b.c.0/24` or `x:y:z::/48`; "?" if it is not an address.

    An IPv4-mapped IPv6 address is masked as the IPv4 address it carries.
    """
    try:
        parsed = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return "?"
    if isinstance(parsed, ipaddress.IPv6Address) and parsed.ipv4_mapped is not None:
        parsed = parsed.ipv4_mapped
    prefix = IPV4_PREFIX if parsed.version == 4 else IPV6_PREFIX
    network = ipaddress.ip_network(f"{parsed}/{prefix}", strict=False)
    return str(network)
