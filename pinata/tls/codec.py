"""Bounded readers and writers for the TLS presentation language (RFC 8446 §3).

Every length prefix a `Reader` follows is checked against what remains and
against the caller's declared bounds, so a decoder built on it is total: it
returns a value or raises `ProtocolError(decode_error)`.

A struct is declared once: a class decorated with `wire` whose fields, in
the RFC's order, carry their wire kind (`Annotated[int, U16]`,
`Annotated[bytes, Vector(2, 1)]`, `list_of(...)`, a nested struct's
`struct_kind`). `wire` makes it a dataclass-like struct, immutable as mypy
sees it (not at run time, and not slotted), and compiles the declaration,
at the struct's first use, into its `__init__`, reader and writer, so no
field order or bound is written twice.
"""

from __future__ import annotations

import inspect
import struct
import typing
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import MISSING, dataclass, field, fields
from typing import Any, NamedTuple, NoReturn, TypeVar, dataclass_transform

from pinata.tls.errors import ProtocolError, decode_error

_PREFIX_MAX = {1: 0xFF, 2: 0xFFFF, 3: 0xFFFFFF}


# The refusals every reader shares, in one wording; the compiled struct code
# calls them too (only on the error path).
def _short(need: int, remain: int) -> NoReturn:
    raise decode_error(f"need {need} bytes, {remain} remain")


def _outside(n: int, minimum: int, maximum: int) -> NoReturn:
    raise decode_error(f"vector length {n} outside [{minimum}, {maximum}]")


def _not_items(n: int, item: int) -> NoReturn:
    raise decode_error(f"vector of {n} bytes is not a list of {item}-byte items")


def _unfit(n: int, minimum: int, maximum: int) -> NoReturn:
    # Writing out of bounds is our mistake, not the peer's.
    raise ValueError(f"vector of {n} bytes outside [{minimum}, {maximum}]")


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
            _short(n, self._end - self._pos)
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

    def _span(self, prefix: int, minimum: int, maximum: int) -> tuple[int, int]:
        # `opaque x<minimum..maximum>`'s bounds, once for `_opaque` and `_sub`:
        # the length, checked against the bounds and what remains, consumed.
        # The compiled struct code inlines the same checks (`_read_lines`).
        pos = self._pos
        start = pos + prefix
        end = self._end
        if start > end:
            _short(prefix, end - pos)
        n = int.from_bytes(self._buf[pos:start], "big")
        if n < minimum or n > maximum:
            _outside(n, minimum, maximum)
        stop = start + n
        if stop > end:
            _short(n, end - start)
        self._pos = stop
        return start, stop

    def _opaque(self, prefix: int, minimum: int, maximum: int) -> bytes:
        start, stop = self._span(prefix, minimum, maximum)
        return bytes(self._buf[start:stop])

    def vector(self, prefix: int, minimum: int = 0, maximum: int | None = None) -> bytes:
        """An opaque vector `opaque x<minimum..maximum>` with a `prefix`-byte length."""
        bound = _PREFIX_MAX[prefix]  # KeyError for a prefix other than 1, 2 or 3
        return self._opaque(prefix, minimum, bound if maximum is None else maximum)

    def sub(self, prefix: int, minimum: int = 0, maximum: int | None = None) -> Reader:
        """A reader over a length-prefixed vector, for parsing its elements."""
        bound = _PREFIX_MAX[prefix]  # KeyError for a prefix other than 1, 2 or 3
        return self._sub(prefix, minimum, bound if maximum is None else maximum)

    def _sub(self, prefix: int, minimum: int, maximum: int) -> Reader:
        # A window on the same buffer (no slice, no copy: one object per vector).
        start, stop = self._span(prefix, minimum, maximum)
        window = Reader.__new__(Reader)
        window._buf = self._buf
        window._pos = start
        window._end = stop
        return window

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
        if self.prefix not in _PREFIX_MAX:
            raise ValueError("prefix must be 1, 2 or 3")
        bound = _PREFIX_MAX[self.prefix] if self.maximum is None else self.maximum
        object.__setattr__(self, "bound", bound)

    def read(self, r: Reader) -> bytes:
        """The vector's content at `r`."""
        data = r._opaque(self.prefix, self.minimum, self.bound)
        if self.item != 1 and len(data) % self.item:
            _not_items(len(data), self.item)
        return data

    def reader(self, r: Reader) -> Reader:
        """A reader over the vector at `r`, for parsing its elements."""
        return r._sub(self.prefix, self.minimum, self.bound)

    def read_u16s(self, r: Reader) -> tuple[int, ...]:
        """A vector of uint16 (`item` must be 2)."""
        data = self.read(r)
        return struct.unpack(f">{len(data) // 2}H", data)

    def write(self, w: Writer, data: bytes) -> None:
        """`data` with its length prefix; `ValueError` if out of bounds."""
        n = len(data)
        if not self.minimum <= n <= self.bound or n % self.item:
            _unfit(n, self.minimum, self.bound)
        buf = w._buf
        buf += n.to_bytes(self.prefix, "big")
        buf += data

    def write_u16s(self, w: Writer, values: Sequence[int]) -> None:
        """A vector of uint16; `ValueError` if out of bounds."""
        self.write(w, struct.pack(f">{len(values)}H", *values))

    @contextmanager
    def block(self, w: Writer) -> Iterator[None]:
        """Everything written inside is the vector's content, bounds checked at the end."""
        start = self.open(w)
        yield
        self.close(w, start)

    def open(self, w: Writer) -> int:
        """Reserve the length prefix; returns where it starts, for `close`.
        (`block` without a generator frame, for the per-message paths.)"""
        start = len(w._buf)
        w._buf += bytes(self.prefix)
        return start

    def close(self, w: Writer, start: int) -> None:
        """Fill in the prefix reserved at `start`; `ValueError` if out of bounds."""
        n = len(w._buf) - start - self.prefix
        if not self.minimum <= n <= self.bound or n % self.item:
            _unfit(n, self.minimum, self.bound)
        w._buf[start : start + self.prefix] = n.to_bytes(self.prefix, "big")


# ---- one schema per struct ------------------------------------------------


class Kind(NamedTuple):
    """How one field travels: the function that reads it from a `Reader` and
    the one that writes it to a `Writer`. A struct's fields are declared once,
    as `Annotated[type, kind]` in the RFC's order, and `wire` compiles them
    into the struct's own reader and writer (see `wire`)."""

    read: Callable[[Reader], Any]
    write: Callable[[Writer, Any], None]
    # The vector that bounds the field, when it is one (for tests and tools).
    vector: Vector | None = None
    # What `wire` may write out in the struct's own code instead of calling
    # `read` and `write` (no call per field): ("uint", width), ("fixed", n),
    # ("opaque", 0) for a byte vector bounded by `vector`, ("u16s", 0) for
    # a list of uint16 bounded by `vector`.
    form: tuple[str, int] | None = None


def _uint(width: int) -> Kind:
    read = {1: Reader.u8, 2: Reader.u16, 3: Reader.u24, 4: Reader.u32}[width]
    write = {1: Writer.u8, 2: Writer.u16, 3: Writer.u24, 4: Writer.u32}[width]
    return Kind(read, write, None, ("uint", width))


U8 = _uint(1)  # uint8
U16 = _uint(2)  # uint16
U24 = _uint(3)  # uint24
U32 = _uint(4)  # uint32
REST = Kind(Reader.rest, Writer.fixed)  # the rest of the body (its length is the type's)


def fixed(n: int) -> Kind:
    """`opaque x[n]`: exactly `n` bytes; writing any other length is `ValueError`."""

    def read(r: Reader) -> bytes:
        return bytes(r._take(n))

    def write(w: Writer, data: bytes) -> None:
        if len(data) != n:
            raise ValueError(f"field must be {n} bytes, not {len(data)}")
        w.fixed(data)

    return Kind(read, write, None, ("fixed", n))


def opaque(vector: Vector) -> Kind:
    """`opaque x<min..max>` as bytes."""
    return Kind(vector.read, vector.write, vector, ("opaque", 0) if vector.item == 1 else None)


def uint16s(vector: Vector) -> Kind:
    """`uint16 x<min..max>` (a list of 16-bit values) as a tuple of ints."""
    if vector.item != 2:
        raise ValueError("a uint16 list needs item=2")
    return Kind(vector.read_u16s, vector.write_u16s, vector, ("u16s", 0))


def uint8s(vector: Vector) -> Kind:
    """`uint8 x<min..max>` as a tuple of ints."""

    def read(r: Reader) -> tuple[int, ...]:
        return tuple(vector.read(r))

    def write(w: Writer, values: Sequence[int]) -> None:
        vector.write(w, bytes(values))

    return Kind(read, write, vector)


def list_of(vector: Vector, item: Kind) -> Kind:
    """`T x<min..max>` for items of kind `item`, as a tuple; every item must
    end inside the vector (a short one is `decode_error`)."""
    read_item, write_item = item.read, item.write

    def read(r: Reader) -> tuple[Any, ...]:
        block = vector.reader(r)
        items = []
        while block._pos < block._end:
            items.append(read_item(block))
        return tuple(items)

    def write(w: Writer, values: Sequence[Any]) -> None:
        start = vector.open(w)
        for value in values:
            write_item(w, value)
        vector.close(w, start)

    return Kind(read, write, vector)


_S = TypeVar("_S")


def _kind_of(owner: type, name: str, hint: object) -> Kind:
    kinds = [m for m in getattr(hint, "__metadata__", ()) if isinstance(m, Kind | Vector)]
    if len(kinds) != 1:
        raise TypeError(f"{owner.__name__}.{name} needs one wire kind in Annotated[...]")
    kind = kinds[0]
    return opaque(kind) if isinstance(kind, Vector) else kind


class _StructMethods:
    """The methods every struct shares (copied onto each by `wire`, which
    generates only what depends on the fields): compared, hashed and shown
    by its fields in schema order, as a frozen dataclass is. They read the
    fields by name, never through `__dict__`, which would turn the instance's
    compact attribute storage into a dictionary (slower to read, larger)."""

    _wire_names: tuple[str, ...]

    def _wire_values(self) -> list[object]:
        return [getattr(self, name) for name in self._wire_names]

    def __eq__(self, other: object) -> bool:
        if other.__class__ is self.__class__:
            return self._wire_values() == other._wire_values()
        return NotImplemented

    def __hash__(self) -> int:
        return hash(tuple(self._wire_values()))

    def __repr__(self) -> str:
        inner = ", ".join(f"{n}={getattr(self, n)!r}" for n in self._wire_names)
        return f"{self.__class__.__qualname__}({inner})"


_STRUCT_METHODS = {
    name: vars(_StructMethods)[name]
    for name in ("_wire_values", "__eq__", "__hash__", "__repr__")
}


def _schema(cls: type) -> list[tuple[str, Kind]]:
    # Each field's wire kind from its annotation, in declaration order.
    hints: dict[str, object] = dict(inspect.get_annotations(cls))
    if any(isinstance(hint, str) for hint in hints.values()):  # postponed annotations
        hints = typing.get_type_hints(cls, include_extras=True)
    schema = []
    for f in fields(cls):
        # (`__init__` takes the fields as parameters beside `self`.)
        if f.name.startswith("_") or f.name == "self":
            raise TypeError(f"{cls.__name__}.{f.name}: a wire field has a public name")
        if f.default_factory is not MISSING:
            raise TypeError(f"{cls.__name__}.{f.name}: a wire field's default is a value")
        schema.append((f.name, _kind_of(cls, f.name, hints[f.name])))
    return schema


def _read_lines(i: int, kind: Kind) -> list[str]:
    # Field i's read into `v{i}`, over the locals `buf`, `pos`, `end` (the
    # reader's state, written back before any call and at the end). The
    # checks are `Reader._span`'s, in the same order and wording.
    form, n = kind.form or ("call", 0)
    if form in ("uint", "fixed"):
        value = "from_bytes(buf[pos:stop], 'big')" if form == "uint" else "bytes(buf[pos:stop])"
        return [f"stop = pos + {n}", f"if stop > end: short({n}, end - pos)",
                f"v{i} = {value}", "pos = stop"]  # fmt: skip
    if form in ("opaque", "u16s") and kind.vector is not None:
        p, lo, hi = kind.vector.prefix, kind.vector.minimum, kind.vector.bound
        lines = [f"stop = pos + {p}", f"if stop > end: short({p}, end - pos)",
                 "n = from_bytes(buf[pos:stop], 'big')",
                 f"if n < {lo} or n > {hi}: outside(n, {lo}, {hi})",
                 "pos = stop + n", "if pos > end: short(n, end - stop)",
                 f"v{i} = bytes(buf[stop:pos])"]  # fmt: skip
        if form == "u16s":  # `Vector.read_u16s`'s check and unpacking
            lines += ["if n % 2: not_items(n, 2)", f"v{i} = unpack(f'>{{n // 2}}H', v{i})"]
        return lines
    return ["r._pos = pos", f"v{i} = r{i}(r)", "pos = r._pos"]


def _write_lines(i: int, name: str, kind: Kind) -> list[str]:
    # Field i's write onto `buf` (the writer's own bytearray, grown in place).
    form, n = kind.form or ("call", 0)
    if form == "uint":
        return [f"buf += o.{name}.to_bytes({n}, 'big')"]
    if form in ("opaque", "u16s") and kind.vector is not None:
        p, lo, hi = kind.vector.prefix, kind.vector.minimum, kind.vector.bound
        value = f"o.{name}" if form == "opaque" else f"pack(f'>{{len(o.{name})}}H', *o.{name})"
        return [f"v = {value}", "n = len(v)", f"if n < {lo} or n > {hi}: unfit(n, {lo}, {hi})",
                f"buf += n.to_bytes({p}, 'big')", "buf += v"]  # fmt: skip
    return [f"w{i}(w, o.{name})"]


def _struct_source(cls: type, schema: list[tuple[str, Kind]], env: dict[str, Any]) -> str:
    # One compiled unit per struct: `__init__`, `read` and `write`, straight
    # line over the fields with no call for a uint or a byte vector (the
    # commonest fields: a ClientHello's extensions are each one call).
    numbered = list(enumerate(fields(cls)))
    env.update(short=_short, outside=_outside, not_items=_not_items, unfit=_unfit,
               from_bytes=int.from_bytes, unpack=struct.unpack, pack=struct.pack)  # fmt: skip
    for i, f in numbered:
        _, kind = schema[i]
        env[f"r{i}"], env[f"w{i}"], env[f"d{i}"] = kind.read, kind.write, f.default
    params = [f.name if f.default is MISSING else f"{f.name}=d{i}" for i, f in numbered]
    positional = [p for p, (_, f) in zip(params, numbered, strict=True) if not f.kw_only]
    keyword = [p for p, (_, f) in zip(params, numbered, strict=True) if f.kw_only]
    signature = ", ".join(["self", *positional, *(["*", *keyword] if keyword else [])])
    init = [f"self.{f.name} = {f.name}" for _, f in numbered] or ["pass"]
    # `read` fills the instance as `__init__` does, without the second call.
    read = ["buf = r._buf", "pos = r._pos", "end = r._end"]
    read += [line for i, (_, kind) in enumerate(schema) for line in _read_lines(i, kind)]
    read += ["r._pos = pos", "o = new(cls)"]
    read += [f"o.{f.name} = v{i}" for i, f in numbered] + ["return o"]
    write = ["buf = w._buf"]
    write += [line for i, (name, kind) in enumerate(schema) for line in _write_lines(i, name, kind)]

    def body(lines: list[str]) -> str:
        return "".join(f"\n    {line}" for line in lines)

    return (f"def __init__({signature}):{body(init)}\n"
            f"def read(r):{body(read)}\n"
            f"def write(w, o):{body(write)}\n")  # fmt: skip


def _lazy(cls: type, schema: list[tuple[str, Kind]]) -> None:
    # The unit is compiled at the struct's first use, not at import: most of
    # the 36 structs serve no given connection (TLS 1.2's, HelloRetryRequest's,
    # the client's), and compiling them all was most of the engine's import
    # (issue 18: start-up). A struct nested in another (`struct_kind`) is
    # compiled when that one is declared, so the outer code calls the real
    # reader, never a stub. Compiling is idempotent: the same source from the
    # same schema, installed on the class it describes.

    def compiled() -> Kind:
        kind: Kind = cls.__dict__["wire"]
        if kind.read is read:
            env: dict[str, Any] = {"cls": cls, "new": object.__new__}
            exec(_struct_source(cls, schema, env), env)
            cls.__init__ = env["__init__"]  # type: ignore[misc]
            kind = Kind(env["read"], env["write"])
            cls.wire = kind  # type: ignore[attr-defined]
        return kind

    def init(self: object, *args: Any, **kwargs: Any) -> None:
        compiled()
        vars(cls)["__init__"](self, *args, **kwargs)

    def read(r: Reader) -> Any:
        return compiled().read(r)

    def write(w: Writer, value: Any) -> None:
        compiled().write(w, value)

    cls.__init__ = init  # type: ignore[misc]
    cls.wire = Kind(read, write)  # type: ignore[attr-defined]
    cls._compile_wire = staticmethod(compiled)  # type: ignore[attr-defined]


@dataclass_transform(frozen_default=True, field_specifiers=(field,))
def wire(cls: type[_S]) -> type[_S]:
    """Make `cls` a struct whose annotated fields, in declaration order (the
    wire order), are its schema: a dataclass for `dataclasses.fields` and
    `replace`, frozen as mypy sees it (`dataclass_transform`: assigning a
    field is a type error, and `mypy --strict` runs on all our code), compared,
    hashed and shown by its fields, with its `wire` kind (reader and writer)
    and `schema`.

    `dataclasses` would generate six methods per class at import, and a
    frozen `__init__` pays `object.__setattr__` per field (about three times
    a plain one, issue 18) to refuse at run time what mypy already refuses;
    here `__init__` stores the fields as any object does. One small
    unit per struct is compiled at its first use (`__init__`, reading and
    writing, straight line, as the hand-written code was) and the rest are
    shared functions. Field names are the class's own identifiers, never
    peer data. Raises `TypeError` for a field without exactly one wire kind."""
    undocumented = cls.__doc__ is None
    if undocumented:  # or dataclasses would render inspect.signature(cls) for one
        cls.__doc__ = cls.__name__
    dataclass(init=False, repr=False, eq=False)(cls)  # fields only, no generated code
    schema = _schema(cls)
    if undocumented:
        cls.__doc__ = f"{cls.__name__}({', '.join(name for name, _ in schema)})"
    for name, method in _STRUCT_METHODS.items():
        if name not in cls.__dict__:
            setattr(cls, name, method)
    cls.schema = tuple(schema)  # type: ignore[attr-defined]
    cls._wire_names = tuple(name for name, _ in schema)  # type: ignore[attr-defined]
    _lazy(cls, schema)
    return cls


def struct_kind(cls: type) -> Kind:
    """The `wire` kind of a struct declared with `wire`, to nest it in
    another: compiled now, so the outer struct calls it directly."""
    compile_wire = getattr(cls, "_compile_wire", None)
    if compile_wire is None:
        raise TypeError(f"{cls.__name__} has no wire schema")
    kind: Kind = compile_wire()
    return kind


__all__ = [
    "REST",
    "U8",
    "U16",
    "U24",
    "U32",
    "Kind",
    "ProtocolError",
    "Reader",
    "Vector",
    "Writer",
    "fixed",
    "list_of",
    "opaque",
    "struct_kind",
    "uint8s",
    "uint16s",
    "wire",
]
