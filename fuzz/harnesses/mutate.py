"""Structure-aware mutation of handshake messages, steered by fuzz bytes.

A mutating peer (our own engine, with deterministic randomness) produces a
valid flight; before each handshake message leaves it, one input byte
chooses whether and how to change it: at the byte level, in its header, in
its fields, or in its extension list (drop, duplicate, reorder, rewrite,
add). Messages are re-encoded by hand with lengths that are not checked, so
a mutation may also produce what no honest encoder would.
"""

from __future__ import annotations

import struct
from datetime import datetime
from typing import Any

from fuzz.harnesses.support import Input
from pinata.tls.config import ClientConfig, ServerConfig
from pinata.tls.connection import ClientConnection, ServerConnection
from pinata.tls.constants import HELLO_RETRY_REQUEST_RANDOM, TLS12, TLS13
from pinata.tls.errors import ProtocolError
from pinata.tls.extensions import Extension
from pinata.tls.handshake.common import Output, RandomSource, SendMessage, whole_messages
from pinata.tls.messages import (
    Certificate,
    Certificate12,
    CertificateRequest,
    CertificateRequest12,
    CertificateVerify,
    ClientHello,
    ClientKeyExchange,
    EncryptedExtensions,
    NewSessionTicket,
    ServerHello,
    ServerKeyExchange,
    parse_handshake_message,
)

# Extension types worth trying in a rewritten or added extension: those
# RFC 8446 gives meaning to, TLS 1.2's (ec_point_formats, heartbeat,
# encrypt_then_mac, extended_master_secret, session_ticket,
# renegotiation_info), plus a GREASE value (RFC 8701) and an unknown one.
INTERESTING_EXTENSIONS = (0, 10, 11, 13, 15, 16, 22, 23, 35, 41, 42, 43, 44, 45, 47, 49, 50, 51,
                          0xFF01, 0x0A0A, 0xFFFF)
INTERESTING_U16 = (
    0x0000, 0x0001, 0x0002, 0x0017, 0x0018, 0x001D, 0x0100, 0x0200, 0x0300, 0x0301, 0x0303,
    0x0304, 0x0403, 0x0503, 0x0807, 0x0804, 0x0809, 0x1301, 0x1302, 0x1303, 0x11EC, 0x7F1C,
    0xFFFF,
)


def _u16(value: int) -> bytes:
    return (value & 0xFFFF).to_bytes(2, "big")


def _vec(prefix: int, data: bytes) -> bytes:
    # The length is written modulo the prefix's range: a mutation may lie.
    return (len(data) % (1 << (8 * prefix))).to_bytes(prefix, "big") + data


def _extensions_block(exts: list[Extension]) -> bytes:
    return _vec(2, b"".join(_u16(e.extension_type) + _vec(2, e.extension_data) for e in exts))


def _u16_list(inp: Input) -> bytes:
    count = inp.below(8)
    return b"".join(
        _u16(INTERESTING_U16[inp.below(len(INTERESTING_U16))] if inp.bool() else inp.u16())
        for _ in range(count)
    )


def mutate_extensions(exts: tuple[Extension, ...], inp: Input) -> list[Extension]:
    out = list(exts)
    op = inp.below(8)
    i = inp.below(len(out)) if out else 0
    if op == 0 and out:
        del out[i]
    elif op == 1 and out:
        out.insert(i, out[i])
    elif op == 2 and len(out) > 1:
        j = inp.below(len(out))
        out[i], out[j] = out[j], out[i]
    elif op == 3 and out:
        out[i] = Extension(out[i].extension_type, inp.blob())
    elif op == 4 and out:
        # A list-shaped body: supported_groups, signature_algorithms, versions.
        body = _u16_list(inp)
        wrap = inp.below(3)
        data = body if wrap == 0 else _vec(wrap, body)
        out[i] = Extension(out[i].extension_type, data)
    elif op == 5 and out:
        new_type = INTERESTING_EXTENSIONS[inp.below(len(INTERESTING_EXTENSIONS))]
        out[i] = Extension(new_type, out[i].extension_data)
    elif op == 6:
        new_type = INTERESTING_EXTENSIONS[inp.below(len(INTERESTING_EXTENSIONS))]
        out.insert(i, Extension(new_type, inp.blob()))
    elif op == 7 and out:
        changed = bytearray(out[i].extension_data)
        if changed:
            changed[inp.below(len(changed))] ^= inp.u8() | 1
        out[i] = Extension(out[i].extension_type, bytes(changed))
    return out


def _client_hello(m: ClientHello, inp: Input) -> bytes:
    version, session = m.legacy_version, m.legacy_session_id
    compression = m.legacy_compression_methods
    suites = b"".join(_u16(s) for s in m.cipher_suites)
    exts = list(m.extensions)
    field = inp.below(6)
    if field == 0:
        version = INTERESTING_U16[inp.below(len(INTERESTING_U16))]
    elif field == 1:
        session = inp.blob(40)
    elif field == 2:
        suites = _u16_list(inp)
    elif field == 3:
        compression = inp.blob(4)
    else:
        exts = mutate_extensions(m.extensions, inp)
    return (
        _u16(version)
        + m.random
        + _vec(1, session)
        + _vec(2, suites)
        + _vec(1, compression)
        + (_extensions_block(exts) if exts or inp.bool() else b"")
    )


def _server_hello(m: ServerHello, inp: Input) -> bytes:
    version, suite, session = m.legacy_version, m.cipher_suite, m.legacy_session_id_echo
    random, compression = m.random, m.legacy_compression_method
    exts = list(m.extensions)
    field = inp.below(6)
    if field == 0:
        version = INTERESTING_U16[inp.below(len(INTERESTING_U16))]
    elif field == 1:
        suite = INTERESTING_U16[inp.below(len(INTERESTING_U16))]
    elif field == 2:
        session = inp.blob(40)
    elif field == 3:
        compression = inp.u8()
    elif field == 4:
        # Turn it into (or out of) a HelloRetryRequest by its random (§4.1.3).
        random = HELLO_RETRY_REQUEST_RANDOM if random != HELLO_RETRY_REQUEST_RANDOM else bytes(32)
    else:
        exts = mutate_extensions(m.extensions, inp)
    return (
        _u16(version) + random + _vec(1, session) + _u16(suite) + bytes((compression & 0xFF,))
        + _extensions_block(exts)
    )


def _certificate(m: Certificate, inp: Input) -> bytes:
    entries = [(e.cert_data, list(e.extensions)) for e in m.certificate_list]
    context = m.certificate_request_context
    op = inp.below(6)
    i = inp.below(len(entries)) if entries else 0
    if op == 0:
        context = inp.blob()
    elif op == 1 and entries:
        del entries[i]
    elif op == 2 and entries:
        entries.insert(i, entries[i])
    elif op == 3 and entries:
        data = bytearray(entries[i][0])
        data[inp.below(len(data))] ^= inp.u8() | 1
        entries[i] = (bytes(data), entries[i][1])
    elif op == 4:
        entries.insert(i, (inp.blob(), []))
    elif entries:
        entries[i] = (entries[i][0], mutate_extensions(tuple(entries[i][1]), inp))
    body = b"".join(_vec(3, cert) + _extensions_block(exts) for cert, exts in entries)
    return _vec(1, context) + _vec(3, body)


def _certificate_verify(m: CertificateVerify, inp: Input) -> bytes:
    algorithm, signature = m.algorithm, m.signature
    if inp.bool():
        algorithm = INTERESTING_U16[inp.below(len(INTERESTING_U16))]
    else:
        data = bytearray(signature)
        if data:
            data[inp.below(len(data))] ^= inp.u8() | 1
        signature = bytes(data) if inp.bool() else inp.blob()
    return _u16(algorithm) + _vec(2, signature)


def _ec_point(point: bytes, inp: Input) -> bytes:
    """RFC 8422 §5.4's ECPoint, changed: a flipped byte, cut short, the
    compressed form's prefix (we accept only uncompressed, §5.1.2), or any
    bytes at all."""
    op = inp.below(4)
    if op == 0 and point:
        changed = bytearray(point)
        changed[inp.below(len(changed))] ^= inp.u8() | 1
        return bytes(changed)
    if op == 1:
        return point[: inp.below(len(point) + 1)]
    if op == 2 and point:
        return bytes((2 + inp.below(2),)) + point[1 : 1 + (len(point) - 1) // 2]
    return inp.blob()


def _server_key_exchange(m: ServerKeyExchange, inp: Input) -> bytes:
    curve_type, curve, public = m.curve_type, m.named_curve, m.public
    algorithm, signature = m.algorithm, m.signature
    field = inp.below(5)
    if field == 0:
        curve_type = inp.u8()
    elif field == 1:
        curve = INTERESTING_U16[inp.below(len(INTERESTING_U16))] if inp.bool() else inp.u16()
    elif field == 2:
        public = _ec_point(public, inp)
    elif field == 3:
        algorithm = INTERESTING_U16[inp.below(len(INTERESTING_U16))]
    else:
        signature = _ec_point(signature, inp)
    return bytes((curve_type & 0xFF,)) + _u16(curve) + _vec(1, public) + _u16(algorithm) + (
        _vec(2, signature)
    )


def _certificate12(m: Certificate12, inp: Input) -> bytes:
    certificates = list(m.certificate_list)
    op = inp.below(4)
    i = inp.below(len(certificates)) if certificates else 0
    if op == 0 and certificates:
        del certificates[i]
    elif op == 1 and certificates:
        certificates.insert(i, certificates[i])
    elif op == 2 and certificates:
        certificates[i] = _ec_point(certificates[i], inp)
    else:
        certificates.insert(i, inp.blob())
    return _vec(3, b"".join(_vec(3, cert) for cert in certificates))


def _certificate_request12(m: CertificateRequest12, inp: Input) -> bytes:
    types = bytes(m.certificate_types)
    schemes = b"".join(_u16(s) for s in m.supported_signature_algorithms)
    names = b"".join(_vec(2, name) for name in m.certificate_authorities)
    field = inp.below(3)
    if field == 0:
        types = inp.blob(8)
    elif field == 1:
        schemes = _u16_list(inp)
    else:
        names = _vec(2, inp.blob()) if inp.bool() else b""
    return _vec(1, types) + _vec(2, schemes) + _vec(2, names)


def _structured12(message: object, inp: Input) -> bytes | None:
    """The TLS 1.2 layouts (RFC 5246 §7.4, RFC 8422 §5)."""
    if isinstance(message, ServerKeyExchange):
        return _server_key_exchange(message, inp)
    if isinstance(message, ClientKeyExchange):
        return _vec(1, _ec_point(message.public, inp))
    if isinstance(message, Certificate12):
        return _certificate12(message, inp)
    if isinstance(message, CertificateRequest12):
        return _certificate_request12(message, inp)
    return None


def _structured(msg_type: int, body: bytes, inp: Input, version: int) -> bytes | None:
    try:
        message = parse_handshake_message(msg_type, body, version)
    except ProtocolError:
        return None
    if version == TLS12 and (changed := _structured12(message, inp)) is not None:
        return changed
    if isinstance(message, ClientHello):
        return _client_hello(message, inp)
    if isinstance(message, ServerHello):
        return _server_hello(message, inp)
    if isinstance(message, Certificate):
        return _certificate(message, inp)
    if isinstance(message, CertificateVerify):
        return _certificate_verify(message, inp)
    if isinstance(message, EncryptedExtensions):
        return _extensions_block(mutate_extensions(message.extensions, inp))
    if isinstance(message, CertificateRequest):
        if inp.bool():
            return _vec(1, inp.blob()) + _extensions_block(list(message.extensions))
        exts = mutate_extensions(message.extensions, inp)
        return _vec(1, message.certificate_request_context) + _extensions_block(exts)
    if isinstance(message, NewSessionTicket):
        exts = mutate_extensions(message.extensions, inp)
        return struct.pack(">II", message.ticket_lifetime, message.ticket_age_add) + (
            _vec(1, message.ticket_nonce) + _vec(2, message.ticket) + _extensions_block(exts)
        )
    return None


def mutate_message(raw: bytes, inp: Input, version: int = TLS13) -> bytes:
    """`raw` (a whole handshake message, laid out as `version` says) as the
    input chooses; op 0 keeps it."""
    op = inp.below(12) if inp.remaining else 0
    msg_type, body = raw[0], raw[4:]
    if op == 0:
        return raw
    if op == 1:
        data = bytearray(raw)
        data[inp.below(len(data))] ^= inp.u8() | 1
        return bytes(data)
    if op == 2:
        return raw[: inp.below(len(raw) + 1)]
    if op == 3:
        pos = inp.below(len(raw) + 1)
        return raw[:pos] + inp.blob() + raw[pos:]
    if op == 4:
        pos = inp.below(len(raw) + 1)
        patch = inp.blob(64)
        return raw[:pos] + patch + raw[pos + len(patch) :]
    if op == 5:
        # A header that lies about the body's length.
        length = (len(body) + (inp.u8() - 128)) % (1 << 24)
        return bytes((msg_type,)) + length.to_bytes(3, "big") + body
    if op == 6:
        return bytes((inp.u8(),)) + raw[1:]
    if op == 7:
        return b""  # the message is dropped
    if op == 8:
        return raw + raw  # ... or sent twice
    structured = _structured(msg_type, body, inp, version)
    if structured is None:
        return bytes((msg_type,)) + _vec(3, inp.blob())
    return bytes((msg_type,)) + _vec(3, structured)


class _MutatingMixin:
    """Rewrites the handshake messages our own engine sends, as `inp` says.

    It hooks the connection's private `_apply`, where a state's outputs
    become bytes: the engine's transcript keeps the honest message, so a
    mutation stands out to the peer's Finished check as a real attacker's
    would, while everything before it is exactly a valid handshake.
    """

    mutation_input: Input | None = None
    mutated = 0

    def _apply(self, outputs: list[Output], events: list[Any]) -> bool:
        inp = self.mutation_input
        if inp is not None:
            changed: list[Output] = []
            # Before the ServerHello the hellos read alike in both versions.
            version = getattr(self, "version", None) or TLS13
            for output in outputs:
                if isinstance(output, SendMessage):
                    # One mutation per message, also in a block of several.
                    new = b""
                    for message in whole_messages(output.data):
                        mutated = mutate_message(message, inp, version)
                        if mutated != message:
                            self.mutated += 1
                        new += mutated
                    output = SendMessage(new)
                changed.append(output)
            outputs = changed
        result: bool = super()._apply(outputs, events)  # type: ignore[misc]
        return result


class MutatingClient(_MutatingMixin, ClientConnection):
    def __init__(
        self, config: ClientConfig, *, random: RandomSource, now: datetime, mutation_input: Input
    ) -> None:
        self.mutation_input = mutation_input  # before the ClientHello is built
        super().__init__(config, random=random, now=now)


class MutatingServer(_MutatingMixin, ServerConnection):
    def __init__(
        self, config: ServerConfig, *, random: RandomSource, now: datetime, mutation_input: Input
    ) -> None:
        self.mutation_input = mutation_input
        super().__init__(config, random=random, now=now)
