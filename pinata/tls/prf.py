"""The TLS 1.2 pseudorandom function and what is derived from it (RFC 5246
§5, §6.3, §7.4.9, §8.1; RFC 7627 §4).

Pure functions over bytes, written over `cryptography`'s HMAC. Only
SHA-256 and SHA-384 are used: every TLS 1.2 suite we speak names one of
them as its PRF hash (RFC 5288 §3, RFC 5289 §3.2, RFC 7905 §2).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cryptography.hazmat.primitives import hmac

from pinata.tls.suites import HASH_ALGORITHMS, HASH_LENGTHS

# RFC 5246 §8.1: master_secret is always 48 bytes.
MASTER_SECRET_LEN = 48
# RFC 5246 §7.4.9: verify_data_length is 12 for every suite we speak.
VERIFY_DATA_LEN = 12
# A key block never needs more: two 32-byte keys and two 12-byte IVs.
_MAX_OUTPUT = 1024

CLIENT_FINISHED_LABEL = b"client finished"
SERVER_FINISHED_LABEL = b"server finished"


def prf(hash_name: str, secret: bytes, label: bytes, seed: bytes, length: int) -> bytes:
    """PRF(secret, label, seed) = P_<hash>(secret, label + seed) (RFC 5246 §5).

    Takes 'sha256' or 'sha384', the label as ASCII bytes, and the output
    length (at most 1024 bytes); returns exactly `length` bytes. Raises
    `ValueError` for another hash or length (a local mistake, never peer input).
    """
    if hash_name not in HASH_LENGTHS:
        raise ValueError(f"no TLS 1.2 PRF over {hash_name!r}")
    if not 0 <= length <= _MAX_OUTPUT:
        raise ValueError(f"PRF output of {length} bytes")
    full_seed = label + seed
    out = bytearray()
    # Every HMAC of P_hash is under `secret`: it is keyed once and each HMAC
    # starts from a copy of that state. The one-shot `hmac.digest` keys
    # afresh per call and, under OpenSSL 3, looks the MAC and the hash up
    # by name each time (issue 18: 2-5 us per HMAC inside a handshake,
    # against a fraction of that for a copy).
    keyed = hmac.HMAC(secret, HASH_ALGORITHMS[hash_name])
    # §5: A(0) = seed, A(i) = HMAC_hash(secret, A(i-1));
    # P_hash = HMAC_hash(secret, A(1) + seed) + HMAC_hash(secret, A(2) + seed) + ...
    a = full_seed
    while len(out) < length:
        step = keyed.copy()
        step.update(a)
        a = step.finalize()
        step = keyed.copy()
        step.update(a + full_seed)
        out += step.finalize()
    return bytes(out[:length])


def extended_master_secret(hash_name: str, pre_master_secret: bytes, session_hash: bytes) -> bytes:
    """master_secret = PRF(pre_master_secret, "extended master secret",
    session_hash)[0..47] (RFC 7627 §4); `session_hash` is Hash(handshake
    messages) up to and including ClientKeyExchange (§3)."""
    return prf(hash_name, pre_master_secret, b"extended master secret", session_hash, 48)


def verify_data(hash_name: str, master_secret: bytes, label: bytes, handshake_hash: bytes) -> bytes:
    """Finished.verify_data = PRF(master_secret, finished_label,
    Hash(handshake_messages))[0..11] (RFC 5246 §7.4.9); `label` is
    `CLIENT_FINISHED_LABEL` or `SERVER_FINISHED_LABEL`."""
    return prf(hash_name, master_secret, label, handshake_hash, VERIFY_DATA_LEN)


@dataclass(frozen=True)
class KeyBlock:
    """One connection's keys, split from the key block (RFC 5246 §6.3). AEAD
    suites have no MAC keys; `*_iv` is the implicit part of the nonce (the
    4-byte salt of RFC 5288 §3, the 12-byte IV of RFC 7905 §2). Hidden from
    repr: these are secrets."""

    client_write_key: bytes = field(repr=False)
    server_write_key: bytes = field(repr=False)
    client_write_iv: bytes = field(repr=False)
    server_write_iv: bytes = field(repr=False)


def key_block(
    hash_name: str,
    master_secret: bytes,
    server_random: bytes,
    client_random: bytes,
    key_len: int,
    iv_len: int,
) -> KeyBlock:
    """key_block = PRF(master_secret, "key expansion", server_random +
    client_random), cut as client key, server key, client IV, server IV
    (RFC 5246 §6.3; MAC keys have length 0 for AEAD suites)."""
    block = prf(
        hash_name,
        master_secret,
        b"key expansion",
        server_random + client_random,
        2 * (key_len + iv_len),
    )
    k, i = key_len, iv_len
    return KeyBlock(
        client_write_key=block[:k],
        server_write_key=block[k : 2 * k],
        client_write_iv=block[2 * k : 2 * k + i],
        server_write_iv=block[2 * k + i : 2 * k + 2 * i],
    )


__all__ = [
    "CLIENT_FINISHED_LABEL",
    "MASTER_SECRET_LEN",
    "SERVER_FINISHED_LABEL",
    "VERIFY_DATA_LEN",
    "KeyBlock",
    "extended_master_secret",
    "key_block",
    "prf",
    "verify_data",
]
