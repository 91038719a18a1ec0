"""The bait itself: a secp256k1 key, written as WIF, and the addresses to publish.

Formats: Wallet Import Format (base58check of 0x80|0xef, the 32-byte key and
0x01 for a compressed public key), P2PKH addresses (base58check of 0x00|0x6f
and Hash160 of the public key) and P2WPKH addresses (BIP 173 bech32, witness
version 0, the same Hash160). The piñata reveals the WIF; whoever breaks it
sweeps the address.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from bait_ca.ripemd160 import ripemd160

# SEC 2 §2.4.1: the order of secp256k1's base point.
SECP256K1_ORDER = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141

_B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_BECH32 = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
# Bitcoin Core chainparams: base58 prefixes and BIP 173 human-readable parts.
_WIF_PREFIX = {False: 0x80, True: 0xEF}
_P2PKH_PREFIX = {False: 0x00, True: 0x6F}
_HRP = {False: "bc", True: "tb"}
MAX_WIF_LENGTH = 52


class WalletError(ValueError):
    """Text that is not a key or address this module understands."""


def hash160(data: bytes) -> bytes:
    return ripemd160(hashlib.sha256(data).digest())


def _checksum(payload: bytes) -> bytes:
    return hashlib.sha256(hashlib.sha256(payload).digest()).digest()[:4]


def base58check_encode(payload: bytes) -> str:
    data = payload + _checksum(payload)
    n = int.from_bytes(data, "big")
    digits = ""
    while n:
        n, rem = divmod(n, 58)
        digits = _B58[rem] + digits
    # Each leading zero byte is written as a leading "1".
    zeros = len(data) - len(data.lstrip(b"\x00"))
    return "1" * zeros + digits


def base58check_decode(text: str, *, max_length: int = 128) -> bytes:
    if not text or len(text) > max_length or any(c not in _B58 for c in text):
        raise WalletError("not base58")
    n = 0
    for c in text:
        n = n * 58 + _B58.index(c)
    zeros = len(text) - len(text.lstrip("1"))
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    data = b"\x00" * zeros + body
    if len(data) < 4 or _checksum(data[:-4]) != data[-4:]:
        raise WalletError("bad base58check checksum")
    return data[:-4]


def _bech32_polymod(values: list[int]) -> int:
    # BIP 173, "Checksum": a BCH code over GF(32).
    generator = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)
    check = 1
    for value in values:
        top = check >> 25
        check = (check & 0x1FFFFFF) << 5 ^ value
        for i in range(5):
            if (top >> i) & 1:
                check ^= generator[i]
    return check


def _hrp_expand(hrp: str) -> list[int]:
    return [ord(c) >> 5 for c in hrp] + [0] + [ord(c) & 31 for c in hrp]


def _to_5bit(data: bytes) -> list[int]:
    acc = bits = 0
    out: list[int] = []
    for byte in data:
        acc = (acc << 8) | byte
        bits += 8
        while bits >= 5:
            bits -= 5
            out.append((acc >> bits) & 31)
    if bits:
        out.append((acc << (5 - bits)) & 31)
    return out


def bech32_encode(hrp: str, witness_version: int, program: bytes) -> str:
    """A segwit address (BIP 173); version 0 uses the bech32 constant 1."""
    data = [witness_version, *_to_5bit(program)]
    polymod = _bech32_polymod([*_hrp_expand(hrp), *data, 0, 0, 0, 0, 0, 0]) ^ 1
    checksum = [(polymod >> 5 * (5 - i)) & 31 for i in range(6)]
    return hrp + "1" + "".join(_BECH32[d] for d in data + checksum)


def bech32_verify(address: str) -> bool:
    """Whether a lower-case bech32 string carries a valid checksum (BIP 173)."""
    hrp, sep, rest = address.rpartition("1")
    if not sep or not hrp or len(rest) < 6 or any(c not in _BECH32 for c in rest):
        return False
    return _bech32_polymod(_hrp_expand(hrp) + [_BECH32.index(c) for c in rest]) == 1


@dataclass(frozen=True)
class BitcoinKey:
    """A secp256k1 private key and the network it is meant for."""

    private_value: int = field(repr=False)
    testnet: bool = False
    compressed: bool = True

    def __post_init__(self) -> None:
        if not 1 <= self.private_value < SECP256K1_ORDER:
            raise WalletError("a secp256k1 private key is in [1, n-1]")

    def __repr__(self) -> str:
        return f"BitcoinKey(<hidden>, testnet={self.testnet})"

    @classmethod
    def generate(cls, *, testnet: bool = False) -> BitcoinKey:
        key = ec.generate_private_key(ec.SECP256K1())
        return cls(key.private_numbers().private_value, testnet)

    @classmethod
    def from_wif(cls, wif: str) -> BitcoinKey:
        payload = base58check_decode(wif, max_length=MAX_WIF_LENGTH)
        if len(payload) not in (33, 34) or payload[0] not in _WIF_PREFIX.values():
            raise WalletError("unknown WIF version byte")
        testnet = payload[0] == _WIF_PREFIX[True]
        if len(payload) == 34 and payload[33] == 0x01:
            return cls(int.from_bytes(payload[1:33], "big"), testnet, compressed=True)
        if len(payload) == 33:
            return cls(int.from_bytes(payload[1:33], "big"), testnet, compressed=False)
        raise WalletError("bad WIF length")

    @property
    def wif(self) -> str:
        payload = bytes([_WIF_PREFIX[self.testnet]]) + self.private_value.to_bytes(32, "big")
        return base58check_encode(payload + (b"\x01" if self.compressed else b""))

    @property
    def public_key(self) -> bytes:
        """SEC 1 §2.3.3 encoding: 33 bytes compressed, or 65 uncompressed."""
        point = ec.derive_private_key(self.private_value, ec.SECP256K1()).public_key()
        form = (
            serialization.PublicFormat.CompressedPoint
            if self.compressed
            else serialization.PublicFormat.UncompressedPoint
        )
        return point.public_bytes(serialization.Encoding.X962, form)

    @property
    def p2pkh_address(self) -> str:
        return base58check_encode(bytes([_P2PKH_PREFIX[self.testnet]]) + hash160(self.public_key))

    @property
    def p2wpkh_address(self) -> str:
        # BIP 141: P2WPKH requires a compressed key.
        if not self.compressed:
            raise WalletError("P2WPKH needs a compressed public key")
        return bech32_encode(_HRP[self.testnet], 0, hash160(self.public_key))
