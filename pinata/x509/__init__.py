"""X.509 path validation against a single trust anchor (RFC 5280 §6.1).

`cryptography` parses DER and verifies signatures; everything else (path
building, the profile, basicConstraints, key usages, name constraints, peer
names) is here, small enough to read against the RFC in one sitting:

- `dname`, `extensions`: names and extensions as plain values, lifted from
  `cryptography`'s decoding (the one DER parser)
- `parse`: DER to a frozen record, with the per-certificate profile checks,
  and a bounded cache of parsed certificates per anchor
- `signature`: accepted algorithms and keys; verification
- `names`: name comparison, name constraints, peer-name matching
- `checks`: the §6.1 steps that depend on a certificate's place in the path
- `path`: bounded path building
- `anchor`, `api`: the trust anchor, `validate` and the engine's hook
"""

from pinata.x509.anchor import InvalidTrustAnchor, TrustAnchor
from pinata.x509.api import PeerName, ValidatedChain, authenticator, validate
from pinata.x509.checks import Purpose
from pinata.x509.errors import Check, ValidationFailure

__all__ = [
    "Check",
    "InvalidTrustAnchor",
    "PeerName",
    "Purpose",
    "TrustAnchor",
    "ValidatedChain",
    "ValidationFailure",
    "authenticator",
    "validate",
]
