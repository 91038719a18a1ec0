"""The TLS 1.3 cipher suites (RFC 8446 §B.4): an AEAD and a hash, nothing else;
and the six TLS 1.2 AEAD suites with ECDHE (`TLS12_SUITES`).

A suite's parameters are fixed facts, so each is one frozen `SuiteParams`;
the connection looks a wire value up with `lookup_suite`, which answers None
for anything we do not implement rather than raising.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305

from pinata.tls.constants import CipherSuite

if TYPE_CHECKING:
    from hashlib import _Hash

AEAD = AESGCM | ChaCha20Poly1305

# RFC 8446 §5.3: every TLS 1.3 AEAD uses a 12-byte nonce (iv_length).
IV_LEN = 12
# All three suites' AEADs append a 16-byte tag (RFC 5116 §5.1, RFC 8439 §2.8).
TAG_LEN = 16


@dataclass(frozen=True)
class SuiteParams:
    suite: CipherSuite
    hash_name: str  # 'sha256' | 'sha384', as hashlib and hmac name them
    hash_len: int
    key_len: int
    iv_len: int = IV_LEN
    aead_factory: Callable[[bytes], AEAD] = field(default=AESGCM, repr=False)
    # hashlib.sha256 is measurably faster than hashlib.new("sha256").
    hash_factory: Callable[[], _Hash] = field(default=hashlib.sha256, repr=False)
    # Hash(""), which the key schedule (§7.1) and HelloRetryRequest need.
    empty_hash: bytes = field(default=b"", repr=False)
    # TLS 1.2 only (RFC 5246 §6.2.3.3): the explicit nonce each record
    # carries (8 for AES-GCM, RFC 5288 §3; 0 for ChaCha20-Poly1305, RFC 7905
    # §2), and the certificate key the suite needs ("ECDSA" or "RSA";
    # ECDSA suites also take Ed25519 keys, RFC 8422 §5.1.3).
    record_iv_len: int = 0
    authentication: str = ""

    def aead(self, key: bytes) -> AEAD:
        """One AEAD object per traffic key; it is reused for every record."""
        if len(key) != self.key_len:
            raise ValueError(f"{self.suite.name} takes a {self.key_len}-byte key")
        return self.aead_factory(key)

    def new_hash(self) -> _Hash:
        return self.hash_factory()


def _params(
    suite: CipherSuite,
    hash_factory: Callable[[], _Hash],
    key_len: int,
    aead_factory: Callable[[bytes], AEAD],
) -> SuiteParams:
    empty = hash_factory()
    return SuiteParams(
        suite=suite,
        hash_name=empty.name,
        hash_len=empty.digest_size,
        key_len=key_len,
        aead_factory=aead_factory,
        hash_factory=hash_factory,
        empty_hash=empty.digest(),
    )


SUITES: MappingProxyType[int, SuiteParams] = MappingProxyType(
    {
        CipherSuite.TLS_AES_128_GCM_SHA256: _params(
            CipherSuite.TLS_AES_128_GCM_SHA256, hashlib.sha256, 16, AESGCM
        ),
        CipherSuite.TLS_AES_256_GCM_SHA384: _params(
            CipherSuite.TLS_AES_256_GCM_SHA384, hashlib.sha384, 32, AESGCM
        ),
        CipherSuite.TLS_CHACHA20_POLY1305_SHA256: _params(
            CipherSuite.TLS_CHACHA20_POLY1305_SHA256, hashlib.sha256, 32, ChaCha20Poly1305
        ),
    }
)


def _params12(
    suite: CipherSuite, hash_factory: Callable[[], _Hash], key_len: int, authentication: str
) -> SuiteParams:
    chacha = "CHACHA20" in suite.name
    base = _params(suite, hash_factory, key_len, ChaCha20Poly1305 if chacha else AESGCM)
    # RFC 5288 §3: a 4-byte implicit salt and an 8-byte explicit nonce; RFC
    # 7905 §2: a 12-byte IV and no explicit part.
    return dataclasses.replace(
        base,
        iv_len=12 if chacha else 4,
        record_iv_len=0 if chacha else 8,
        authentication=authentication,
    )


_S = CipherSuite
# TLS 1.2's AEAD suites with ECDHE (RFC 5289 §3.2, RFC 7905 §2); the PRF hash
# is the suite's (SHA-384 for AES-256-GCM, SHA-256 otherwise).
TLS12_SUITES: MappingProxyType[int, SuiteParams] = MappingProxyType(
    {
        _S.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256: _params12(
            _S.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, hashlib.sha256, 16, "ECDSA"
        ),
        _S.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256: _params12(
            _S.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, hashlib.sha256, 16, "RSA"
        ),
        _S.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384: _params12(
            _S.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, hashlib.sha384, 32, "ECDSA"
        ),
        _S.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384: _params12(
            _S.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384, hashlib.sha384, 32, "RSA"
        ),
        _S.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256: _params12(
            _S.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, hashlib.sha256, 32, "ECDSA"
        ),
        _S.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256: _params12(
            _S.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256, hashlib.sha256, 32, "RSA"
        ),
    }
)


def lookup_suite12(value: int) -> SuiteParams | None:
    """The parameters of a TLS 1.2 suite we implement, or None (any other value)."""
    return TLS12_SUITES.get(value)


def lookup_suite(value: int) -> SuiteParams | None:
    """The parameters of a TLS 1.3 suite we implement, or None (any other value)."""
    return SUITES.get(value)


# The hashes our suites name (TLS 1.3's, RFC 8446 §B.4; TLS 1.2's PRF
# hashes, RFC 5288 §3, RFC 5289 §3.2, RFC 7905 §2), as `cryptography`'s
# stateless descriptions for its HMAC (shared), and their lengths.
HASH_ALGORITHMS: MappingProxyType[str, hashes.HashAlgorithm] = MappingProxyType(
    {"sha256": hashes.SHA256(), "sha384": hashes.SHA384()}
)
HASH_LENGTHS: MappingProxyType[str, int] = MappingProxyType(
    {name: algorithm.digest_size for name, algorithm in HASH_ALGORITHMS.items()}
)


def hash_params(hash_name: str) -> tuple[Callable[[], _Hash], int]:
    """The hashlib constructor and output length for 'sha256' or 'sha384'."""
    for params in SUITES.values():
        if params.hash_name == hash_name:
            return params.hash_factory, params.hash_len
    raise ValueError(f"no TLS 1.3 suite uses hash {hash_name!r}")
