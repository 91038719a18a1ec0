"""Transcript-Hash (RFC 8446 §4.4.1): a running hash of the handshake messages.

The ClientHello arrives before the suite, and so the hash, is known: messages
are buffered until `select_hash`, then fed straight into one hashlib object
whose state is copied only when a digest is asked for.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pinata.tls.constants import HandshakeType
from pinata.tls.errors import LocalProtocolError
from pinata.tls.suites import hash_params

if TYPE_CHECKING:
    from hashlib import _Hash


class Transcript:
    __slots__ = ("_hash", "_messages", "_pending")

    def __init__(self) -> None:
        self._pending: list[bytes] = []
        self._hash: _Hash | None = None
        self._messages = 0

    def __repr__(self) -> str:
        name = "unselected" if self._hash is None else self._hash.name
        return f"Transcript({name}, {self._messages} messages)"

    @property
    def hash_name(self) -> str | None:
        return None if self._hash is None else self._hash.name

    def add(self, message: bytes | memoryview) -> None:
        """One whole handshake message, header included, as sent on the wire."""
        self._messages += 1
        if self._hash is None:
            self._pending.append(bytes(message))
        else:
            self._hash.update(message)

    def select_hash(self, hash_name: str) -> None:
        """Fix the hash (the negotiated suite's) and hash what was buffered."""
        if self._hash is not None:
            raise LocalProtocolError("the transcript hash is already selected")
        factory, _ = hash_params(hash_name)
        h = factory()
        for message in self._pending:
            h.update(message)
        self._pending = []
        self._hash = h

    def digest(self) -> bytes:
        """Transcript-Hash of every message added so far."""
        if self._hash is None:
            raise LocalProtocolError("the transcript hash is not selected yet")
        return self._hash.copy().digest()

    def restart_after_hello_retry_request(self) -> None:
        """Replace ClientHello1 by message_hash(Hash(ClientHello1)) (§4.4.1).

        Call it with ClientHello1 the only message added, before adding the
        HelloRetryRequest; the hash must be selected (HRR names the suite).
        """
        if self._hash is None:
            raise LocalProtocolError("the transcript hash is not selected yet")
        if self._messages != 1:
            raise LocalProtocolError("a HelloRetryRequest restart needs exactly ClientHello1")
        inner = self._hash.digest()
        h = hash_params(self._hash.name)[0]()
        # struct { HandshakeType msg_type = message_hash; uint24 length; Hash(CH1) }
        h.update(bytes((HandshakeType.message_hash, 0, 0, len(inner))))
        h.update(inner)
        self._hash = h
