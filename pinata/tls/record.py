"""The TLS 1.3 record layer (RFC 8446 §5): framing, and AEAD protection;
and TLS 1.2's AEAD record protection (`RecordProtector12`, RFC 5246 §6.2.3.3).

`RecordDeframer` cuts a byte stream into records and judges only what the
5-byte header says. `RecordProtector` and `RecordUnprotector` hold one
direction's traffic key each: one AEAD object per key, the per-record nonce
computed as an integer XOR (§5.3), and zero-copy views where Python allows.

A key is held as bytes until the first record that uses it (`_Keyed`), and
a TLS 1.3 key as its traffic secret, from which that record derives key and
IV (`_Direction`): an AEAD object is about 2.5 KiB outside Python's
allocator (cryptography keeps an OpenSSL cipher context per direction of
use), and a server waiting for a client's second flight holds two keys it
may never use (issue 18).

Bulk application data is sealed into one buffer per key that is reused
(`seal_reusing`): records are laid out there as they go on the wire, so a
batch costs no allocation, no page fault and no copy after the cipher's. A
buffer is written again only once no view of it is alive (`_reusable`).
"""

from __future__ import annotations

from dataclasses import dataclass

from cryptography.exceptions import InvalidTag

from pinata.tls.constants import (
    HEARTBEAT_CONTENT_TYPE,
    MAX_CIPHERTEXT,
    MAX_PLAINTEXT,
    RECORD_HEADER_LEN,
    TLS12,
    ContentType,
)
from pinata.tls.errors import Cause, LocalProtocolError, ProtocolError
from pinata.tls.keyschedule import traffic_key_iv
from pinata.tls.suites import AEAD, TAG_LEN, SuiteParams

_KNOWN_TYPES = frozenset(int(t) for t in ContentType if t != ContentType.invalid)
# §5.4: content types a TLSInnerPlaintext may carry; a protected
# change_cipher_spec is refused (§5: unexpected_message).
_INNER_TYPES = frozenset((ContentType.alert, ContentType.handshake, ContentType.application_data))
# §5.2: TLSInnerPlaintext (content, type, zeros) is at most 2^14 + 1 bytes.
MAX_INNER_PLAINTEXT = MAX_PLAINTEXT + 1
# §5.3: sequence numbers are 64-bit and must not wrap.
_MAX_SEQUENCE = (1 << 64) - 1
_APPLICATION_DATA = int(ContentType.application_data)
_OUTER_TYPE_AND_VERSION = bytes((_APPLICATION_DATA, TLS12 >> 8, TLS12 & 0xFF))
# What a TLS 1.3 record adds to its content: the header, the inner content
# type and the tag (§5.2). TLS 1.2's is `RecordProtector12._overhead`.
_OVERHEAD = RECORD_HEADER_LEN + 1 + TAG_LEN
# A full record's protected fragment (2^14 + 1 + 16 bytes) and header (§5.2).
_FULL_FRAGMENT = MAX_INNER_PLAINTEXT + TAG_LEN
_FULL_HEADER = _OUTER_TYPE_AND_VERSION + _FULL_FRAGMENT.to_bytes(2, "big")


class SequenceExhausted(Exception):
    """A key has protected 2^64 records (§5.3): the connection must close."""


@dataclass(frozen=True, slots=True)
class Record:
    content_type: int
    # §5.1: "MUST be ignored for all purposes"; kept only because the AEAD's
    # additional_data (§5.2) is the header as received.
    legacy_record_version: int
    fragment: bytes | memoryview

    def __repr__(self) -> str:  # a fragment may hold application data
        return (
            f"Record(content_type={self.content_type}, "
            f"legacy_record_version=0x{self.legacy_record_version:04x}, "
            f"length={len(self.fragment)})"
        )


class RecordDeframer:
    """Splits received bytes into records.

    Records wholly inside one fed chunk come out as zero-copy views of it;
    only a record split across chunks is copied, once. Memory stays bounded:
    `feed` refuses more input while a whole record is still waiting to be
    taken, so what is held is at most one partial record plus what the last
    `feed` brought, and nothing once its last record is taken. A header
    error is raised as soon as the header is complete, and again on every
    later call: the stream is dead.
    """

    __slots__ = ("_buf", "_error", "_pending", "_pos", "_started", "_tls12")

    def __init__(self, *, tls12: bool = False) -> None:
        """`tls12`: TLS 1.2 may be negotiated, so the header is judged as
        RFC 5246 §6.2.1 says (`_check_tls12_header`); a TLS 1.3-only
        connection ignores the record version (RFC 8446 §5.1)."""
        self._tls12 = tls12
        self._started = False
        # The start of a record split across chunks; when non-empty, _pos is 0.
        self._pending = b""
        self._buf = b""
        self._pos = 0
        self._error: ProtocolError | None = None

    @property
    def buffered(self) -> int:
        """Bytes received and not yet returned in a record."""
        return len(self._pending) + len(self._buf) - self._pos

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        if self._error is not None or not data:
            return
        header = self._header()
        if header is not None and self.buffered >= RECORD_HEADER_LEN + _length(header):
            raise LocalProtocolError("take the buffered records before feeding more")
        if self._pos < len(self._buf):
            # What is left is less than one record: the only bytes ever copied.
            self._pending = b"".join((self._pending, memoryview(self._buf)[self._pos :]))
        self._buf = bytes(data)
        self._pos = 0

    def _header(self) -> bytes | None:
        pending, buf, pos = self._pending, self._buf, self._pos
        if not pending:
            return (
                buf[pos : pos + RECORD_HEADER_LEN] if len(buf) - pos >= RECORD_HEADER_LEN else None
            )
        head = pending[:RECORD_HEADER_LEN]
        if len(head) < RECORD_HEADER_LEN:
            head += buf[: RECORD_HEADER_LEN - len(head)]
        return head if len(head) == RECORD_HEADER_LEN else None

    def next_record(self) -> Record | None:
        """The next whole record, or None until more bytes arrive."""
        if self._error is not None:
            raise self._error
        buf, pos, pending = self._buf, self._pos, self._pending
        if pending:
            header = self._header()
            if header is None:
                return None
        elif len(buf) - pos >= RECORD_HEADER_LEN:
            header = buf[pos : pos + RECORD_HEADER_LEN]
        else:
            return None
        content_type = header[0]
        length = (header[3] << 8) | header[4]
        if self._tls12:
            self._check_tls12_header(header)
        if content_type not in _KNOWN_TYPES:
            self._error = ProtocolError(Cause.unknown_record_type, f"type {content_type}")
            raise self._error
        if length > MAX_CIPHERTEXT:
            # §5.2: no record of any type may exceed 2^14 + 256 bytes.
            self._error = ProtocolError(Cause.record_too_long, f"record length {length}")
            raise self._error
        end = pos + RECORD_HEADER_LEN + length - len(pending)
        if end > len(buf):
            return None
        if end == len(buf):
            # Every byte fed has been returned: hold none of the chunk (the
            # record handed out keeps it alive while it needs it). A peer
            # that stalls after its flight pins no receive buffer here.
            self._buf, self._pos = b"", 0
        else:
            self._pos = end
        version = (header[1] << 8) | header[2]
        if pending:
            self._pending = b""
            whole = b"".join((pending, memoryview(buf)[:end]))
            return Record(content_type, version, memoryview(whole)[RECORD_HEADER_LEN:])
        return Record(content_type, version, memoryview(buf)[pos + RECORD_HEADER_LEN : end])


    def _check_tls12_header(self, header: bytes) -> None:
        first, self._started = not self._started, True
        error: ProtocolError | None = None
        if first and header[0] & 0x80 and header[2] == 1:
            # An SSL 2.0-compatible ClientHello (RFC 5246 Appendix E.2): a
            # two-byte length with the top bit set, then msg_type 1.
            error = ProtocolError(Cause.version_too_old, "SSL 2.0-compatible ClientHello")
        elif header[0] == HEARTBEAT_CONTENT_TYPE:
            # RFC 6520: never negotiated here, so never acceptable.
            error = ProtocolError(Cause.heartbeat_record)
        elif header[1] != 3:
            # Not an SSL 3.0 / TLS record at all (RFC 5246 §6.2.1, Appendix E.1).
            error = ProtocolError(Cause.record_version_unknown, f"0x{header[1]:02x}{header[2]:02x}")
        if error is not None:
            self._error = error
            raise error


def _length(header: bytes) -> int:
    return (header[3] << 8) | header[4]


def encode_plaintext_records(
    content_type: int, data: bytes, *, legacy_record_version: int = TLS12
) -> bytes:
    """TLSPlaintext records carrying `data`, cut at 2^14 bytes (§5.1).

    Empty data gives no record: zero-length handshake or alert fragments are
    forbidden (§5.1). The first ClientHello may pass 0x0301 as its version.
    """
    prefix = bytes((content_type, legacy_record_version >> 8, legacy_record_version & 0xFF))
    out: list[bytes | memoryview] = []
    view = memoryview(data)
    for start in range(0, len(data), MAX_PLAINTEXT):
        chunk = view[start : start + MAX_PLAINTEXT]
        out.append(prefix + len(chunk).to_bytes(2, "big"))
        out.append(chunk)
    return b"".join(out)


class _Keyed:
    """A TLS 1.2 traffic key (from the key block) as bytes, and its AEAD
    object from the first record that uses it on. Before that, the key
    costs its 16 or 32 bytes; the AEAD object, about 2.5 KiB of OpenSSL
    state outside Python's allocator, is made only for a record sealed or
    opened: a stalled handshake never pays for it."""

    __slots__ = ("_aead", "_key", "_params")

    def __init__(self, params: SuiteParams, key: bytes) -> None:
        if len(key) != params.key_len:
            # Checked now, as building the AEAD would: a wrong key is our bug.
            raise ValueError(f"{params.suite.name} takes a {params.key_len}-byte key")
        self._params = params
        self._key = key
        self._aead: AEAD | None = None

    def _built(self) -> AEAD:
        """The AEAD object, made now if no record has used the key yet.
        Callers write `self._aead or self._built()`: no call once it exists."""
        aead = self._aead = self._params.aead(self._key)
        return aead


class _Direction:
    """One direction's TLS 1.3 record protection under one traffic secret.

    As `_Keyed`, but from the secret itself: the key and IV (§7.3) are
    derived with the AEAD object, by the first record that uses them, so
    until then a direction holds the secret (a bytes object the handshake
    state shares) and no key, IV or AEAD of its own. A server waiting for a
    client's second flight holds two directions it may never use: their
    keys and IVs were about 110 bytes each (issue 18)."""

    __slots__ = ("_aead", "_iv", "_params", "_secret", "sequence_number")

    def __init__(self, params: SuiteParams, secret: bytes) -> None:
        if len(secret) != params.hash_len:
            # Checked now, as deriving would: a wrong secret is our bug.
            raise ValueError(f"{params.suite.name} takes a {params.hash_len}-byte secret")
        self._params = params
        self._secret = secret
        self._aead: AEAD | None = None
        # §7.3's write IV as an integer: 0 until `_built` derives it, which
        # every record does before it makes a nonce.
        self._iv = 0
        self.sequence_number = 0

    def _built(self) -> AEAD:
        """The key, IV and AEAD object, made now if no record has used them
        yet. Callers write `self._aead or self._built()` before `_nonce`: no
        call once they exist."""
        key, iv = traffic_key_iv(self._params, self._secret)
        self._iv = int.from_bytes(iv, "big")
        aead = self._aead = self._params.aead(key)
        return aead

    def __repr__(self) -> str:
        return f"{type(self).__name__}(sequence_number={self.sequence_number})"

    def _take(self, count: int) -> int:
        """The first of `count` sequence numbers, now used; SequenceExhausted,
        and none taken, when they would pass 2^64 - 1 (§5.3)."""
        seq = self.sequence_number
        if seq + count - 1 > _MAX_SEQUENCE:
            raise SequenceExhausted("sequence number would wrap; a new key is needed")
        # Taken before sealing: a failure afterwards skips numbers, never reuses one.
        self.sequence_number = seq + count
        return seq

    def _nonce(self, seq: int) -> bytes:
        # §5.3: nonce = write_iv XOR (64-bit sequence number, left-padded).
        return (self._iv ^ seq).to_bytes(12, "big")


# The largest buffer `seal_reusing` keeps between calls: 32 full records
# (about 0.5 MiB) with TLS 1.2's overhead, the larger (an 8-byte explicit
# nonce against TLS 1.3's content type byte). A larger batch is sealed into
# a buffer of its own, let go with its last view, so one huge send does not
# pin its size for the connection's life.
KEPT_AT_MOST = 32 * (RECORD_HEADER_LEN + 8 + MAX_PLAINTEXT + TAG_LEN)


def _reusable(buffer: bytearray | None, size: int) -> bytearray:
    """`buffer` if it holds `size` bytes and may be written again, else a new one.

    A bytearray refuses to change size while a memoryview of it is alive
    (BufferError): growing it by one byte is how we learn that every view
    handed out before (bytes perhaps still on their way to a socket) is gone,
    so those bytes are never overwritten. Otherwise the old buffer is left to
    its holders and a fresh one takes its place.
    """
    if buffer is not None and len(buffer) >= size:
        try:
            buffer.append(0)
        except BufferError:
            return bytearray(size)
        del buffer[-1]
        return buffer
    return bytearray(size)


def _wire_size(length: int, overhead: int) -> int:
    """Bytes on the wire for `length` bytes of content cut at 2^14 (§5.1);
    one record, possibly empty, for none."""
    full, rest = divmod(length, MAX_PLAINTEXT)
    return full * (MAX_PLAINTEXT + overhead) + (rest + overhead if rest or not full else 0)


class RecordProtector(_Direction):
    """Seals records under one traffic secret (our sending direction)."""

    __slots__ = ("_inner", "_out")

    def __init__(self, params: SuiteParams, secret: bytes) -> None:
        super().__init__(params, secret)
        # Made at the first `seal_reusing`: a connection that sends no bulk
        # data never pays for them.
        self._inner: bytearray | None = None
        self._out: bytearray | None = None

    def seal(self, content_type: int, data: bytes | memoryview, padding: int = 0) -> bytes:
        """One TLSCiphertext record (§5.2) carrying `data` (at most 2^14 bytes)
        and `padding` zeros; ValueError when content plus padding exceed 2^14.

        For the odd alert or handshake record: the AEAD allocates the output,
        which for a small record costs less than laying out buffers for it."""
        if padding < 0 or len(data) + padding > MAX_PLAINTEXT:
            raise ValueError("record content plus padding exceeds 2^14 bytes")
        header = _OUTER_TYPE_AND_VERSION + (len(data) + 1 + padding + TAG_LEN).to_bytes(2, "big")
        # §5.4: TLSInnerPlaintext = content || ContentType || zeros[padding].
        inner = b"".join((data, bytes((content_type,)), bytes(padding)))
        aead = self._aead or self._built()
        return header + aead.encrypt(self._nonce(self._take(1)), inner, header)

    def seal_many(self, content_type: int, data: bytes | memoryview) -> bytes:
        """As many records as `data` needs, cut at 2^14, in one bytes object
        (one record, possibly empty, for at most 2^14 bytes). For handshake
        flights and the like: nothing is kept once it returns."""
        if len(data) <= MAX_PLAINTEXT:
            return self.seal(content_type, data)
        out = bytearray(_wire_size(len(data), _OVERHEAD))
        with memoryview(out) as view, memoryview(bytearray(MAX_INNER_PLAINTEXT)) as inner:
            self._seal_records(view, inner, content_type, data)
        return bytes(out)

    def seal_reusing(self, content_type: int, data: bytes | memoryview) -> memoryview:
        """What `seal_many` gives, as a view of this key's reused buffer.

        The buffer is written again only after every view of it is released;
        keep the view no longer than its bytes take to write, and pass at
        most a socket buffer's worth of data per call (the buffer keeps the
        largest size asked for, up to `KEPT_AT_MOST`)."""
        size = _wire_size(len(data), _OVERHEAD)
        out = _reusable(self._out, size)
        if size <= KEPT_AT_MOST:
            self._out = out
        # Never handed out, so no view of it outlives this call; as small as
        # the records so far need, for the many connections that send little.
        inner_size = min(len(data), MAX_PLAINTEXT) + 1
        if self._inner is None or len(self._inner) < inner_size:
            self._inner = bytearray(inner_size)
        with memoryview(out) as view, memoryview(self._inner) as inner:
            self._seal_records(view, inner, content_type, data)
        return memoryview(out)[:size]

    def _seal_records(
        self,
        out: memoryview,
        inner: memoryview,
        content_type: int,
        data: bytes | memoryview,
    ) -> None:
        """Seal `data`, cut at 2^14, record after record from the start of
        `out`; each TLSInnerPlaintext (§5.4: content || ContentType, no
        padding) is first laid out in `inner`."""
        n = len(data)
        seq = self._take(max(1, -(-n // MAX_PLAINTEXT)))
        encrypt, iv, source = (self._aead or self._built()).encrypt_into, self._iv, memoryview(data)
        pos = 0
        full = n // MAX_PLAINTEXT  # with one, `inner` is a full record's (both callers)
        if full:
            # Bulk: every full record has the same header and the type byte in
            # the same place, so only the content is copied and the nonce made.
            inner[MAX_PLAINTEXT] = content_type
            content = inner[:MAX_PLAINTEXT]
            for start in range(0, full * MAX_PLAINTEXT, MAX_PLAINTEXT):
                content[:] = source[start : start + MAX_PLAINTEXT]
                body = pos + RECORD_HEADER_LEN
                out[pos:body] = _FULL_HEADER
                pos = body + _FULL_FRAGMENT
                # §5.3, as `_nonce`, inlined: this loop is the bulk path.
                encrypt((iv ^ seq).to_bytes(12, "big"), inner, _FULL_HEADER, out[body:pos])
                seq += 1
            if full * MAX_PLAINTEXT == n:
                return
        for start in range(full * MAX_PLAINTEXT, max(n, 1), MAX_PLAINTEXT):
            chunk = source[start : start + MAX_PLAINTEXT]
            length = len(chunk)
            inner_len = length + 1
            inner[:length] = chunk
            inner[length] = content_type
            header = _OUTER_TYPE_AND_VERSION + (inner_len + TAG_LEN).to_bytes(2, "big")
            body = pos + RECORD_HEADER_LEN
            end = body + inner_len + TAG_LEN
            out[pos:body] = header
            encrypt((iv ^ seq).to_bytes(12, "big"), inner[:inner_len], header, out[body:end])
            seq += 1
            pos = end


class RecordUnprotector(_Direction):
    """Opens records under one traffic secret (the peer's sending direction)."""

    __slots__ = ()

    def open(self, record: Record) -> tuple[int, bytes | memoryview]:
        """(inner content type, content) of a protected record (§5.2, §5.4)."""
        if record.content_type != _APPLICATION_DATA:
            raise ProtocolError(Cause.unprotected_record_after_keys, f"type {record.content_type}")
        fragment = record.fragment
        length = len(fragment)
        if length > MAX_CIPHERTEXT or length - TAG_LEN > MAX_INNER_PLAINTEXT:
            raise ProtocolError(Cause.record_too_long, f"ciphertext length {length}")
        if length < TAG_LEN:
            raise ProtocolError(Cause.record_undecryptable, "shorter than the tag")
        v = record.legacy_record_version
        header = bytes((_APPLICATION_DATA, (v >> 8) & 0xFF, v & 0xFF, length >> 8, length & 0xFF))
        aead = self._aead or self._built()  # before the nonce: it derives the IV
        nonce = self._nonce_for_current()
        try:
            plaintext = aead.decrypt(nonce, fragment, header)
        except (InvalidTag, ValueError):
            raise ProtocolError(Cause.record_undecryptable) from None
        self.sequence_number += 1
        if plaintext and plaintext[-1]:  # the common case: no padding
            content_type = plaintext[-1]
            content_end = len(plaintext) - 1
        else:
            stripped = plaintext.rstrip(b"\x00")
            if not stripped:
                raise ProtocolError(Cause.inner_plaintext_without_type)
            content_type = stripped[-1]
            content_end = len(stripped) - 1
        if content_type not in _INNER_TYPES:
            raise ProtocolError(Cause.forbidden_inner_content_type, f"type {content_type}")
        return content_type, memoryview(plaintext)[:content_end]

    def _nonce_for_current(self) -> bytes:
        seq = self.sequence_number
        if seq > _MAX_SEQUENCE:
            raise SequenceExhausted("peer's sequence number would wrap")
        return self._nonce(seq)


# ---- TLS 1.2 (RFC 5246 §6.2.3.3, RFC 5288 §3, RFC 7905 §2) ----------------

# The outer types a TLS 1.2 protected record may have; change_cipher_spec is
# never protected here (it is the key change itself) and is handled before.
_TLS12_PROTECTED_TYPES = frozenset(
    (ContentType.alert, ContentType.handshake, ContentType.application_data)
)
_TLS12_VERSION = TLS12.to_bytes(2, "big")


class _Direction12(_Keyed):
    """One direction's TLS 1.2 AEAD state: the key, the implicit nonce part
    (`iv`: AES-GCM's 4-byte salt, ChaCha20-Poly1305's 12-byte IV) and the
    64-bit sequence number, which is also AES-GCM's explicit nonce, so a
    nonce is never used twice under one key (RFC 5288 §6.1)."""

    __slots__ = ("_explicit", "_iv", "_salt", "sequence_number")

    def __init__(self, params: SuiteParams, key: bytes, iv: bytes) -> None:
        if len(iv) != params.iv_len or not params.authentication:
            raise ValueError(f"{params.suite.name} is no TLS 1.2 suite with a {len(iv)}-byte IV")
        super().__init__(params, key)
        self._explicit = params.record_iv_len
        self._salt = iv if self._explicit else b""
        self._iv = 0 if self._explicit else int.from_bytes(iv, "big")
        self.sequence_number = 0

    def __repr__(self) -> str:
        return f"{type(self).__name__}(sequence_number={self.sequence_number})"

    def _nonce(self, seq: int) -> bytes:
        if seq > _MAX_SEQUENCE:
            raise SequenceExhausted("sequence number would wrap; the connection must end")
        if self._explicit:
            # RFC 5288 §3: nonce = salt (4, from the key block) || nonce_explicit (8).
            return self._salt + seq.to_bytes(8, "big")
        # RFC 7905 §2: the padded sequence number XOR the 12-byte IV.
        return (self._iv ^ seq).to_bytes(12, "big")


def _additional_data(seq: int, content_type: int, length: int, version: int = TLS12) -> bytes:
    # RFC 5246 §6.2.3.3: seq_num + TLSCompressed.type + TLSCompressed.version
    # + TLSCompressed.length (the plaintext's length); the version is the
    # record's own, so a changed header fails authentication.
    return b"".join(
        (
            seq.to_bytes(8, "big"),
            bytes((content_type, version >> 8, version & 0xFF)),
            length.to_bytes(2, "big"),
        )
    )


class RecordProtector12(_Direction12):
    """Seals TLS 1.2 records (our sending direction) with an AEAD suite."""

    __slots__ = ("_out",)

    def __init__(self, params: SuiteParams, key: bytes, iv: bytes) -> None:
        super().__init__(params, key, iv)
        self._out: bytearray | None = None  # made at the first `seal_reusing`

    def seal(self, content_type: int, data: bytes | memoryview) -> bytes:
        """One TLSCiphertext record carrying `data` (at most 2^14 bytes);
        ValueError for more."""
        if len(data) > MAX_PLAINTEXT:
            raise ValueError("record content exceeds 2^14 bytes")
        out = bytearray(len(data) + self._overhead())
        with memoryview(out) as view:
            self._seal_into(view, 0, content_type, data)
        return bytes(out)

    def seal_many(self, content_type: int, data: bytes | memoryview) -> bytes:
        """As many records as `data` needs, cut at 2^14 (one, maybe empty,
        for at most 2^14 bytes); nothing is kept once it returns."""
        out = bytearray(_wire_size(len(data), self._overhead()))
        with memoryview(out) as view:
            self._seal_records(view, content_type, data)
        return bytes(out)

    def seal_reusing(self, content_type: int, data: bytes | memoryview) -> memoryview:
        """What `seal_many` gives, as a view of this key's reused buffer; as
        `RecordProtector.seal_reusing`, it is written again only once every
        view of it is released."""
        size = _wire_size(len(data), self._overhead())
        out = _reusable(self._out, size)
        if size <= KEPT_AT_MOST:
            self._out = out
        with memoryview(out) as view:
            self._seal_records(view, content_type, data)
        return memoryview(out)[:size]

    def _seal_records(self, out: memoryview, content_type: int, data: bytes | memoryview) -> None:
        if len(data) <= MAX_PLAINTEXT:
            self._seal_into(out, 0, content_type, data)
            return
        source = memoryview(data)
        pos = 0
        for start in range(0, len(data), MAX_PLAINTEXT):
            pos = self._seal_into(out, pos, content_type, source[start : start + MAX_PLAINTEXT])

    def _overhead(self) -> int:
        # The explicit nonce (AES-GCM, RFC 5288 §3) and the tag; there is no
        # inner content type in TLS 1.2.
        return RECORD_HEADER_LEN + self._explicit + TAG_LEN

    def _seal_into(
        self, out: memoryview, pos: int, content_type: int, data: bytes | memoryview
    ) -> int:
        """Seal one record at `out[pos:]`; the record's end."""
        seq = self.sequence_number
        nonce = self._nonce(seq)
        self.sequence_number = seq + 1
        length = len(data)
        explicit = self._explicit
        fragment = explicit + length + TAG_LEN
        body = pos + RECORD_HEADER_LEN
        out[pos:body] = bytes((content_type,)) + _TLS12_VERSION + fragment.to_bytes(2, "big")
        if explicit:
            # Our explicit nonce is the sequence number (RFC 5288 §3).
            out[body : body + explicit] = nonce[4:]
        end = body + fragment
        (self._aead or self._built()).encrypt_into(
            nonce, data, _additional_data(seq, content_type, length), out[body + explicit : end])
        return end


class RecordUnprotector12(_Direction12):
    """Opens TLS 1.2 records (the peer's sending direction)."""

    __slots__ = ()

    def open(self, record: Record) -> tuple[int, bytes | memoryview]:
        """(content type, content) of a protected record; the outer type is
        the content's own in TLS 1.2 (RFC 5246 §6.2.3)."""
        content_type = record.content_type
        if content_type not in _TLS12_PROTECTED_TYPES:
            raise ProtocolError(Cause.change_cipher_spec_out_of_place, f"type {content_type}")
        fragment = record.fragment
        explicit = self._explicit
        length = len(fragment) - explicit - TAG_LEN
        # RFC 5246 §6.2.3 allows 2^14 + 2048 bytes of ciphertext; an AEAD
        # record needs only the plaintext's 2^14 plus its nonce and tag, so
        # anything longer cannot be honest (record_overflow).
        if length > MAX_PLAINTEXT:
            raise ProtocolError(Cause.record_too_long, f"ciphertext length {len(fragment)}")
        if length < 0:
            raise ProtocolError(Cause.record_undecryptable, "shorter than nonce and tag")
        seq = self.sequence_number
        nonce = self._nonce(seq)  # raises at a wrapped sequence number
        if explicit:
            # The sender chooses the explicit nonce (RFC 5288 §3); ours is
            # the sequence number, but a peer's may be anything.
            nonce = self._salt + bytes(fragment[:explicit])
        try:
            plaintext = (self._aead or self._built()).decrypt(
                nonce,
                fragment[explicit:],
                _additional_data(seq, content_type, length, record.legacy_record_version),
            )
        except (InvalidTag, ValueError):
            raise ProtocolError(Cause.record_undecryptable) from None
        self.sequence_number = seq + 1
        return content_type, plaintext
