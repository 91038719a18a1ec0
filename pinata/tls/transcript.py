"""Transcript-Hash (RFC 8446 §4.4.1): a running hash of the handshake messages.

The ClientHello arrives before the suite, and so the hash, is known: messages
are buffered until `select_hash`, then hashed. A Transcript is a value.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pinata.tls.constants import HandshakeType
from pinata.tls.errors import LocalProtocolError
from pinata.tls.suites import hash_params

if TYPE_CHECKING:
    from hashlib import _Hash


class Transcript:
    """An immutable value: `add`, `select_hash` and the HelloRetryRequest
    restart return a new Transcript, so a handshake state that holds one can
    never see messages added by a later state (RFC 8446 §4.4.1).

    The hash object a Transcript holds is never updated in place: `add`
    copies it first, and `digest` does not change it.
    """

    __slots__ = ("_hash", "_messages", "_pending")

    def __init__(
        self,
        pending: tuple[bytes, ...] = (),
        hash_object: _Hash | None = None,
        messages: int = 0,
    ) -> None:
        self._pending = pending
        self._hash = hash_object
        self._messages = messages

    def __repr__(self) -> str:
        name = "unselected" if self._hash is None else self._hash.name
        return f"Transcript({name}, {self._messages} messages)"

    @property
    def hash_name(self) -> str | None:
        return None if self._hash is None else self._hash.name

    def add(self, message: bytes | memoryview) -> Transcript:
        """This transcript followed by one whole handshake message, header
        included, as sent on the wire."""
        if self._hash is None:
            return Transcript((*self._pending, bytes(message)), None, self._messages + 1)
        h = self._hash.copy()
        h.update(message)
        # The hot path (about ten messages a handshake): no __init__ frame.
        added = object.__new__(Transcript)
        added._pending = ()
        added._hash = h
        added._messages = self._messages + 1
        return added

    def select_hash(self, hash_name: str) -> Transcript:
        """This transcript under the negotiated suite's hash, what was buffered hashed."""
        if self._hash is not None:
            raise LocalProtocolError("the transcript hash is already selected")
        factory, _ = hash_params(hash_name)
        h = factory()
        for message in self._pending:
            h.update(message)
        return Transcript((), h, self._messages)

    def digest(self) -> bytes:
        """Transcript-Hash of every message added so far."""
        if self._hash is None:
            raise LocalProtocolError("the transcript hash is not selected yet")
        return self._hash.digest()

    def restart_after_hello_retry_request(self) -> Transcript:
        """ClientHello1 replaced by message_hash(Hash(ClientHello1)) (§4.4.1).

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
        return Transcript((), h, 1)
