"""The TLS 1.2 PRF against published known answers (RFC 5246 §5, RFC 7627 §4)."""

from __future__ import annotations

import hashlib
import shutil
import subprocess

import pytest

from pinata.tls.prf import (
    CLIENT_FINISHED_LABEL,
    SERVER_FINISHED_LABEL,
    extended_master_secret,
    key_block,
    prf,
    verify_data,
)

# The P_SHA256 and P_SHA384 vectors posted to the IETF TLS list for RFC 5246
# (https://www.ietf.org/mail-archive/web/tls/current/msg03416.html), label
# "test label"; OpenSSL's TLS1-PRF KDF gives the same bytes.
_SHA256_SECRET = bytes.fromhex("9bbe436ba940f017b17652849a71db35")
_SHA256_SEED = bytes.fromhex("a0ba9f936cda311827a6f796ffd5198c")
_SHA256_OUTPUT = bytes.fromhex(
    "e3f229ba727be17b8d122620557cd453c2aab21d07c3d495329b52d4e61edb5a"
    "6b301791e90d35c9c9a46b4e14baf9af0fa022f7077def17abfd3797c0564bab"
    "4fbc91666e9def9b97fce34f796789baa48082d122ee42c5a72e5a5110fff701"
    "87347b66"
)
_SHA384_SECRET = bytes.fromhex("b80b733d6ceefcdc71566ea48e5567df")
_SHA384_SEED = bytes.fromhex("cd665cf6a8447dd6ff8b27555edb7465")
_SHA384_OUTPUT = bytes.fromhex(
    "7b0c18e9ced410ed1804f2cfa34a336a1c14dffb4900bb5fd7942107e81c83cd"
    "e9ca0faa60be9fe34f82b1233c9146a0e534cb400fed2700884f9dc236f80edd"
    "8bfa961144c9e8d792eca722a7b32fc3d416d473ebc2c5fd4abfdad05d918425"
    "9b5bf8cd4d90fa0d31e2dec479e4f1a26066f2eea9a69236a3e52655c9e9aee6"
    "91c8f3a26854308d5eaa3be85e0990703d73e56f"
)

# Extended master secrets computed with OpenSSL 3.0's TLS1-PRF KDF:
#   openssl kdf -keylen 48 -kdfopt digest:SHA2-256 -kdfopt hexsecret:<PMS>
#     -kdfopt seed:"extended master secret" -kdfopt hexseed:<session hash> TLS1-PRF
_PMS = bytes(range(1, 49))
_EMS_SHA256 = bytes.fromhex(
    "9e202bc9fa006ec33b8263d4ab01b77f809d2674d63f4637a9767bdf8074dd2f"
    "8a164b24f2964d4825829a0eddb6c413"
)
_EMS_SHA384 = bytes.fromhex(
    "d646807d52d1e09e316395e545a14aa6e9725dfd9a181c3566fb82b5cf563513"
    "31b8812c1dc364987836fd4a534a318d"
)


def test_p_sha256_matches_the_published_vector() -> None:
    assert len(_SHA256_OUTPUT) == 100
    assert prf("sha256", _SHA256_SECRET, b"test label", _SHA256_SEED, 100) == _SHA256_OUTPUT


def test_p_sha384_matches_the_published_vector() -> None:
    assert len(_SHA384_OUTPUT) == 148
    assert prf("sha384", _SHA384_SECRET, b"test label", _SHA384_SEED, 148) == _SHA384_OUTPUT


def test_a_shorter_output_is_a_prefix_and_any_change_changes_it() -> None:
    assert prf("sha256", _SHA256_SECRET, b"test label", _SHA256_SEED, 33) == _SHA256_OUTPUT[:33]
    assert prf("sha256", _SHA256_SECRET, b"test labek", _SHA256_SEED, 100) != _SHA256_OUTPUT
    assert prf("sha256", _SHA256_SECRET[:-1], b"test label", _SHA256_SEED, 100) != _SHA256_OUTPUT


@pytest.mark.parametrize(
    ("hash_name", "expected"), [("sha256", _EMS_SHA256), ("sha384", _EMS_SHA384)]
)
def test_extended_master_secret_known_answer(hash_name: str, expected: bytes) -> None:
    session_hash = hashlib.new(hash_name, b"handshake messages").digest()
    assert extended_master_secret(hash_name, _PMS, session_hash) == expected


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
def test_extended_master_secret_agrees_with_openssl_for_another_input() -> None:
    pms, session_hash = bytes(range(100, 148)), hashlib.sha256(b"other").digest()
    command = [
        "openssl", "kdf", "-keylen", "48", "-kdfopt", "digest:SHA2-256",
        "-kdfopt", f"hexsecret:{pms.hex()}", "-kdfopt", "seed:extended master secret",
        "-kdfopt", f"hexseed:{session_hash.hex()}", "TLS1-PRF",
    ]  # fmt: skip
    out = subprocess.run(command, capture_output=True, text=True, check=True, timeout=30)
    expected = bytes.fromhex(out.stdout.strip().replace(":", ""))
    assert extended_master_secret("sha256", pms, session_hash) == expected


def test_key_block_is_split_in_rfc_order() -> None:
    ms, sr, cr = bytes(48), bytes(range(32)), bytes(range(32, 64))
    block = prf("sha256", ms, b"key expansion", sr + cr, 2 * (16 + 4))
    keys = key_block("sha256", ms, sr, cr, key_len=16, iv_len=4)
    assert keys.client_write_key == block[:16]
    assert keys.server_write_key == block[16:32]
    assert keys.client_write_iv == block[32:36]
    assert keys.server_write_iv == block[36:40]
    assert "client_write_key=" not in repr(keys)


def test_verify_data_is_twelve_bytes_and_label_bound() -> None:
    ms, h = bytes(range(48)), hashlib.sha256(b"x").digest()
    client = verify_data("sha256", ms, CLIENT_FINISHED_LABEL, h)
    assert len(client) == 12
    assert client == prf("sha256", ms, b"client finished", h, 12)
    assert client != verify_data("sha256", ms, SERVER_FINISHED_LABEL, h)


def test_unknown_hash_or_huge_output_is_a_local_error() -> None:
    with pytest.raises(ValueError):
        prf("sha1", b"k", b"l", b"s", 12)
    with pytest.raises(ValueError):
        prf("sha256", b"k", b"l", b"s", 1 << 20)
