"""A vector's schema, written once, bounds parsing and serialising alike."""

from __future__ import annotations

import dataclasses
from typing import Annotated

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pinata.tls import extensions, messages
from pinata.tls.codec import (
    U16,
    Kind,
    Reader,
    Vector,
    Writer,
    list_of,
    opaque,
    struct_kind,
    uint16s,
    wire,
)
from pinata.tls.errors import Cause, ProtocolError

# Every struct the codecs declare with `wire`, read off the modules rather
# than listed by hand, and every vector bound among their fields.
STRUCTS = sorted(
    {
        value
        for module in (messages, extensions)
        for value in vars(module).values()
        if isinstance(value, type) and isinstance(getattr(value, "wire", None), Kind)
    },
    key=lambda cls: cls.__qualname__,
)
SCHEMAS = sorted(
    [
        (f"{cls.__qualname__}.{name}", kind.vector)
        for cls in STRUCTS
        for name, kind in cls.schema
        if kind.vector is not None
    ]
    + [
        (f"{module.__name__}.{name}", value)
        for module in (messages, extensions)
        for name, value in vars(module).items()
        if isinstance(value, Vector)
    ],
    key=lambda item: item[0],
)


def test_the_codecs_declare_their_schemas() -> None:
    # 10 messages, the extension, 14 typed extension bodies and 3 nested structs.
    assert len(STRUCTS) >= 27
    assert len(SCHEMAS) >= 20


@pytest.mark.parametrize("cls", STRUCTS, ids=[c.__qualname__ for c in STRUCTS])
def test_every_field_is_declared_once_in_wire_order(cls: type) -> None:
    # The schema is the dataclass's fields, in declaration order, one kind each:
    # there is no second list for parse or serialize to drift from.
    assert [name for name, _ in cls.schema] == [f.name for f in dataclasses.fields(cls)]
    assert all(isinstance(kind, Kind) for _, kind in cls.schema)


@pytest.mark.parametrize(("name", "schema"), SCHEMAS, ids=[n for n, _ in SCHEMAS])
@given(data=st.data())
def test_both_directions_agree_on_every_bound(
    name: str, schema: Vector, data: st.DataObject
) -> None:
    # Lengths around both bounds, within what the prefix can express.
    top = min(schema.bound + 2, 256**schema.prefix - 1, 300)
    length = data.draw(st.integers(0, top))
    body = bytes(length)
    encoded = len(body).to_bytes(schema.prefix, "big") + body
    inside = schema.minimum <= length <= schema.bound and length % schema.item == 0
    if inside:
        w = Writer()
        schema.write(w, body)
        assert w.getvalue() == encoded
        assert schema.read(Reader(encoded)) == body
    else:
        with pytest.raises(ValueError):
            schema.write(Writer(), body)
        with pytest.raises(ProtocolError) as refused:
            schema.read(Reader(encoded))
        assert refused.value.cause is Cause.malformed_message


def test_a_block_checks_its_bounds_when_it_closes() -> None:
    schema = Vector(2, 3)
    w = Writer()
    with pytest.raises(ValueError), schema.block(w):
        w.u8(1)
    w = Writer()
    with schema.block(w):
        w.fixed(b"abc")
    assert w.getvalue() == b"\x00\x03abc"


# ---- the compiled struct codec ----------------------------------------------


@wire
class _Sample:
    # Wire order is declaration order, whether a field is keyword-only or not.
    version: Annotated[int, U16] = dataclasses.field(default=0x0303, kw_only=True)
    name: Annotated[bytes, Vector(1, 1, 8)]
    values: Annotated[tuple[int, ...], uint16s(Vector(2, 0, 6, item=2))]
    entries: Annotated[tuple[bytes, ...], list_of(Vector(2), opaque(Vector(1)))]


def test_a_struct_reads_and_writes_its_fields_in_declaration_order() -> None:
    sample = _Sample(b"ab", (1, 2), (b"", b"x"), version=0x0304)
    encoded = b"\x03\x04" + b"\x02ab" + b"\x00\x04\x00\x01\x00\x02" + b"\x00\x03\x00\x01x"
    w = Writer()
    _Sample.wire.write(w, sample)  # type: ignore[attr-defined]
    assert w.getvalue() == encoded
    assert _Sample.wire.read(Reader(encoded)) == sample  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "encoded",
    [
        b"\x03\x04\x00",  # name<1..8> empty
        b"\x03\x04\x09" + bytes(9),  # name over 8
        b"\x03\x04\x01a\x00\x03\x00\x01\x00",  # values not whole uint16s
        b"\x03\x04\x01a\x00\x00\x00\x02\x05a",  # an entry running past its list
        b"\x03\x04\x01a\x00\x00",  # truncated before entries
    ],
)
def test_a_struct_refuses_what_breaks_its_schema(encoded: bytes) -> None:
    with pytest.raises(ProtocolError) as refused:
        _Sample.wire.read(Reader(encoded))  # type: ignore[attr-defined]
    assert refused.value.cause is Cause.malformed_message


def test_a_field_without_a_wire_kind_is_refused_when_declared() -> None:
    with pytest.raises(TypeError):

        @wire
        class _Unschemed:
            x: int


def _pair() -> tuple[type, type]:
    # Two structs with the same fields, declared fresh: nothing has used them.
    @wire
    class _A:
        x: Annotated[int, U16]
        y: Annotated[bytes, Vector(1)] = b""

    @wire
    class _B:
        x: Annotated[int, U16]
        y: Annotated[bytes, Vector(1)] = b""

    return _A, _B


@pytest.mark.parametrize("first", ["init", "read", "write"])
def test_a_struct_works_whichever_use_comes_first(first: str) -> None:
    # Its code is compiled at first use (issue 18: import time); every entry
    # point must give the same result as if it had been compiled at import.
    a, _ = _pair()
    encoded = b"\x01\x02\x02hi"
    if first == "read":
        assert a.wire.read(Reader(encoded)) == a(0x0102, b"hi")  # type: ignore[attr-defined]
    w = Writer()
    value = a(0x0102, y=b"hi")
    a.wire.write(w, value)  # type: ignore[attr-defined]
    assert w.getvalue() == encoded
    assert a.wire.read(Reader(encoded)) == value  # type: ignore[attr-defined]
    assert a(7).y == b""


def test_a_struct_is_compared_hashed_and_shown_by_type_and_fields() -> None:
    # As a frozen dataclass is (its immutability is mypy's to enforce).
    a, b = _pair()
    one = a(1, b"x")
    assert one == a(1, b"x") and hash(one) == hash(a(1, b"x"))
    assert one != a(2, b"x") and one != a(1, b"y") and one != b(1, b"x")
    assert repr(one) == f"{a.__qualname__}(x=1, y=b'x')"
    assert dataclasses.replace(one, y=b"z") == a(1, b"z")
    assert [f.name for f in dataclasses.fields(one)] == ["x", "y"]


def test_a_nested_struct_is_called_directly() -> None:
    # The outer struct's reader calls the nested one's compiled reader, not a
    # stub that compiles on first use and then forwards every call.
    a, _ = _pair()
    nested = struct_kind(a)
    kind = list_of(Vector(2), nested)
    assert kind.read(Reader(b"\x00\x04\x00\x01\x01z")) == (a(1, b"z"),)
    assert a.wire is nested  # type: ignore[attr-defined]  # (a stub would have been replaced)


def _read_field_by_field(cls: type, r: Reader) -> list[object]:
    # The schema's own readers, one call per field: what the compiled code
    # writes out inline must agree with them byte for byte and error for error.
    return [kind.read(r) for _, kind in cls.schema]  # type: ignore[attr-defined]


# Bytes rich in small values, so that length prefixes often fit what follows.
_STRUCTURED = st.lists(
    st.sampled_from([b"\x00", b"\x01", b"\x02", b"\x03", b"\x04"]) | st.binary(max_size=3),
    max_size=40,
).map(b"".join)


@pytest.mark.parametrize("cls", STRUCTS, ids=[c.__qualname__ for c in STRUCTS])
@given(data=_STRUCTURED, cut=st.integers(0, 80))
def test_the_compiled_code_agrees_with_the_schema(cls: type, data: bytes, cut: int) -> None:
    # Arbitrary bytes, and a prefix of them (truncation at every point).
    for body in (data, data[:cut]):
        ours, theirs = Reader(body), Reader(body)
        try:
            expected = _read_field_by_field(cls, theirs)
        except ProtocolError as refused:
            with pytest.raises(ProtocolError) as also:
                cls.wire.read(ours)  # type: ignore[attr-defined]
            assert str(also.value) == str(refused) and also.value.cause is refused.cause
            continue
        value = cls.wire.read(ours)  # type: ignore[attr-defined]
        assert [getattr(value, name) for name, _ in cls.schema] == expected  # type: ignore[attr-defined]
        assert ours.remaining == theirs.remaining
        # And what it read, written back, field by field and compiled alike.
        written, by_field = Writer(), Writer()
        cls.wire.write(written, value)  # type: ignore[attr-defined]
        for (_, kind), field_value in zip(cls.schema, expected, strict=True):  # type: ignore[attr-defined]
            kind.write(by_field, field_value)
        assert written.getvalue() == by_field.getvalue()
