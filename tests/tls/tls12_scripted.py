"""A scripted TLS 1.2 client for refusal tests: it builds its ClientHello
from parts a test may change, and its second flight (ClientKeyExchange,
ChangeCipherSpec, Finished) as separate records a test may drop, reorder
or corrupt. Built from the engine's shared 1.2 parts (`common12`), whose
own correctness the Python `ssl` tests establish."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from pinata.tls.codec import Reader
from pinata.tls.constants import (
    TLS12,
    CipherSuite,
    ContentType,
    NamedGroup,
    SignatureScheme,
)
from pinata.tls.extensions import (
    EcPointFormats,
    ExtendedMasterSecret,
    Extension,
    RenegotiationInfo,
    SignatureAlgorithms,
    SupportedGroups,
)
from pinata.tls.handshake.common12 import EphemeralKey, finished12, key_stages, master_secret
from pinata.tls.messages import (
    ClientHello,
    ClientKeyExchange,
    ServerHello,
    ServerKeyExchange,
    parse_handshake_message,
)
from pinata.tls.record import RecordProtector12, RecordUnprotector12, encode_plaintext_records
from pinata.tls.suites import lookup_suite12
from pinata.tls.transcript import Transcript


def random_from(seed: str, n: int = 32) -> bytes:
    return hashlib.sha256(seed.encode()).digest()[:n]


def default_extensions(group: NamedGroup = NamedGroup.x25519) -> list[Extension]:
    return [
        SupportedGroups((group,)).to_extension(),
        EcPointFormats((0,)).to_extension(),
        SignatureAlgorithms(
            (SignatureScheme.ecdsa_secp256r1_sha256, SignatureScheme.rsa_pss_rsae_sha256)
        ).to_extension(),
        ExtendedMasterSecret().to_extension(),
        RenegotiationInfo(b"").to_extension(),
    ]


def client_hello(
    *,
    extensions: list[Extension] | None = None,
    cipher_suites: tuple[int, ...] = (CipherSuite.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,),
    legacy_version: int = TLS12,
    compression: bytes = b"\x00",
) -> ClientHello:
    return ClientHello(
        legacy_version=legacy_version,
        random=random_from("client random"),
        legacy_session_id=b"",
        cipher_suites=cipher_suites,
        legacy_compression_methods=compression,
        extensions=tuple(default_extensions() if extensions is None else extensions),
    )


def handshake_record(*messages: bytes) -> bytes:
    return encode_plaintext_records(ContentType.handshake, b"".join(messages))


def handshake_messages(stream: bytes) -> list[bytes]:
    """The whole handshake messages in a stream of plaintext records."""
    r = Reader(stream)
    body = b""
    while not r.at_end():
        content_type = r.u8()
        r.u16()
        fragment = r.vector(2)
        if content_type == ContentType.handshake:
            body += fragment
    out = []
    while body:
        length = int.from_bytes(body[1:4], "big")
        out.append(body[: 4 + length])
        body = body[4 + length :]
    return out


@dataclass
class SecondFlight:
    """The client's records after the server's first flight, and its keys."""

    client_key_exchange: bytes
    change_cipher_spec: bytes
    finished: bytes
    protector: RecordProtector12 = field(repr=False)
    unprotector: RecordUnprotector12 = field(repr=False)
    master: bytes = field(repr=False)

    @property
    def all(self) -> bytes:
        return self.client_key_exchange + self.change_cipher_spec + self.finished


CHANGE_CIPHER_SPEC = bytes((ContentType.change_cipher_spec, 3, 3, 0, 1, 1))


def second_flight(
    hello: ClientHello, server_flight: bytes, *, corrupt_finished: bool = False
) -> SecondFlight:
    """ClientKeyExchange, ChangeCipherSpec and Finished answering `server_flight`."""
    messages = handshake_messages(server_flight)
    server_hello = parse_handshake_message(2, messages[0][4:], TLS12)
    assert isinstance(server_hello, ServerHello)
    ske = next(
        parse_handshake_message(12, m[4:], TLS12) for m in messages if m[0] == 12
    )
    assert isinstance(ske, ServerKeyExchange)
    suite = lookup_suite12(server_hello.cipher_suite)
    assert suite is not None
    key = EphemeralKey.generate(ske.named_curve, lambda n: random_from("client key", n))
    cke = ClientKeyExchange(key.key_exchange).encode()
    so_far = hello.encode() + b"".join(messages) + cke
    master = master_secret(
        suite, key.shared_secret(ske.public), hashlib.new(suite.hash_name, so_far).digest()
    )
    protector, unprotector = key_stages(
        suite, master, hello.random, server_hello.random, is_server=False
    )
    transcript = Transcript().add(so_far).select_hash(suite.hash_name)
    finished = finished12(suite, master, transcript, from_server=False).encode()
    if corrupt_finished:
        finished = finished[:-1] + bytes((finished[-1] ^ 1,))
    return SecondFlight(
        handshake_record(cke),
        CHANGE_CIPHER_SPEC,
        protector.seal(ContentType.handshake, finished),
        protector,
        unprotector,
        master,
    )
