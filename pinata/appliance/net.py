"""Dialling out by address, without name resolution.

Only numeric addresses are ever dialled (the initiator's, or our own for the
self-talk), so no resolver, hosts file or gai.conf is consulted after start.
"""

from __future__ import annotations

import socket

import trio


async def dial(address: str, port: int) -> trio.SocketStream:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    sock = trio.socket.socket(family, socket.SOCK_STREAM)
    try:
        await sock.connect((address, port))
    except BaseException:
        sock.close()
        raise
    return trio.SocketStream(sock)
