"""The TLS 1.3 key schedule (RFC 8446 §7.1-§7.3), without PSKs.

HKDF (RFC 5869) is written out over `cryptography`'s HMAC: every label TLS
1.3 uses asks for at most one hash block of output, so Expand is a single
HMAC, and a handshake's whole schedule is nineteen of them per role (Early
Secret and its "derived" child are constants, computed once at import).
Derivations under one secret (a traffic secret's key and IV; the two
traffic secrets of a stage) key the HMAC once and start each from a copy of
the keyed state, as `prf.py` does: keying is half the cost of an HMAC, and
the one-shot `hmac.digest` also fetches the MAC and hash by name under
OpenSSL 3 each call (issue 18: 2-5 us per HMAC inside a handshake).

Secrets travel as plain bytes between pure functions; the dataclasses that
group them hide their fields from repr so no secret reaches a log or trace.
"""

from __future__ import annotations

import functools
import hmac
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import NamedTuple

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.hmac import HMAC

from pinata.tls.suites import HASH_ALGORITHMS, HASH_LENGTHS, SUITES, SuiteParams, hash_params

# RFC 8446 §7.1: HkdfLabel.label = "tls13 " + Label.
_LABEL_PREFIX = b"tls13 "




def _hmac(hash_name: str, key: bytes, message: bytes) -> bytes:
    """HMAC(key, message), for a key that authenticates one message only.

    Raises KeyError for a hash no TLS 1.3 suite uses (our bug, never input).
    Several messages under one key copy a keyed `HMAC` instead (inline:
    its methods are C, and a helper would be one Python frame per HMAC).
    """
    state = HMAC(key, HASH_ALGORITHMS[hash_name])
    state.update(message)
    return state.finalize()


def hkdf_extract(hash_name: str, salt: bytes, ikm: bytes) -> bytes:
    """HKDF-Extract (RFC 5869 §2.2); an empty salt acts as Hash.length zeros."""
    return _hmac(hash_name, salt, ikm)


def _hkdf_label(label: bytes, context: bytes, length: int) -> bytes:
    # §7.1: struct { uint16 length; opaque label<7..255>; opaque context<0..255>; }
    full = _LABEL_PREFIX + label
    if len(full) > 255 or len(context) > 255 or not 0 <= length <= 0xFFFF:
        raise ValueError("HkdfLabel field out of range")
    return length.to_bytes(2, "big") + bytes((len(full),)) + full + bytes((len(context),)) + context


def hkdf_expand(hash_name: str, prk: bytes, info: bytes, length: int) -> bytes:
    """HKDF-Expand (RFC 5869 §2.3)."""
    if length <= HASH_LENGTHS.get(hash_name, 0):
        # Every TLS 1.3 label needs one block: T(1) = HMAC(PRK, info || 0x01).
        return _hmac(hash_name, prk, info + b"\x01")[:length]
    keyed = HMAC(prk, HASH_ALGORITHMS[hash_name])
    out = b""
    block = b""
    counter = 1
    while len(out) < length:
        if counter > 255:
            raise ValueError("HKDF-Expand output too long")
        state = keyed.copy()
        state.update(block + info + bytes((counter,)))
        block = state.finalize()
        out += block
        counter += 1
    return out[:length]


@functools.lru_cache(maxsize=64)
def _label_head(label: bytes, length: int) -> bytes:
    # The HkdfLabel up to its context: the same few (label, length) pairs
    # recur in every handshake, so they are built once.
    return _hkdf_label(label, b"", length)[:-1]


@functools.lru_cache(maxsize=64)
def _empty_context_info(label: bytes, length: int) -> bytes:
    # HKDF-Expand's whole info for a label with an empty context ("key",
    # "iv", "finished", "traffic upd"): HkdfLabel, then T(1)'s counter 0x01.
    return _label_head(label, length) + b"\x00\x01"


def hkdf_expand_label(
    hash_name: str, secret: bytes, label: bytes, context: bytes, length: int
) -> bytes:
    """HKDF-Expand-Label(Secret, Label, Context, Length) (RFC 8446 §7.1)."""
    if length <= HASH_LENGTHS.get(hash_name, 0) and len(context) <= 255:
        # One block, as every TLS 1.3 label needs: T(1) = HMAC(PRK, info || 0x01).
        info = b"".join((_label_head(label, length), bytes((len(context),)), context, b"\x01"))
        return _hmac(hash_name, secret, info)[:length]
    return hkdf_expand(hash_name, secret, _hkdf_label(label, context, length), length)


def derive_secret(hash_name: str, secret: bytes, label: bytes, transcript_hash: bytes) -> bytes:
    """Derive-Secret(Secret, Label, Messages) given Transcript-Hash(Messages) (§7.1)."""
    _, hash_len = hash_params(hash_name)
    return hkdf_expand_label(hash_name, secret, label, transcript_hash, hash_len)


@dataclass(frozen=True)
class HandshakeSecrets:
    client_handshake_traffic_secret: bytes = field(repr=False)
    server_handshake_traffic_secret: bytes = field(repr=False)
    handshake_secret: bytes = field(repr=False)


@dataclass(frozen=True)
class ApplicationSecrets:
    client_application_traffic_secret_0: bytes = field(repr=False)
    server_application_traffic_secret_0: bytes = field(repr=False)
    master_secret: bytes = field(repr=False)


# The labels the schedule derives Hash.length bytes with from a transcript
# hash (§7.1): each one's HkdfLabel up to its context is a constant per hash.
_SECRET_LABELS = (
    b"derived",
    b"c hs traffic",
    b"s hs traffic",
    b"c ap traffic",
    b"s ap traffic",
    b"exp master",
)


class _PerHash(NamedTuple):
    """What the schedule takes from its hash alone, built once at import and
    shared: a derivation is then one join and one HMAC, with no frame
    between the schedule and HMAC, and a schedule holds one reference to it."""

    hash_len: int
    algorithm: hashes.HashAlgorithm
    zeros: bytes
    empty_hash: bytes
    early_secret: bytes
    # Derive-Secret(Early Secret, "derived", "")
    derived_early: bytes
    heads: Mapping[bytes, bytes]
    finished_info: bytes  # §4.4.4
    update_info: bytes  # §7.2


def _per_hash(hash_name: str, hash_len: int) -> _PerHash:
    # §7.1: with no PSK, "PSK" and the extraction salt are Hash.length zeros,
    # so Early Secret and Derive-Secret(., "derived", "") are constants.
    zeros = bytes(hash_len)
    early = hkdf_extract(hash_name, zeros, zeros)
    empty_hash = hash_params(hash_name)[0]().digest()
    return _PerHash(
        hash_len=hash_len,
        algorithm=HASH_ALGORITHMS[hash_name],
        zeros=zeros,
        empty_hash=empty_hash,
        early_secret=early,
        derived_early=derive_secret(hash_name, early, b"derived", empty_hash),
        heads=MappingProxyType({label: _label_head(label, hash_len) for label in _SECRET_LABELS}),
        finished_info=_empty_context_info(b"finished", hash_len),
        update_info=_empty_context_info(b"traffic upd", hash_len),
    )


_PER_HASH: Mapping[str, _PerHash] = MappingProxyType(
    {name: _per_hash(name, n) for name, n in (("sha256", 32), ("sha384", 48))}
)


def traffic_key_iv(params: SuiteParams, secret: bytes) -> tuple[bytes, bytes]:
    """§7.3: [sender]_write_key and [sender]_write_iv of a traffic secret."""
    name, key_len, iv_len = params.hash_name, params.key_len, params.iv_len
    if max(key_len, iv_len) > params.hash_len:
        return (
            hkdf_expand_label(name, secret, b"key", b"", key_len),
            hkdf_expand_label(name, secret, b"iv", b"", iv_len),
        )
    # Every suite's key and IV are shorter than its hash: one HMAC block
    # each, both under the traffic secret, which is keyed once.
    key = HMAC(secret, HASH_ALGORITHMS[name])
    iv = key.copy()
    key.update(_empty_context_info(b"key", key_len))
    iv.update(_empty_context_info(b"iv", iv_len))
    return key.finalize()[:key_len], iv.finalize()[:iv_len]


class KeySchedule:
    """The §7.1 schedule for one suite's hash, with PSK and early data absent."""

    # Three slots: a schedule is held by every handshake waiting for the
    # peer's Finished, and what its hash fixes is shared (`_PerHash`).
    __slots__ = ("_c", "_hash_name", "params")

    def __init__(self, params: SuiteParams) -> None:
        self.params = params
        self._hash_name = params.hash_name
        self._c = _PER_HASH[params.hash_name]

    def __repr__(self) -> str:
        return f"KeySchedule({self._hash_name})"

    @property
    def early_secret(self) -> bytes:
        """§7.1's Early Secret without a PSK: a constant of the hash."""
        return self._c.early_secret

    @property
    def empty_hash(self) -> bytes:
        """Transcript-Hash of no messages, Hash("")."""
        return self._c.empty_hash

    def _expand_label(self, secret: bytes, label: bytes, context: bytes, length: int) -> bytes:
        return hkdf_expand_label(self._hash_name, secret, label, context, length)

    def derive_secret(self, secret: bytes, label: bytes, transcript_hash: bytes) -> bytes:
        """Derive-Secret(Secret, Label, Messages) given Transcript-Hash(Messages) (§7.1)."""
        return self._derive_keyed(HMAC(secret, self._c.algorithm), secret, label, transcript_hash)

    def _derive_keyed(
        self, keyed: HMAC, secret: bytes, label: bytes, transcript_hash: bytes
    ) -> bytes:
        # Derive-Secret with `keyed`, an HMAC keyed with `secret` and left
        # unchanged, shared by the derivations a stage makes under one secret.
        head = self._c.heads.get(label)
        if head is None or len(transcript_hash) > 255:
            return self._expand_label(secret, label, transcript_hash, self._c.hash_len)
        # One block (Hash.length bytes): T(1) = HMAC(Secret, HkdfLabel || 0x01).
        state = keyed.copy()
        state.update(b"".join((head, bytes((len(transcript_hash),)), transcript_hash, b"\x01")))
        return state.finalize()

    def handshake_secrets(self, shared_secret: bytes, hello_hash: bytes) -> HandshakeSecrets:
        """From the (EC)DHE shared secret and Transcript-Hash(ClientHello..ServerHello)."""
        handshake_secret = hkdf_extract(self._hash_name, self._c.derived_early, shared_secret)
        keyed = HMAC(handshake_secret, self._c.algorithm)
        return HandshakeSecrets(
            client_handshake_traffic_secret=self._derive_keyed(
                keyed, handshake_secret, b"c hs traffic", hello_hash
            ),
            server_handshake_traffic_secret=self._derive_keyed(
                keyed, handshake_secret, b"s hs traffic", hello_hash
            ),
            handshake_secret=handshake_secret,
        )

    def application_secrets(
        self, handshake_secret: bytes, server_finished_hash: bytes
    ) -> ApplicationSecrets:
        """From Handshake Secret and Transcript-Hash(ClientHello..server Finished)."""
        derived = self.derive_secret(handshake_secret, b"derived", self._c.empty_hash)
        master_secret = hkdf_extract(self._hash_name, derived, self._c.zeros)
        keyed = HMAC(master_secret, self._c.algorithm)
        return ApplicationSecrets(
            client_application_traffic_secret_0=self._derive_keyed(
                keyed, master_secret, b"c ap traffic", server_finished_hash
            ),
            server_application_traffic_secret_0=self._derive_keyed(
                keyed, master_secret, b"s ap traffic", server_finished_hash
            ),
            master_secret=master_secret,
        )

    def exporter_master_secret(self, master_secret: bytes, server_finished_hash: bytes) -> bytes:
        """§7.1's exporter_master_secret, derived only when asked: we offer no
        exporter (RFC 8446 §7.5), so a handshake never asks, and one HMAC
        fewer is spent per handshake (issue 18)."""
        return self.derive_secret(master_secret, b"exp master", server_finished_hash)

    def finished_key(self, base_key: bytes) -> bytes:
        """§4.4.4: finished_key = HKDF-Expand-Label(BaseKey, "finished", "", Hash.length)."""
        return _hmac(self._hash_name, base_key, self._c.finished_info)

    def finished_verify_data(self, base_key: bytes, transcript_hash: bytes) -> bytes:
        """§4.4.4: verify_data = HMAC(finished_key, Transcript-Hash(...))."""
        return _hmac(self._hash_name, self.finished_key(base_key), transcript_hash)

    def next_traffic_secret(self, secret: bytes) -> bytes:
        """§7.2: application_traffic_secret_N+1, after a KeyUpdate."""
        return _hmac(self._hash_name, secret, self._c.update_info)

    def finished_matches(self, base_key: bytes, transcript_hash: bytes, verify_data: bytes) -> bool:
        """Whether a received Finished is right (§4.4.4), compared in constant time."""
        expected = self.finished_verify_data(base_key, transcript_hash)
        return hmac.compare_digest(expected, verify_data)

    def traffic_key_iv(self, secret: bytes) -> tuple[bytes, bytes]:
        """§7.3: the write key and write IV for a traffic secret."""
        return traffic_key_iv(self.params, secret)


# One schedule per TLS 1.3 suite, made at import: a schedule is only its
# suite's parameters and what its hash fixes, so every handshake of a suite
# shares it, and one waiting for its peer holds none of its own (issue 18).
_SCHEDULES: Mapping[int, KeySchedule] = MappingProxyType(
    {suite: KeySchedule(params) for suite, params in SUITES.items()}
)


def schedule_for(params: SuiteParams) -> KeySchedule:
    """The shared §7.1 schedule of `params`'s suite (TLS 1.3), or a new one
    for parameters outside `SUITES` (a test's own)."""
    schedule = _SCHEDULES.get(params.suite)
    if schedule is None or schedule.params is not params:
        return KeySchedule(params)
    return schedule
