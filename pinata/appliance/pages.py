"""The web page's content: the rules in our words, the anchor, the software
list, counters and the latest self-talk. Pure functions of the state's
public parts; nothing here can reach the secret (`Secret` is never passed in).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from html import escape

from pinata.appliance.stats import Counters


def _rows(pairs: Iterable[tuple[str, str]]) -> str:
    return "\n".join(f"<tr><td>{escape(a)}</td><td>{escape(b)}</td></tr>" for a, b in pairs)


def index_html(
    *,
    bitcoin_address: str,
    ports: Mapping[str, int],
    connect_back_target: int,
    anchor_pem: str,
    counters: Counters,
    now: datetime,
    software: Sequence[tuple[str, str]],
    selftalk: Sequence[Mapping[str, object]],
) -> str:
    stats = counters.to_json(now)
    outcomes = stats["outcomes"]
    assert isinstance(outcomes, dict)
    latest = json.dumps(list(selftalk)[-1], indent=2) if selftalk else "(none yet)"
    port_rows = _rows(
        [
            (str(ports["tls_server"]), "TLS server. Present a client certificate that chains "
             "to the anchor below (extended key usage clientAuth) and it sends you the secret."),
            (str(ports["connect_back"]), "Accepts a TCP connection and closes it unread, then "
             f"connects to port {connect_back_target} of your address as a TLS client. Serve a "
             "certificate that chains to the anchor (serverAuth) and it sends you the secret."),
            (str(ports["tls_client"]), "Accepts a TCP connection and acts as the TLS client on "
             "it. Serve a certificate that chains to the anchor and it sends you the secret."),
        ]
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Piñata</title></head>
<body>
<h1>The Piñata</h1>
<p>This machine holds the private key of a Bitcoin wallet,
<code>{escape(bitcoin_address)}</code>. If the wallet is empty, someone broke in.</p>
<h2>Rules</h2>
<p>The secret is handed over at the end of any TLS handshake in which the other side proves
possession of a certificate issued under the single trust anchor below. In a real
deployment the anchor's private key existed only in memory while it signed the piñata's own
certificates (the toy build's anchor key is public, on purpose), so the only way in is
through a flaw: in the TLS 1.3 engine, the X.509 validator, or the code around them.
No name check is made; only the chain matters. Break it and the coins are yours.</p>
<h2>Ports</h2>
<table>{port_rows}</table>
<p>This page is served over HTTP (port {ports["http"]}) and over HTTPS with the same TLS
engine (port {ports["https"]}), without client authentication.</p>
<h2>Trust anchor</h2>
<pre>{escape(anchor_pem)}</pre>
<p>Also at <a href="/anchor.pem">/anchor.pem</a>.</p>
<h2>Counters</h2>
<p>Secrets released to someone else: {stats["secrets_released"]} (each one is a break).
Released to the piñata's own certificates (its self-talk, or anyone relaying it into
itself): {stats["secrets_released_to_self"]} (expected; no break).</p>
<table>{_rows((k, str(v)) for k, v in outcomes.items())}</table>
<p>Live as <a href="/stats">JSON</a> and in <a href="/metrics">Prometheus format</a>.</p>
<h2>Talking to itself</h2>
<p>The piñata's own certificates validate, so relaying bytes between a connection to port
{ports["tls_client"]} and one to port {ports["tls_server"]} makes it hand the secret to
itself, encrypted: the relay sees only ciphertext. The latest run
(<a href="/selftalk">all recent runs</a>):</p>
<pre>{escape(latest)}</pre>
<h2>Installed software</h2>
<p>{len(software)} packages; the list is at <a href="/software">/software</a>.</p>
</body></html>
"""


def software_text(software: Sequence[tuple[str, str]]) -> str:
    return "".join(f"{name} {version}\n" for name, version in software)
