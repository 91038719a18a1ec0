"""The benchmark's own tiny application protocol, spoken over every TLS server
compared, so that each does the same work after its handshake.

A client sends one line. `bulk N` asks for N bytes; anything else is echoed
back reversed, which is what `openssl s_server -rev` does, so the native
reference needs no code of ours. Then the server closes.
"""

from __future__ import annotations

import json
import sys

HELLO = b"hello"
HELLO_REPLY = HELLO[::-1]
MAX_REQUEST = 64
# One application write; the same for every server compared.
BULK_CHUNK = 256 * 1024
MAX_BULK = 1 << 32
# Every socket operation of a client or a server is bounded by this.
IO_TIMEOUT = 30.0


def bulk_request(size: int) -> bytes:
    return b"bulk %d\n" % size


def parse_bulk(request: bytes) -> int | None:
    """The byte count of a bulk request (bounded), or None for an echo."""
    if not request.startswith(b"bulk "):
        return None
    digits = request[5:].strip()
    if not digits.isdigit() or len(digits) > 12:
        return None
    return min(int(digits), MAX_BULK)


def reply_to(request: bytes) -> bytes:
    return request[::-1] + b"\n"


def announce(document: dict[str, object]) -> None:
    """One JSON line to the parent (readiness, answers)."""
    sys.stdout.write(json.dumps(document) + "\n")
    sys.stdout.flush()
