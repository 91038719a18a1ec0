"""Harness 7: the web page's HTTP handling (`pinata.appliance.web.serve_http`).

Input: [segment size] then the bytes a client sends, delivered over an
in-memory trio stream in segments, then end of stream. One appliance state
serves every input of a process, as one appliance serves every visitor,
so state that grows per request shows up as memory growth.

The invariant: `serve_http` returns (it may not raise), what it writes is a
sequence of well-formed HTTP/1.1 responses, never a 5xx, never more than
the per-connection request limit allows, and never the secret.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import replace
from functools import cache

import trio

from fuzz.harnesses.support import MARKER_SECRET, FuzzFinding, Input, check_no_secret
from pinata.appliance import toy_settings
from pinata.appliance.journal import ConnectionRecord
from pinata.appliance.state import ApplianceState, build_state
from pinata.appliance.web import serve_http
from pinata.secret import Secret

NOW = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)
_STATUS = re.compile(rb"HTTP/1\.1 ([1-5]\d\d) [^\r\n]*\r\n")
_CONTENT_LENGTH = re.compile(rb"\r\ncontent-length: (\d+)\r\n", re.IGNORECASE)
JOURNAL: list[str] = []


@cache
def state() -> ApplianceState:
    settings = replace(
        toy_settings(), secret=Secret(MARKER_SECRET), software=(("pinata", "fuzz"),)
    )
    return build_state(settings, JOURNAL.append, clock=0.0, now=lambda: NOW)


class ScriptedStream(trio.abc.Stream):
    """Gives the client's bytes in the chosen segments, then end of stream."""

    def __init__(self, segments: list[bytes]) -> None:
        self.segments = segments
        self.written = bytearray()

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        self.written += data

    async def wait_send_all_might_not_block(self) -> None:
        return

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        await trio.lowlevel.checkpoint()
        if not self.segments:
            return b""
        segment = self.segments.pop(0)
        if max_bytes is not None and len(segment) > max_bytes:
            self.segments.insert(0, segment[max_bytes:])
            segment = segment[:max_bytes]
        return segment

    async def aclose(self) -> None:
        return


def check_responses(output: bytes, limit: int) -> int:
    """The number of responses in `output`; a finding if any is malformed."""
    pos, count = 0, 0
    while pos < len(output):
        status = _STATUS.match(output, pos)
        if status is None:
            raise FuzzFinding(f"no HTTP/1.1 status line at {pos}: {output[pos:pos + 40]!r}")
        if status[1].startswith(b"5"):
            raise FuzzFinding(f"server error {status[1].decode()}")
        end = output.find(b"\r\n\r\n", pos)
        if end < 0:
            raise FuzzFinding("response head does not end")
        length = _CONTENT_LENGTH.search(output, pos, end + 2)
        if length is None:
            raise FuzzFinding("response without content-length")
        pos = end + 4
        # A HEAD response announces a body it does not carry: then the next
        # response (or the end) follows the head directly.
        if pos < len(output) and not _STATUS.match(output, pos):
            pos += int(length[1])
            if pos > len(output):
                raise FuzzFinding("response body cut short")
        count += 1
        if count > limit + 1:
            raise FuzzFinding(f"{count} responses on one connection (limit {limit})")
    return count


def one_input(data: bytes) -> None:
    inp = Input(data)
    segment = inp.u8() * 9
    request = inp.rest()
    step = segment or len(request) or 1
    segments = [request[i : i + step] for i in range(0, len(request), step)]
    stream = ScriptedStream([s for s in segments if s])
    appliance = state()
    record = ConnectionRecord("http", 80, ("127.0.0.1", 40000), NOW)

    async def serve() -> None:
        with trio.fail_after(5):
            await serve_http(appliance, stream, record)

    trio.run(serve)
    output = bytes(stream.written)
    check_responses(output, appliance.settings.limits.max_http_requests_per_connection)
    check_no_secret(output, JOURNAL)
    JOURNAL.clear()
