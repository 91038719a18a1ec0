"""Bounded readers and writers for the TLS presentation language (RFC 8446 §3).

Every length prefix a `Reader` follows is checked against what remains and
against the caller's declared bounds, so a decoder built on it is total: it
returns a value or raises `ProtocolError(decode_error)`.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

from pinata.tls.errors import ProtocolError, decode_error

_PREFIX_MAX = {1: 0xFF, 2: 0xFFFF, 3: 0xFFFFFF}


class Reader:
    """Reads from a fixed buffer; every read is bounds-checked."""

    __slots__ = ("_buf", "_end", "_pos")

    def __init__(self, data: bytes | bytearray | memoryview) -> None:
        self._buf = memoryview(data)
        self._pos = 0
        self._end = len(self._buf)

    @property
    def remaining(self) -> int:
        return self._end - self._pos

    def at_end(self) -> bool:
        return self._pos >= self._end

    def expect_end(self, what: str = "message") -> None:
        if self._pos != self._end:
            raise decode_error(f"{self._end - self._pos} trailing bytes after {what}")

    def _take(self, n: int) -> memoryview:
        if n < 0 or n > self._end - self._pos:
            raise decode_error(f"need {n} bytes, {self._end - self._pos} remain")
        view = self._buf[self._pos : self._pos + n]
        self._pos += n
        return view

    def u8(self) -> int:
        return self._take(1)[0]

    def u16(self) -> int:
        return int.from_bytes(self._take(2), "big")

    def u24(self) -> int:
        return int.from_bytes(self._take(3), "big")

    def u32(self) -> int:
        return int.from_bytes(self._take(4), "big")

    def fixed(self, n: int) -> bytes:
        return bytes(self._take(n))

    def _length(self, prefix: int, minimum: int, maximum: int) -> int:
        if prefix == 1:
            n = self.u8()
        elif prefix == 2:
            n = self.u16()
        elif prefix == 3:
            n = self.u24()
        else:  # pragma: no cover - programming error, not peer input
            raise ValueError("prefix must be 1, 2 or 3")
        if n < minimum or n > maximum:
            raise decode_error(f"vector length {n} outside [{minimum}, {maximum}]")
        return n

    def vector(self, prefix: int, minimum: int = 0, maximum: int | None = None) -> bytes:
        """An opaque vector `opaque x<minimum..maximum>` with a `prefix`-byte length."""
        bound = _PREFIX_MAX[prefix] if maximum is None else maximum
        return bytes(self._take(self._length(prefix, minimum, bound)))

    def sub(self, prefix: int, minimum: int = 0, maximum: int | None = None) -> Reader:
        """A reader over a length-prefixed vector, for parsing its elements."""
        bound = _PREFIX_MAX[prefix] if maximum is None else maximum
        return Reader(self._take(self._length(prefix, minimum, bound)))

    def rest(self) -> bytes:
        return bytes(self._take(self._end - self._pos))


class Writer:
    """Builds a message; length prefixes are filled in when their block closes."""

    __slots__ = ("_buf",)

    def __init__(self) -> None:
        self._buf = bytearray()

    def u8(self, v: int) -> None:
        self._buf.append(v)

    def u16(self, v: int) -> None:
        self._buf += v.to_bytes(2, "big")

    def u24(self, v: int) -> None:
        self._buf += v.to_bytes(3, "big")

    def u32(self, v: int) -> None:
        self._buf += v.to_bytes(4, "big")

    def fixed(self, data: bytes) -> None:
        self._buf += data

    def vector(self, prefix: int, data: bytes) -> None:
        if len(data) > _PREFIX_MAX[prefix]:
            raise ValueError(f"{len(data)} bytes do not fit a {prefix}-byte length")
        self._buf += len(data).to_bytes(prefix, "big")
        self._buf += data

    @contextmanager
    def prefixed(self, prefix: int) -> Iterator[None]:
        """Everything written inside the block gets a `prefix`-byte length in front."""
        start = len(self._buf)
        self._buf += bytes(prefix)
        yield
        n = len(self._buf) - start - prefix
        if n > _PREFIX_MAX[prefix]:
            raise ValueError(f"{n} bytes do not fit a {prefix}-byte length")
        self._buf[start : start + prefix] = n.to_bytes(prefix, "big")

    @property
    def position(self) -> int:
        return len(self._buf)

    def getvalue(self) -> bytes:
        return bytes(self._buf)


@dataclass(frozen=True, slots=True)
class Vector:
    """One vector field's schema, written once: `T x<minimum..maximum>` with a
    `prefix`-byte length (RFC 8446 §3.4), whose length must be a multiple of
    `item` (2 for a list of uint16). The same descriptor parses and
    serialises, so the two directions cannot disagree about a bound.

    Parsing a vector out of bounds is the peer's fault (`decode_error`);
    serialising one is ours (`ValueError`: we never send what we would refuse).
    """

    prefix: int
    minimum: int = 0
    maximum: int | None = None
    item: int = 1
    # The effective maximum (the prefix's own when `maximum` is None).
    bound: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        bound = _PREFIX_MAX[self.prefix] if self.maximum is None else self.maximum
        object.__setattr__(self, "bound", bound)

    def read(self, r: Reader) -> bytes:
        """The vector's content at `r`."""
        data = bytes(r._take(r._length(self.prefix, self.minimum, self.bound)))
        if self.item != 1 and len(data) % self.item:
            raise decode_error(
                f"vector of {len(data)} bytes is not a list of {self.item}-byte items"
            )
        return data

    def reader(self, r: Reader) -> Reader:
        """A reader over the vector at `r`, for parsing its elements."""
        return Reader(r._take(r._length(self.prefix, self.minimum, self.bound)))

    def read_u16s(self, r: Reader) -> tuple[int, ...]:
        """A vector of uint16 (`item` must be 2)."""
        data = self.read(r)
        return struct.unpack(f">{len(data) // 2}H", data)

    def check(self, length: int) -> None:
        """`ValueError` unless `length` bytes fit this vector (a local mistake)."""
        if not self.minimum <= length <= self.bound or length % self.item:
            raise ValueError(f"vector of {length} bytes outside [{self.minimum}, {self.bound}]")

    def write(self, w: Writer, data: bytes) -> None:
        """`data` with its length prefix; `ValueError` if out of bounds."""
        self.check(len(data))
        w.vector(self.prefix, data)

    def write_u16s(self, w: Writer, values: Sequence[int]) -> None:
        """A vector of uint16; `ValueError` if out of bounds."""
        self.write(w, struct.pack(f">{len(values)}H", *values))

    @contextmanager
    def block(self, w: Writer) -> Iterator[None]:
        """Everything written inside is the vector's content, bounds checked at the end."""
        start = w.position
        with w.prefixed(self.prefix):
            yield
        self.check(w.position - start - self.prefix)


__all__ = ["ProtocolError", "Reader", "Vector", "Writer"]
