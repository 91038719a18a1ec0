"""Harness 10: the PROXY protocol header (`pinata.appliance.proxy_protocol`) and
the appliance's reading of it from a trusted proxy (`pinata.appliance.proxied`).

Input: [segment size] then the bytes a proxy sends. The parser sees them
whole; the appliance's reader sees them over an in-memory trio stream in
segments of the chosen size, as a proxy's TCP segments would arrive.

The invariant: the parser returns None, a header, or raises
`ProxyHeaderError` with a `ProxyRefusal` (nothing else escapes); a header's
length lies within the input and the bounds, and the verdict depends on the
header's bytes only; None is only ever an answer below the bounds. The
reader agrees with the parser whatever the segmentation, and the stream it
hands on yields exactly the bytes after the header.
"""

from __future__ import annotations

import trio

from fuzz.harnesses.http import ScriptedStream
from fuzz.harnesses.support import FuzzFinding, Input
from pinata.appliance import proxied
from pinata.appliance.proxy_protocol import (
    MAX_V2_HEADER,
    V1_MAX_LINE,
    ProxyHeader,
    ProxyHeaderError,
    ProxyRefusal,
    ProxyUnknown,
    parse_proxy_header,
)

_SHORTEST = len(b"PROXY UNKNOWN\r\n")


def _parse(data: bytes) -> ProxyHeader | ProxyRefusal | None:
    try:
        return parse_proxy_header(data)
    except ProxyHeaderError as exc:
        if not isinstance(exc.reason, ProxyRefusal):
            raise FuzzFinding(f"refusal without a named reason: {exc.reason!r}") from None
        return exc.reason


def _check_parse(data: bytes) -> ProxyHeader | ProxyRefusal | None:
    verdict = _parse(data)
    if verdict is None:
        if len(data) >= MAX_V2_HEADER:
            raise FuzzFinding(f"asked for more after {len(data)} bytes")
        return None
    if isinstance(verdict, ProxyRefusal):
        return verdict
    bound = V1_MAX_LINE if verdict.version == 1 else MAX_V2_HEADER
    if not _SHORTEST <= verdict.length <= min(len(data), bound):
        raise FuzzFinding(f"header length {verdict.length} outside the input or bounds")
    for variant in (data[:verdict.length], data + b"\r\n\x00PROXY "):
        if _parse(variant) != verdict:
            raise FuzzFinding("the verdict depends on bytes after the header")
    return verdict


async def _read(segments: list[bytes]) -> tuple[ProxyHeader | str, bytes]:
    stream = ScriptedStream(segments)
    try:
        with trio.fail_after(5):
            header, rest = await proxied._read_header(stream)
    except ProxyHeaderError as exc:
        return exc.reason.name, b""
    except (proxied._NoClient, proxied._ClosedEarly) as exc:
        return type(exc).__name__, b""
    replay = proxied.ReplayStream(stream, rest)
    after = b""
    while chunk := await replay.receive_some(7):
        after += chunk
    return header, after


def one_input(data: bytes) -> None:
    inp = Input(data)
    segment = inp.u8() % 64
    sent = inp.rest()
    verdict = _check_parse(sent)
    step = segment or len(sent) or 1
    segments = [sent[i:i + step] for i in range(0, len(sent), step)]
    read, after = trio.run(_read, segments)
    if isinstance(verdict, ProxyRefusal):
        # Segmentation may only refuse earlier, for the same or an earlier rule.
        if not isinstance(read, str):
            raise FuzzFinding(f"the reader accepted what the parser refused ({verdict.name})")
    elif verdict is None:
        if not isinstance(read, str):
            raise FuzzFinding("the reader found a header in an incomplete one")
    elif isinstance(read, str):
        if read != "_NoClient" or not isinstance(verdict, ProxyUnknown):
            raise FuzzFinding(f"the reader refused ({read}) a header the parser accepted")
    elif read != verdict or after != sent[verdict.length:]:
        raise FuzzFinding("the reader's header or the bytes after it differ")
