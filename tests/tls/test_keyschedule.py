"""HKDF and the key schedule (RFC 5869, RFC 8446 §7), and the transcript
hash (§4.4.1), which feeds it. RFC 8448's full trace is in
test_rfc8448_crypto.py; here: RFC 5869 vectors, cross-checks against two
independent HKDF implementations, SHA-384, KeyUpdate, and HelloRetryRequest.
"""

from __future__ import annotations

import hashlib
import hmac

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand
from hypothesis import given, settings
from hypothesis import strategies as st
from tlslite.utils.cryptomath import HKDF_expand_label as reference_expand_label

from pinata.tls.constants import CipherSuite
from pinata.tls.errors import LocalProtocolError
from pinata.tls.keyschedule import (
    KeySchedule,
    derive_secret,
    hkdf_expand,
    hkdf_expand_label,
    hkdf_extract,
    traffic_key_iv,
)
from pinata.tls.suites import SUITES, SuiteParams, lookup_suite
from pinata.tls.transcript import Transcript

SHA256 = lookup_suite(CipherSuite.TLS_AES_128_GCM_SHA256)
SHA384 = lookup_suite(CipherSuite.TLS_AES_256_GCM_SHA384)
CHACHA = lookup_suite(CipherSuite.TLS_CHACHA20_POLY1305_SHA256)
assert SHA256 is not None and SHA384 is not None and CHACHA is not None

hash_names = st.sampled_from(["sha256", "sha384"])
secrets = st.binary(min_size=32, max_size=48)


def test_rfc5869_case_1() -> None:
    # RFC 5869 §A.1 (SHA-256).
    prk = hkdf_extract("sha256", bytes(range(13)), b"\x0b" * 22)
    assert prk == bytes.fromhex("077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5")
    okm = hkdf_expand("sha256", prk, bytes(range(0xF0, 0xFA)), 42)
    assert okm == bytes.fromhex(
        "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865"
    )


def test_rfc5869_case_3_empty_salt() -> None:
    # RFC 5869 §A.3: zero-length salt and info.
    prk = hkdf_extract("sha256", b"", b"\x0b" * 22)
    assert prk == bytes.fromhex("19ef24a32c717b167f33a91d6f648bdf96596776afdb6377ac434c1c293ccb04")
    okm = hkdf_expand("sha256", prk, b"", 42)
    assert okm == bytes.fromhex(
        "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8"
    )


@settings(deadline=None)
@given(hash_names, secrets, st.binary(max_size=80), st.integers(min_value=1, max_value=300))
def test_expand_matches_cryptography(hash_name: str, prk: bytes, info: bytes, n: int) -> None:
    algorithm = hashes.SHA256() if hash_name == "sha256" else hashes.SHA384()
    assert hkdf_expand(hash_name, prk, info, n) == HKDFExpand(algorithm, n, info).derive(prk)


@settings(deadline=None)
@given(
    hash_names,
    secrets,
    st.binary(min_size=1, max_size=40),
    st.binary(max_size=64),
    st.integers(min_value=1, max_value=100),
)
def test_expand_label_matches_tlslite(
    hash_name: str, secret: bytes, label: bytes, context: bytes, n: int
) -> None:
    ours = hkdf_expand_label(hash_name, secret, label, context, n)
    theirs = reference_expand_label(
        bytearray(secret), bytearray(label), bytearray(context), n, hash_name
    )
    assert ours == bytes(theirs)


@settings(deadline=None)
@given(hash_names, secrets, st.binary(max_size=48))
def test_schedule_agrees_with_free_functions(
    hash_name: str, secret: bytes, transcript_hash: bytes
) -> None:
    params = SHA256 if hash_name == "sha256" else SHA384
    ks = KeySchedule(params)
    assert ks.derive_secret(secret, b"c hs traffic", transcript_hash) == derive_secret(
        hash_name, secret, b"c hs traffic", transcript_hash
    )
    assert ks.next_traffic_secret(secret) == hkdf_expand_label(
        hash_name, secret, b"traffic upd", b"", params.hash_len
    )


@settings(deadline=None)
@given(
    hash_names,
    secrets,
    st.binary(max_size=48),
    st.sampled_from(
        [b"derived", b"c hs traffic", b"s hs traffic", b"c ap traffic", b"s ap traffic",
         b"exp master", b"res master", b"c e traffic"]
    ),
)
def test_every_label_derives_as_hkdf_expand_label_says(
    hash_name: str, secret: bytes, transcript_hash: bytes, label: bytes
) -> None:
    # The schedule's labels are built once per hash (the last two are not
    # among them, and take the general path): both paths are §7.1's.
    params = SHA256 if hash_name == "sha256" else SHA384
    assert KeySchedule(params).derive_secret(secret, label, transcript_hash) == (
        hkdf_expand_label(hash_name, secret, label, transcript_hash, params.hash_len)
    )
    assert KeySchedule(params).finished_key(secret) == hkdf_expand_label(
        hash_name, secret, b"finished", b"", params.hash_len
    )


def test_sha384_schedule_matches_tlslite() -> None:
    ks = KeySchedule(SHA384)
    assert ks.early_secret == hmac.digest(bytes(48), bytes(48), "sha384")
    shared = bytes(range(32))
    hello = hashlib.sha384(b"hello").digest()
    hs = ks.handshake_secrets(shared, hello)
    derived = bytes(
        reference_expand_label(
            bytearray(ks.early_secret),
            bytearray(b"derived"),
            bytearray(hashlib.sha384().digest()),
            48,
            "sha384",
        )
    )
    assert hs.handshake_secret == hmac.digest(derived, shared, "sha384")
    assert hs.server_handshake_traffic_secret == bytes(
        reference_expand_label(
            bytearray(hs.handshake_secret),
            bytearray(b"s hs traffic"),
            bytearray(hello),
            48,
            "sha384",
        )
    )
    key, iv = ks.traffic_key_iv(hs.server_handshake_traffic_secret)
    assert (len(key), len(iv)) == (32, 12)
    assert len(ks.finished_verify_data(hs.client_handshake_traffic_secret, hello)) == 48


def test_chacha_key_length() -> None:
    key, iv = KeySchedule(CHACHA).traffic_key_iv(bytes(32))
    assert (len(key), len(iv)) == (32, 12)


def test_key_update_changes_keys() -> None:
    ks = KeySchedule(SHA256)
    secret = bytes(range(32))
    nxt = ks.next_traffic_secret(secret)
    assert nxt != secret and len(nxt) == 32
    assert ks.traffic_key_iv(nxt) != ks.traffic_key_iv(secret)
    assert ks.next_traffic_secret(nxt) != nxt


def test_label_too_long_refused() -> None:
    with pytest.raises(ValueError):
        hkdf_expand_label("sha256", bytes(32), b"x" * 250, b"", 32)
    with pytest.raises(ValueError):
        hkdf_expand_label("sha256", bytes(32), b"x", bytes(256), 32)
    with pytest.raises(ValueError):
        hkdf_expand("sha256", bytes(32), b"", 255 * 32 + 1)


def test_schedule_repr_hides_nothing_secret() -> None:
    assert repr(KeySchedule(SHA256)) == "KeySchedule(sha256)"


# -- Transcript (§4.4.1) -----------------------------------------------------


@settings(deadline=None)
@given(
    st.lists(st.binary(max_size=300), min_size=1, max_size=6),
    st.integers(min_value=0, max_value=6),
    st.sampled_from(["sha256", "sha384"]),
)
def test_transcript_equals_hash_of_concatenation(
    messages: list[bytes], select_at: int, hash_name: str
) -> None:
    t = Transcript()
    select_at = min(select_at, len(messages))
    for i, m in enumerate(messages):
        if i == select_at:
            t = t.select_hash(hash_name)
        t = t.add(m)
    if select_at == len(messages):
        t = t.select_hash(hash_name)
    assert t.digest() == hashlib.new(hash_name, b"".join(messages)).digest()
    assert t.hash_name == hash_name


@pytest.mark.parametrize("params", list(SUITES.values()))
def test_transcript_after_hello_retry_request(params: SuiteParams) -> None:
    hash_name = params.hash_name
    ch1, hrr, ch2 = b"\x01\x00\x00\x03abc", b"\x02\x00\x00\x02hr", b"\x01\x00\x00\x01z"
    t = Transcript()
    t = t.add(ch1)
    t = t.select_hash(hash_name)
    t = t.restart_after_hello_retry_request()
    t = t.add(hrr)
    t = t.add(ch2)
    inner = hashlib.new(hash_name, ch1).digest()
    synthetic = bytes((254, 0, 0, len(inner))) + inner
    assert t.digest() == hashlib.new(hash_name, synthetic + hrr + ch2).digest()


def test_a_transcript_is_a_value() -> None:
    # A state holding a transcript never sees what a later state adds.
    before = Transcript().add(b"ch").select_hash("sha256")
    after = before.add(b"sh")
    assert before.digest() == hashlib.sha256(b"ch").digest()
    assert after.digest() == hashlib.sha256(b"chsh").digest()
    assert before.add(b"other").digest() == hashlib.sha256(b"chother").digest()
    assert after.digest() == hashlib.sha256(b"chsh").digest()


def test_transcript_misuse() -> None:
    t = Transcript()
    with pytest.raises(LocalProtocolError):
        t.digest()
    t = t.add(b"a")
    with pytest.raises(LocalProtocolError):
        t = t.restart_after_hello_retry_request()  # no hash yet
    t = t.select_hash("sha256")
    with pytest.raises(LocalProtocolError):
        t = t.select_hash("sha384")
    t = t.add(b"b")
    with pytest.raises(LocalProtocolError):
        t = t.restart_after_hello_retry_request()  # more than ClientHello1
    assert repr(t) == "Transcript(sha256, 2 messages)"  # message bytes never shown


@pytest.mark.parametrize("params", list(SUITES.values()), ids=lambda p: p.suite.name)
def test_traffic_key_and_iv_are_hkdf_expand_label_for_every_suite(params: SuiteParams) -> None:
    # §7.3; the one-block path is taken for every suite we implement.
    secret = bytes(range(params.hash_len))
    assert traffic_key_iv(params, secret) == (
        hkdf_expand_label(params.hash_name, secret, b"key", b"", params.key_len),
        hkdf_expand_label(params.hash_name, secret, b"iv", b"", params.iv_len),
    )


def _reference_expand_label(
    hash_name: str, secret: bytes, label: bytes, context: bytes, length: int
) -> bytes:
    # §7.1's HkdfLabel built here by hand, expanded by cryptography's HKDF:
    # independent of the schedule's label tables and of its HMAC reuse.
    full = b"tls13 " + label
    info = length.to_bytes(2, "big") + bytes((len(full),)) + full + bytes((len(context),)) + context
    algorithm = hashes.SHA256() if hash_name == "sha256" else hashes.SHA384()
    return HKDFExpand(algorithm, length, info).derive(secret)


@settings(deadline=None)
@given(hash_names, st.binary(min_size=1, max_size=66), st.binary(min_size=32, max_size=48))
def test_stage_secrets_sharing_one_keyed_hmac_are_each_their_own_label(
    hash_name: str, shared_secret: bytes, transcript_hash: bytes
) -> None:
    # Each stage keys its secret's HMAC once and derives both traffic
    # secrets (and a traffic secret's key and IV) from copies: the first
    # derivation must leave the keyed state unchanged for the second.
    params = SHA256 if hash_name == "sha256" else SHA384
    ks = KeySchedule(params)
    n = params.hash_len
    hs = ks.handshake_secrets(shared_secret, transcript_hash)
    assert hs.handshake_secret == hmac.digest(
        _reference_expand_label(hash_name, ks.early_secret, b"derived", ks.empty_hash, n),
        shared_secret,
        hash_name,
    )
    for secret, label in (
        (hs.client_handshake_traffic_secret, b"c hs traffic"),
        (hs.server_handshake_traffic_secret, b"s hs traffic"),
    ):
        assert secret == _reference_expand_label(
            hash_name, hs.handshake_secret, label, transcript_hash, n
        )
    app = ks.application_secrets(hs.handshake_secret, transcript_hash[::-1])
    assert app.master_secret == hmac.digest(
        _reference_expand_label(hash_name, hs.handshake_secret, b"derived", ks.empty_hash, n),
        bytes(n),
        hash_name,
    )
    for secret, label in (
        (app.client_application_traffic_secret_0, b"c ap traffic"),
        (app.server_application_traffic_secret_0, b"s ap traffic"),
    ):
        assert secret == _reference_expand_label(
            hash_name, app.master_secret, label, transcript_hash[::-1], n
        )
    key, iv = ks.traffic_key_iv(app.server_application_traffic_secret_0)
    assert key == _reference_expand_label(
        hash_name, app.server_application_traffic_secret_0, b"key", b"", params.key_len
    )
    assert iv == _reference_expand_label(
        hash_name, app.server_application_traffic_secret_0, b"iv", b"", params.iv_len
    )
