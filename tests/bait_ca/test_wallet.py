"""The bait's key formats against published known answers.

Vectors: the Bitcoin wiki's "Wallet import format" example key; its
"Technical background of version 1 Bitcoin addresses" example; BIP 173's
P2WPKH example (the key 1, whose public key is the generator G).
"""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bait_ca.wallet import (
    SECP256K1_ORDER,
    BitcoinKey,
    WalletError,
    base58check_decode,
    base58check_encode,
    bech32_verify,
    hash160,
)

WIKI_WIF_KEY = 0x0C28FCA386C7A227600B2FE50B7CAE11EC86D3BF1FBE471BE89827E19D72AA1D
WIKI_ADDRESS_KEY = 0x18E14A7B6A307F426A94F8114701E7C8E774E7F9A47E2C2035DB29A206321725


def test_wif_wiki_example() -> None:
    key = BitcoinKey(WIKI_WIF_KEY, compressed=False)
    assert key.wif == "5HueCGU8rMjxEXxiPuD5BDku4MkFqeZyd4dZ1jvhTVqvbTLvyTJ"
    assert BitcoinKey(WIKI_WIF_KEY).wif == "KwdMAjGmerYanjeui5SHS7JkmpZvVipYvB2LJGU1ZxJwYvP98617"
    assert BitcoinKey.from_wif(key.wif) == key


def test_version_1_address_wiki_example() -> None:
    key = BitcoinKey(WIKI_ADDRESS_KEY)
    assert key.public_key.hex() == (
        "0250863ad64a87ae8a2fe83c1af1a8403cb53f53e486d8511dad8a04887e5b2352"
    )
    assert hash160(key.public_key).hex() == "f54a5851e9372b87810a8e60cdd2e7cfd80b6e31"
    assert key.p2pkh_address == "1PMycacnJaSqwwJqjawXBErnLsZ7RkXUAs"
    uncompressed = BitcoinKey(WIKI_ADDRESS_KEY, compressed=False)
    assert uncompressed.p2pkh_address == "16UwLL9Risc3QfPqBUvKofHmBQ7wMtjvM"


def test_bip173_p2wpkh_example() -> None:
    key = BitcoinKey(1)
    assert key.public_key.hex() == (
        "0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798"
    )
    assert key.p2wpkh_address == "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4"
    assert BitcoinKey(1, testnet=True).p2wpkh_address == (
        "tb1qw508d6qejxtdg4y5r3zarvary0c5xw7kxpjzsx"
    )
    assert key.p2pkh_address == "1BgGZ9tcN4rm9KBzDn7KprQz87SZ26SAMH"


@pytest.mark.parametrize(
    "address",
    [
        # BIP 173 valid checksums.
        "a12uel5l",
        "abcdef1qpzry9x8gf2tvdw0s3jn54khce6mua7lmqqqxw",
        "split1checkupstagehandshakeupstreamerranterredcaperred2y9e3w",
    ],
)
def test_bech32_valid_checksums(address: str) -> None:
    assert bech32_verify(address)


def test_bech32_rejects_a_flipped_character() -> None:
    assert not bech32_verify("bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t5")


def test_testnet_formats() -> None:
    key = BitcoinKey(WIKI_ADDRESS_KEY, testnet=True)
    assert key.wif[0] == "c" and key.p2pkh_address[0] in "mn"
    assert key.p2wpkh_address.startswith("tb1q")


def test_key_range_and_bad_wif() -> None:
    with pytest.raises(WalletError):
        BitcoinKey(0)
    with pytest.raises(WalletError):
        BitcoinKey(SECP256K1_ORDER)
    good = BitcoinKey(WIKI_WIF_KEY).wif
    with pytest.raises(WalletError):
        BitcoinKey.from_wif(good[:-1] + ("2" if good[-1] != "2" else "3"))
    with pytest.raises(WalletError):
        BitcoinKey.from_wif("0OIl")


def test_repr_hides_the_key() -> None:
    key = BitcoinKey(WIKI_WIF_KEY)
    assert key.wif not in repr(key) and format(WIKI_WIF_KEY, "x") not in repr(key).lower()


def test_generated_keys_differ_and_round_trip() -> None:
    a, b = BitcoinKey.generate(), BitcoinKey.generate(testnet=True)
    assert a != b
    assert BitcoinKey.from_wif(a.wif) == a and BitcoinKey.from_wif(b.wif) == b


@given(st.integers(min_value=1, max_value=SECP256K1_ORDER - 1), st.booleans(), st.booleans())
def test_wif_round_trips(value: int, testnet: bool, compressed: bool) -> None:
    key = BitcoinKey(value, testnet, compressed)
    assert BitcoinKey.from_wif(key.wif) == key


@given(st.binary(max_size=40))
def test_base58check_round_trips(payload: bytes) -> None:
    assert base58check_decode(base58check_encode(payload)) == payload


@given(st.text(max_size=60))
def test_base58check_decode_is_total(text: str) -> None:
    with contextlib.suppress(WalletError):
        base58check_decode(text)


@given(st.binary(max_size=40))
def test_from_wif_is_total(payload: bytes) -> None:
    with contextlib.suppress(WalletError):
        BitcoinKey.from_wif(base58check_encode(payload))
