"""The web page over any trio Stream (a TCP stream, or our TLS stream for HTTPS).

HTTP/1.1 parsing is h11's. Requests are bounded (head size by h11's
`max_incomplete_event_size`, body bytes and requests per connection by us);
a malformed request gets 400 and the connection closes.
"""

from __future__ import annotations

import json

import h11
import trio

from pinata.appliance import pages
from pinata.appliance.journal import ConnectionRecord
from pinata.appliance.outcome import Outcome
from pinata.appliance.page.history import BOUNTY_LISTENERS
from pinata.appliance.page.layout import CONTENT_SECURITY_POLICY
from pinata.appliance.settings import LISTENER_NAMES
from pinata.appliance.state import ApplianceState
from pinata.tls.constants import version_name

READ_SIZE = 4096

HTML = "text/html; charset=utf-8"
TEXT = "text/plain; charset=utf-8"
JSON = "application/json"
PROMETHEUS = "text/plain; version=0.0.4; charset=utf-8"
PEM = "application/x-pem-file"

Response = tuple[int, str, bytes]

CONNECTION_USAGE = (b"usage: /connection?port=<your source port>"
                    b"[&listener=" + "|".join(LISTENER_NAMES).encode() + b"]\n")


class _TooLarge(Exception):
    pass


def _json(value: object) -> bytes:
    return (json.dumps(value, indent=2, default=str) + "\n").encode()


def _connection_lookup(state: ApplianceState, query: str, peer_address: str) -> Response:
    """A visitor's own connection record, by the source port it used and,
    optionally, the listener it reached.

    Only connections from the requesting address are shown: anyone may read
    the trace of their own attempt (this is how `pinata selftalk` shows both
    handshakes) but not who else tried. Naming the listener matters: the
    kernel hands the same source port to connections to different ports, so
    an earlier visit to the page from that port would otherwise answer for it.
    """
    params = dict(p.partition("=")[::2] for p in query.split("&") if p)
    port_text = params.get("port", "")
    listener = params.get("listener")
    if not (port_text.isdigit() and len(port_text) <= 5) or (
            listener is not None and listener not in LISTENER_NAMES):
        return 400, TEXT, CONNECTION_USAGE
    record = state.journal.find(peer_address, int(port_text), listener)
    if record is None:
        return 404, TEXT, b"no recent connection from your address and that port\n"
    return 200, JSON, _json(record)


def _index(state: ApplianceState) -> Response:
    settings = state.settings
    now = state.now()
    ports = {name: state.bound.get(name, ("", settings.ports.listener_port(name)))[1]
             for name in LISTENER_NAMES}
    page = pages.PageInputs(
        bitcoin_address=settings.bitcoin_address,
        ports=ports,
        connect_back_target=settings.ports.connect_back_target,
        anchor_pem=settings.anchor_pem,
        anchor_der=settings.anchor_der,
        stats=state.counters.to_json(now),
        history=state.history,
        now=now,
        software_count=len(state.software),
        selftalk=state.selftalk_reports[-1] if state.selftalk_reports else None,
        recent=state.journal.numbered(),
        tls_versions=[version_name(v) for v in settings.tls_versions],
    )
    return 200, HTML, pages.index_html(page).encode()


def _connection_page(state: ApplianceState, number_text: str) -> Response:
    """A recent bounty-port connection's trace, by its number on the index page."""
    record = None
    if number_text.isascii() and number_text.isdigit() and len(number_text) <= 12:
        record = state.journal.by_number(int(number_text))
    if record is None or record.get("listener") not in BOUNTY_LISTENERS:
        return 404, TEXT, b"no such recent connection\n"
    return 200, HTML, pages.connection_html(int(number_text), record).encode()


def route(state: ApplianceState, path: str, query: str, peer_address: str) -> Response:
    """The response to GET `path`: (status, content type, body)."""
    settings = state.settings
    now = state.now()
    if path == "/":
        return _index(state)
    if path == "/anchor.pem":
        return 200, PEM, settings.anchor_pem.encode()
    if path == "/software":
        return 200, TEXT, pages.software_text(state.software).encode()
    if path == "/stats":
        return 200, JSON, _json(state.counters.to_json(now))
    if path == "/metrics":
        return 200, PROMETHEUS, state.counters.to_prometheus(now).encode()
    if path in ("/selftalk.json", "/selftalk"):
        return 200, JSON, _json(list(state.selftalk_reports))
    if path == "/connection":
        return _connection_lookup(state, query, peer_address)
    if path.startswith("/connection/"):
        return _connection_page(state, path.removeprefix("/connection/"))
    return 404, TEXT, b"not found\n"


async def _next_event(conn: h11.Connection, stream: trio.abc.Stream) -> object:
    while True:
        event = conn.next_event()
        if event is not h11.NEED_DATA:
            return event
        conn.receive_data(bytes(await stream.receive_some(READ_SIZE)))


async def _send(
    conn: h11.Connection, stream: trio.abc.Stream, response: Response, head_only: bool,
    close: bool,
) -> None:
    status, content_type, body = response
    headers = [
        ("content-type", content_type),
        ("content-length", str(len(body))),
        ("cache-control", "no-store"),
        ("x-content-type-options", "nosniff"),
        # The page's inline style and script are admitted by hash; nothing else is.
        ("content-security-policy",
         CONTENT_SECURITY_POLICY if content_type == HTML else "default-src 'none'"),
    ]
    if close:
        headers.append(("connection", "close"))
    out = conn.send(h11.Response(status_code=status, headers=headers)) or b""
    if not head_only and body:
        out += conn.send(h11.Data(data=body)) or b""
    out += conn.send(h11.EndOfMessage()) or b""
    await stream.send_all(out)


async def _read_request(
    conn: h11.Connection, stream: trio.abc.Stream, max_body: int
) -> h11.Request | None:
    """The next request, its body read and dropped; None when the client is done."""
    event = await _next_event(conn, stream)
    if isinstance(event, h11.ConnectionClosed):
        return None
    if not isinstance(event, h11.Request):
        raise h11.RemoteProtocolError("expected a request", error_status_hint=400)
    body_size = 0
    while True:
        part = await _next_event(conn, stream)
        if isinstance(part, h11.EndOfMessage):
            return event
        if isinstance(part, h11.Data):
            body_size += len(part.data)
            if body_size > max_body:
                raise _TooLarge
        else:
            raise h11.RemoteProtocolError("closed inside a request", error_status_hint=400)


async def serve_http(state: ApplianceState, stream: trio.abc.Stream,
                     record: ConnectionRecord) -> None:
    """Answer requests on `stream` until the client closes, errs or hits a bound."""
    limits = state.settings.limits
    conn = h11.Connection(h11.SERVER, max_incomplete_event_size=limits.max_http_request_bytes)
    while True:
        try:
            request = await _read_request(conn, stream, limits.max_http_request_bytes)
        except h11.RemoteProtocolError as exc:
            await _refuse(state, stream, record, exc.error_status_hint, "bad request")
            return
        except _TooLarge:
            await _refuse(state, stream, record, 413, "request body too large")
            return
        if request is None:
            break
        record.http_requests += 1
        method = request.method.decode("ascii", "replace")
        path, _, query = request.target.decode("ascii", "replace").partition("?")
        if method not in ("GET", "HEAD"):
            response: Response = (405, TEXT, b"only GET and HEAD\n")
        else:
            response = route(state, path, query, record.peer[0])
        close = record.http_requests >= limits.max_http_requests_per_connection
        await _send(conn, stream, response, head_only=method == "HEAD", close=close)
        state.counters.http_response(response[0])
        if close or conn.our_state is h11.MUST_CLOSE:
            break
        conn.start_next_cycle()
    record.finish(Outcome.served)


async def _refuse(state: ApplianceState, stream: trio.abc.Stream,
                  record: ConnectionRecord, status: int, reason: str) -> None:
    """An error response, then the connection closes (the caller closes it)."""
    record.finish(Outcome.bad_request, reason)
    state.counters.http_response(status)
    body = f"{reason}\n".encode()
    # Written by hand: the h11 connection is in an error state by now, and
    # this response must not depend on anything the client sent.
    head = (
        f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}\r\n"
        f"content-type: {TEXT}\r\ncontent-length: {len(body)}\r\nconnection: close\r\n\r\n"
    )
    await stream.send_all(head.encode("ascii") + body)


_REASONS = {400: "Bad Request", 413: "Content Too Large", 431: "Request Header Fields Too Large"}
