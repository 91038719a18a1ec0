from __future__ import annotations

import hashlib

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305
from hypothesis import given, settings
from hypothesis import strategies as st

from pinata.tls.constants import CipherSuite
from pinata.tls.suites import SUITES, hash_params, lookup_suite

# RFC 8446 §B.4: (hash, key length, AEAD) of each TLS 1.3 suite.
EXPECTED = {
    CipherSuite.TLS_AES_128_GCM_SHA256: ("sha256", 32, 16, AESGCM),
    CipherSuite.TLS_AES_256_GCM_SHA384: ("sha384", 48, 32, AESGCM),
    CipherSuite.TLS_CHACHA20_POLY1305_SHA256: ("sha256", 32, 32, ChaCha20Poly1305),
}


@pytest.mark.parametrize("suite", list(EXPECTED))
def test_suite_parameters(suite: CipherSuite) -> None:
    params = lookup_suite(suite)
    assert params is not None and params.suite == suite
    hash_name, hash_len, key_len, aead_type = EXPECTED[suite]
    assert (params.hash_name, params.hash_len, params.key_len, params.iv_len) == (
        hash_name,
        hash_len,
        key_len,
        12,
    )
    assert isinstance(params.aead(bytes(key_len)), aead_type)
    assert params.empty_hash == hashlib.new(hash_name).digest()
    assert params.new_hash().name == hash_name


def test_only_tls13_suites() -> None:
    assert set(SUITES) == set(EXPECTED)
    assert lookup_suite(CipherSuite.TLS_EMPTY_RENEGOTIATION_INFO_SCSV) is None


@settings(deadline=None)
@given(st.integers(min_value=0, max_value=0xFFFF))
def test_lookup_is_total(value: int) -> None:
    params = lookup_suite(value)
    assert (params is not None) == (value in EXPECTED)


def test_wrong_key_length_refused() -> None:
    params = lookup_suite(CipherSuite.TLS_AES_128_GCM_SHA256)
    assert params is not None
    with pytest.raises(ValueError):
        params.aead(bytes(32))


def test_hash_params() -> None:
    assert hash_params("sha384")[1] == 48
    assert hash_params("sha256")[0]().name == "sha256"
    with pytest.raises(ValueError):
        hash_params("md5")
