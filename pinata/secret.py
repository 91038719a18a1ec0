"""The bait: a value that never shows itself.

`Secret` keeps its bytes behind a method whose name says what calling it
means. Its repr and str are fixed placeholders, it refuses pickling and
equality by value, so the bytes cannot drift into a log line, a trace, an
exception message or a web page by accident. Only the appliance's release
path, after a verified handshake, calls `reveal_for_verified_peer`.
"""

from __future__ import annotations

from typing import NoReturn


class Secret:
    __slots__ = ("__value",)

    def __init__(self, value: bytes) -> None:
        if not isinstance(value, bytes):
            raise TypeError("a secret is bytes")
        self.__value = value

    def reveal_for_verified_peer(self) -> bytes:
        """The bytes, for the one caller allowed them: a peer whose chain validated."""
        return self.__value

    def occurs_in(self, data: bytes | bytearray | memoryview) -> bool:
        """Whether the secret's bytes appear in `data`: for leak checks, which
        must compare without ever holding the value themselves."""
        return self.__value in bytes(data)

    def __len__(self) -> int:
        return len(self.__value)

    def __repr__(self) -> str:
        return "Secret(<hidden>)"

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return repr(self)

    def __bytes__(self) -> NoReturn:
        raise TypeError("a Secret is not converted to bytes implicitly")

    def __reduce__(self) -> NoReturn:
        raise TypeError("a Secret is not pickled")

    def __eq__(self, other: object) -> bool:
        return self is other

    def __hash__(self) -> int:
        return id(self)
