"""The latest self-talk as a ladder diagram: one arrow per relayed record.

The piñata as TLS client on the left, the relay in the middle, the piñata as
TLS server on the right. Each record the relay saw is an arrow in the
direction it travelled, labelled with its content type and size and, while
the handshake is still in the clear (RFC 8446 §5.1: until the keys change),
the handshake messages it carried.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape

# Narrow enough that labels stay legible on a 375 px phone without scrolling.
WIDTH = 480
LEFT, MIDDLE, RIGHT = 40, 240, 440
HEAD = 46
ROW = 36

Arrow = tuple[int, Mapping[str, object]]  # (leg: 0 client->server, 1 back; the record)


def arrows(report: Mapping[str, object]) -> list[Arrow]:
    """The relayed records in the order the relay saw them.

    Records carry a `seq` shared by both legs; a report without one (from an
    older relay) is shown leg by leg, alternating.
    """
    legs = report.get("legs")
    if not isinstance(legs, Sequence) or len(legs) != 2:
        return []
    found: list[tuple[float, int, Mapping[str, object]]] = []
    for leg_index, leg in enumerate(legs):
        records = leg.get("records") if isinstance(leg, Mapping) else None
        if not isinstance(records, Sequence):
            continue
        for i, record in enumerate(records):
            if isinstance(record, Mapping):
                seq = record.get("seq")
                key = float(seq) if isinstance(seq, int) else i + leg_index / 2
                found.append((key, leg_index, record))
    found.sort(key=lambda item: (item[0], item[1]))
    return [(leg, record) for _, leg, record in found]


def _label(record: Mapping[str, object]) -> str:
    kind = str(record.get("type", "?"))
    text = f"{kind}, {record.get('length', '?')} bytes"
    messages = record.get("messages")
    if isinstance(messages, Sequence) and not isinstance(messages, str) and messages:
        text += ": " + ", ".join(str(m) for m in messages)
    elif kind == "application_data":
        text += " (encrypted)"
    return text


def _arrow(row: int, leg: int, record: Mapping[str, object]) -> str:
    y = HEAD + row * ROW + 24
    start, end = (LEFT, RIGHT) if leg == 0 else (RIGHT, LEFT)
    tip = -10 if leg == 0 else 10
    kind = escape(str(record.get("type", "?")))
    # Only application_data records are encrypted (RFC 8446 §5.2); the
    # hellos and the one-byte change_cipher_spec (§D.4) cross in the clear.
    clear = "sealed" if record.get("type") == "application_data" else "clear"
    return (
        f'<g class="rec {clear}" data-leg="{leg}" data-type="{kind}">'
        f'<text x="{MIDDLE}" y="{y - 7}" text-anchor="middle">{escape(_label(record))}</text>'
        f'<line x1="{start}" y1="{y}" x2="{end + tip}" y2="{y}"/>'
        f'<path d="M{end},{y} l{tip},-5 l0,10 z"/>'
        f'<circle cx="{MIDDLE}" cy="{y}" r="3"/></g>'
    )


def ladder_svg(report: Mapping[str, object], client_port: int, server_port: int) -> str:
    """An inline SVG of the report's relayed records (empty string when it has none).

    `client_port` and `server_port` are the listeners the relay joined (10002, 10000).
    """
    rows = arrows(report)
    if not rows:
        return ""
    height = HEAD + ROW * len(rows) + 12
    lanes = "".join(
        f'<text class="lane" x="{tx}" y="16" text-anchor="{anchor}">{name}</text>'
        f'<text class="sub" x="{tx}" y="32" text-anchor="{anchor}">{sub}</text>'
        f'<line class="lane" x1="{x}" y1="{HEAD - 8}" x2="{x}" y2="{height - 4}"/>'
        for x, tx, anchor, name, sub in (
            (LEFT, 4, "start", "piñata as client", f"port {client_port} side"),
            (MIDDLE, MIDDLE, "middle", "relay", "sees every byte"),
            (RIGHT, WIDTH - 4, "end", "piñata as server", f"port {server_port} side"),
        )
    )
    body = "".join(_arrow(i, leg, record) for i, (leg, record) in enumerate(rows))
    return (
        f'<svg class="ladder" viewBox="0 0 {WIDTH} {height}" role="img" '
        f'aria-labelledby="ladder-title" data-records="{len(rows)}">'
        f'<title id="ladder-title">The latest self-talk: {len(rows)} records relayed</title>'
        f"{lanes}{body}</svg>"
    )
