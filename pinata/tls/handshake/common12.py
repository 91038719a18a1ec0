"""What both roles of a TLS 1.2 handshake share (RFC 5246, RFC 7627, RFC
8422): the content a ServerKeyExchange signs, the master secret, the key
stages cut from the key block, and Finished.

Pure functions over values, as `common` is for TLS 1.3.
"""

from __future__ import annotations

import hmac
from collections.abc import Sequence
from typing import Any

from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes

from pinata.tls.config import Credentials, VerifiedPeer
from pinata.tls.constants import NamedGroup, SignatureScheme
from pinata.tls.errors import Cause, ProtocolError
from pinata.tls.key_exchange import ClientKeyShare
from pinata.tls.messages import CertificateVerify, Finished
from pinata.tls.prf import (
    CLIENT_FINISHED_LABEL,
    SERVER_FINISHED_LABEL,
    extended_master_secret,
    key_block,
    verify_data,
)
from pinata.tls.record import RecordProtector12, RecordUnprotector12
from pinata.tls.signatures import verify_tls12
from pinata.tls.suites import SuiteParams
from pinata.tls.transcript import Transcript

# The ECDHE groups TLS 1.2 speaks here (RFC 8422 §5.1.1, RFC 7748): no
# hybrid (X25519MLKEM768 is TLS 1.3's), no secp521r1 (not implemented).
TLS12_GROUPS: frozenset[int] = frozenset(
    (NamedGroup.x25519, NamedGroup.secp256r1, NamedGroup.secp384r1)
)

# An ephemeral ECDHE key pair; the same object serves either role (the
# class's name is from TLS 1.3, where only the client generates first).
EphemeralKey = ClientKeyShare


class AwaitingChangeCipherSpec:
    """A TLS 1.2 handshake state in which the peer's ChangeCipherSpec is the
    next thing due (RFC 5246 §7.1): it accepts no handshake message, and the
    connection, on the ChangeCipherSpec, asks it for the state after."""

    def after_change_cipher_spec(self) -> Any:
        """The state that expects the peer's Finished."""
        raise NotImplementedError


def server_key_exchange_content(client_random: bytes, server_random: bytes, params: bytes) -> bytes:
    """What a ServerKeyExchange signs (RFC 8422 §5.4): ClientHello.random +
    ServerHello.random + ServerECDHParams, the last as sent (`params`)."""
    return b"".join((client_random, server_random, params))


def suite_fits_key(params: SuiteParams, credentials: Credentials) -> bool:
    """Whether our certificate can authenticate `params`' suite: ECDSA
    suites need an EC or Ed25519 key (RFC 8422 §5.1.3), RSA suites an RSA key."""
    rsa = credentials.schemes[0].name.startswith("rsa_")
    return params.authentication == ("RSA" if rsa else "ECDSA")


def master_secret(params: SuiteParams, pre_master_secret: bytes, session_hash: bytes) -> bytes:
    """The extended master secret (RFC 7627 §4): `session_hash` is the
    transcript hash through ClientKeyExchange (§3). We never compute the
    RFC 5246 §8.1 one: the extension is required (§5.2, §5.3)."""
    return extended_master_secret(params.hash_name, pre_master_secret, session_hash)


def key_stages(
    params: SuiteParams,
    master: bytes,
    client_random: bytes,
    server_random: bytes,
    *,
    is_server: bool,
) -> tuple[RecordProtector12, RecordUnprotector12]:
    """Our write stage and the peer's read stage from the key block (RFC
    5246 §6.3). The block itself is not kept: the AEAD objects hold the keys."""
    keys = key_block(
        params.hash_name, master, server_random, client_random, params.key_len, params.iv_len
    )
    client = (keys.client_write_key, keys.client_write_iv)
    server = (keys.server_write_key, keys.server_write_iv)
    mine, theirs = (server, client) if is_server else (client, server)
    return RecordProtector12(params, *mine), RecordUnprotector12(params, *theirs)


def finished12(
    params: SuiteParams, master: bytes, transcript: Transcript, *, from_server: bool
) -> Finished:
    """A Finished (RFC 5246 §7.4.9) over the transcript so far."""
    label = SERVER_FINISHED_LABEL if from_server else CLIENT_FINISHED_LABEL
    return Finished(verify_data(params.hash_name, master, label, transcript.digest()))


def check_finished12(
    message: Finished,
    params: SuiteParams,
    master: bytes,
    transcript: Transcript,
    *,
    from_server: bool,
) -> None:
    """`finished_wrong_length` or `bad_finished` (decrypt_error, RFC 5246
    §7.4.9) unless the peer's Finished matches the transcript."""
    expected = finished12(params, master, transcript, from_server=from_server).verify_data
    if len(message.verify_data) != len(expected):
        raise ProtocolError(Cause.finished_wrong_length)
    if not hmac.compare_digest(message.verify_data, expected):
        raise ProtocolError(Cause.bad_finished)


def check_signature12(
    algorithm: int,
    signature: bytes,
    offered: Sequence[int],
    public_key: CertificatePublicKeyTypes,
    content: bytes,
    *,
    key_is_rsassa_pss: bool,
) -> SignatureScheme:
    """A peer's TLS 1.2 signature (ServerKeyExchange, CertificateVerify):
    its scheme must be one we offered (RFC 5246 §7.4.8, §7.4.3), then verify."""
    if algorithm not in offered:
        raise ProtocolError(Cause.signature_scheme_not_offered, f"0x{algorithm:04x}")
    verify_tls12(algorithm, public_key, content, signature, key_is_rsassa_pss=key_is_rsassa_pss)
    return SignatureScheme(algorithm)


def check_certificate_verify12(
    message: CertificateVerify, peer: VerifiedPeer, offered: Sequence[int], messages: bytes
) -> SignatureScheme:
    """RFC 5246 §7.4.8: the signature covers every handshake message so far,
    as sent (`messages`), hashed with the scheme's own hash."""
    return check_signature12(
        message.algorithm,
        message.signature,
        offered,
        peer.leaf_public_key,
        messages,
        key_is_rsassa_pss=peer.leaf_key_is_rsassa_pss,
    )


__all__ = [
    "TLS12_GROUPS",
    "AwaitingChangeCipherSpec",
    "EphemeralKey",
    "check_certificate_verify12",
    "check_finished12",
    "check_signature12",
    "finished12",
    "key_stages",
    "master_secret",
    "server_key_exchange_content",
    "suite_fits_key",
]
