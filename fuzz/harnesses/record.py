"""Harness 1: the record layer (RFC 8446 §5), before and after keys.

Input: [mode][suite][segment] then bytes. Mode 0 frames the bytes as they
come (the deframer before keys); mode 1 also opens each record under a
fixed key (after keys: almost all fail the tag, which must be
bad_record_mac or a framing alert); mode 2 seals input-chosen content
under the key and opens it again, so the inner plaintext rules (content
type, padding, §5.4) see chosen plaintext.
"""

from __future__ import annotations

from fuzz.harnesses.support import FuzzFinding, Input
from pinata.tls.constants import CipherSuite
from pinata.tls.errors import AlertDescription, ProtocolError
from pinata.tls.record import (
    MAX_INNER_PLAINTEXT,
    Record,
    RecordDeframer,
    RecordProtector,
    RecordUnprotector,
)
from pinata.tls.suites import SuiteParams, lookup_suite

_SUITES = (
    CipherSuite.TLS_AES_128_GCM_SHA256,
    CipherSuite.TLS_AES_256_GCM_SHA384,
    CipherSuite.TLS_CHACHA20_POLY1305_SHA256,
)
_KNOWN_ALERTS = frozenset(AlertDescription)
MAX_SEALED = 8
_INNER_TYPES = (21, 22, 23)  # §5.4 (a protected change_cipher_spec is refused)


def _params(choice: int) -> SuiteParams:
    params = lookup_suite(_SUITES[choice % len(_SUITES)])
    assert params is not None
    return params


def _deframe(stream: bytes, segment: int, opener: RecordUnprotector | None) -> None:
    deframer = RecordDeframer()
    step = segment * 11 or len(stream) or 1
    for start in range(0, len(stream), step):
        deframer.feed(stream[start : start + step])
        while (record := deframer.next_record()) is not None:
            if len(record.fragment) > 2**14 + 256:
                raise FuzzFinding("deframer returned an oversized record")
            if opener is not None:
                _, content = opener.open(record)
                if len(content) > 2**14:
                    raise FuzzFinding("opened content exceeds 2^14 bytes")
        if deframer.buffered > 2**14 + 256 + 5 + step:
            raise FuzzFinding(f"deframer holds {deframer.buffered} bytes")


def _round_trip(inp: Input, params: SuiteParams) -> None:
    secret = bytes(params.hash_len)
    sealer = RecordProtector(params, secret)
    opener = RecordUnprotector(params, secret)
    for _ in range(MAX_SEALED):
        if not inp.remaining:
            break
        content_type = inp.u8()
        content = inp.blob()
        # Small paddings, or paddings around the §5.2 limit: a full 2^14
        # record per iteration would cost more than it finds.
        choice = inp.u8()
        if choice & 1:
            padding = MAX_INNER_PLAINTEXT - 1 - len(content) + (choice >> 1) % 8 - 4
        else:
            padding = choice >> 1
        try:
            sealed = sealer.seal(content_type, content, padding)
        except ValueError:
            continue  # our own API refusing what §5.2 forbids to send
        record = Record(sealed[0], int.from_bytes(sealed[1:3], "big"), sealed[5:])
        try:
            got_type, got = opener.open(record)
        except ProtocolError:
            if content_type in _INNER_TYPES:
                raise FuzzFinding(f"a sealed record of type {content_type} did not open") from None
            # A refused record ends a real connection; here both sides start over.
            sealer = RecordProtector(params, secret)
            opener = RecordUnprotector(params, secret)
            continue
        if content_type == 0:
            continue  # §5.4: the type is the last non-zero byte, so it is the content's
        if content_type not in _INNER_TYPES:
            raise FuzzFinding(f"a protected record of type {content_type} was accepted")
        if (got_type, bytes(got)) != (content_type, content):
            raise FuzzFinding("a sealed record opened to something else")


def one_input(data: bytes) -> None:
    inp = Input(data)
    mode = inp.u8() % 3
    params = _params(inp.u8())
    segment = inp.u8()
    try:
        if mode == 2:
            _round_trip(inp, params)
            return
        opener = RecordUnprotector(params, bytes(params.hash_len)) if mode == 1 else None
        _deframe(inp.rest(), segment, opener)
    except ProtocolError as error:
        if error.alert not in _KNOWN_ALERTS:
            raise FuzzFinding(f"ProtocolError with alert {error.alert!r}") from error
