"""The web page's content: the rules in our words, the address, the ports,
the anchor, the counters with their 24-hour chart, the latest self-talk as a
ladder, recent connections and a view of each one's trace.

Pure functions of the state's public parts; nothing here can reach the
secret (`Secret` is never passed in). Every string that did not come from
this file is escaped, since some (certificate subjects, failure details) are
chosen by whoever connected.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from html import escape

from pinata.appliance.outcome import REFUSED_GROUPS
from pinata.appliance.page.chart import history_svg
from pinata.appliance.page.history import BOUNTY_LISTENERS, History, failed_check
from pinata.appliance.page.ladder import arrows, ladder_svg
from pinata.appliance.page.layout import document
from pinata.appliance.page.mask import mask_address

RECENT_ROWS = 20
PORT_TITLES = {"tls_server": "TLS server", "connect_back": "Connect-back",
               "tls_client": "TLS client"}

Record = Mapping[str, object]


@dataclass(frozen=True)
class PageInputs:
    """What the index page shows, gathered by the web handler."""

    bitcoin_address: str
    ports: Mapping[str, int]
    connect_back_target: int
    anchor_pem: str
    anchor_der: bytes
    stats: Mapping[str, object]
    history: History
    now: datetime
    software_count: int
    selftalk: Record | None
    recent: Sequence[tuple[int, Record]]
    # The versions every TLS port speaks, by name ("TLS 1.3", "TLS 1.2"), highest first.
    tls_versions: Sequence[str]


def _rows(pairs: Iterable[tuple[str, str]]) -> str:
    return "\n".join(f"<tr><td>{escape(a)}</td><td>{escape(b)}</td></tr>" for a, b in pairs)


def _mapping(value: object) -> Mapping[str, object]:
    return value if isinstance(value, Mapping) else {}


def _rules(page: PageInputs) -> str:
    return f"""<header><h1>The Piñata</h1>
<p>This machine holds the private key of a Bitcoin wallet:
<code class="address" id="bitcoin-address">{escape(page.bitcoin_address)}</code>.
If the wallet is empty, someone broke in.</p></header>
<main>
<section id="rules"><h2>Rules</h2>
<ol>
<li>The secret is sent at the end of any TLS handshake in which the other side proves it
holds a certificate issued under the single trust anchor below.</li>
<li>The anchor's private key existed only in memory while it signed the piñata's own
certificates, and was then dropped (the toy build's anchor key is public, on purpose).</li>
<li>So the only way in is through a flaw: in the TLS engine, the X.509 validator, or the
code around them. No name is checked; only the chain matters.</li>
<li>Every port speaks <span id="tls-versions">{escape(" and ".join(page.tls_versions))}</span>,
with ECDHE key exchange and AEAD suites only. Older versions, renegotiation, heartbeats,
compression and session resumption are refused, and counted below.</li>
<li>Break it and the coins are yours. Denial of service is not a win.</li>
</ol></section>"""


CANONICAL = {"tls_server": 10000, "connect_back": 10001, "tls_client": 10002}
CONNECT_BACK_CANONICAL = 40001


def try_command(name: str, port: int, connect_back_target: int) -> str:
    """The `pinata try` line that plays this listener where it actually listens."""
    canonical = CANONICAL[name]
    offset = port - canonical
    words = [f"pinata try {canonical} --host ADDRESS --cert C --key K"]
    if offset:
        words.append(f"--port-offset {offset}")
    if name == "connect_back" and connect_back_target != CONNECT_BACK_CANONICAL + offset:
        words.append(f"--listen-port {connect_back_target}")
    return " ".join(words)


def _ports(page: PageInputs) -> str:
    p = page.ports
    cards = [
        ("tls_server", "Connect with TLS and present a client certificate that chains to the "
         "anchor (extended key usage clientAuth): the piñata sends you the secret."),
        ("connect_back", "Open a TCP connection: it is closed unread, then the piñata connects "
         f"to port {page.connect_back_target} of your address as a TLS client. Serve a "
         "certificate that chains to the anchor (serverAuth) and it sends you the secret."),
        ("tls_client", "Open a TCP connection and be the TLS server on it: the piñata is the "
         "client. Serve a certificate that chains to the anchor and it sends you the secret."),
    ]
    body = "".join(
        f'<article class="card" id="port-{p[name]}"><h3>{PORT_TITLES[name]}</h3>'
        f'<div class="port" data-port="{name}">{p[name]}</div><p>{text}</p>'
        f"<code>{escape(try_command(name, p[name], page.connect_back_target))}</code></article>"
        for name, text in cards
    )
    return f"""<section id="ports"><h2>Three ports</h2>
<div class="grid">{body}</div>
<p>Each card's command plays that port with this project's own TLS engine in your seat
(<code>pip install</code> the project; <code>--toy</code> instead of <code>--cert</code> and
<code>--key</code> uses the published toy researcher certificates, which only the toy
accepts). This page is served over HTTP (port {p["http"]}) and over HTTPS
(port {p["https"]}) by the same TLS engine, without client authentication.</p></section>"""


def _when(value: object) -> str:
    """An ISO 8601 time as "YYYY-MM-DD HH:MM:SS UTC" (as given if it is not one)."""
    try:
        return datetime.fromisoformat(str(value)).strftime("%Y-%m-%d %H:%M:%S UTC")
    except ValueError:
        return str(value)


def _fingerprint(der: bytes) -> str:
    digest = hashlib.sha256(der).hexdigest().upper()
    return ":".join(digest[i:i + 2] for i in range(0, len(digest), 2))


def _anchor(page: PageInputs) -> str:
    return f"""<section id="anchor"><h2>The trust anchor</h2>
<p>SHA-256 fingerprint:</p><pre id="anchor-fingerprint">{_fingerprint(page.anchor_der)}</pre>
<pre id="anchor-pem">{escape(page.anchor_pem)}</pre>
<p>Also at <a href="/anchor.pem">/anchor.pem</a>.</p></section>"""


def _stat(label: str, value: object, key: str, extra: str = "") -> str:
    return (f"<dt>{escape(label)}{extra}</dt>"
            f'<dd data-stat="{escape(key)}">{escape(str(value))}</dd>')


def _released(stats: Mapping[str, object]) -> str:
    return (_stat("to a stranger (hopefully 0)", stats.get("secrets_released_to_stranger", 0),
                  "secrets_released_to_stranger")
            + _stat("to itself (self-talk, relays into itself)",
                    stats.get("secrets_released_to_self", 0), "secrets_released_to_self"))


REFUSED = tuple(g.value for g in REFUSED_GROUPS)
OTHERWISE = ("alert received", "closed by peer", "timeout", "limit", "connect-back failed",
             "internal error")


def _checks(history: History) -> str:
    if not history.x509_checks:
        return ""
    items = "".join(f"<li><code>{escape(check)}</code>: {n}</li>"
                    for check, n in history.x509_checks.most_common())
    return f'<ul class="checks" id="x509-checks">{items}</ul>'


def _handshakes(page: PageInputs) -> str:
    by_version = _mapping(page.stats.get("handshakes_by_version"))
    shown = [*page.tls_versions, *(v for v in by_version if v not in page.tls_versions)]
    return "".join(_stat(v, by_version.get(v, 0), f"handshakes_by_version/{v}") for v in shown)


def _counters(page: PageInputs) -> str:
    stats = page.stats
    outcomes = _mapping(stats.get("outcomes"))
    refused = "".join(_stat(g, outcomes.get(g, 0), f"outcomes/{g}") for g in REFUSED)
    otherwise = "".join(_stat(g, outcomes.get(g, 0), f"outcomes/{g}") for g in OTHERWISE)
    limits = _mapping(stats.get("limits_hit"))
    limit_list = ", ".join(f"{escape(k)}: {escape(str(v))}" for k, v in limits.items())
    listeners = _mapping(stats.get("listeners"))
    attempts = sum(int(str(_mapping(listeners.get(n)).get("connections", 0)))
                   for n in BOUNTY_LISTENERS)
    return f"""<section id="counters"><h2>Statistics</h2>
<p>Since {escape(_when(stats.get("started")))}: <span class="big" id="attempts">{attempts}
</span> connections to the three ports.</p>
<div class="grid">
<div class="card"><h3>The secret</h3><dl class="stats">{_released(stats)}</dl>
<h3>Completed handshakes</h3><dl class="stats" id="handshakes">{_handshakes(page)}</dl></div>
<div class="card"><h3>Refused</h3><dl class="stats">{refused}</dl>{_checks(page.history)}</div>
<div class="card"><h3>Ended otherwise</h3><dl class="stats">{otherwise}</dl>
{f'<p class="muted">Limits: {limit_list}</p>' if limit_list else ""}</div>
</div>
<h3>The last 24 hours</h3>
<div class="scroll from-end">{history_svg(page.history, page.now)}</div>
<p>Live as <a href="/stats">JSON</a> and in <a href="/metrics">Prometheus format</a>.</p>
</section>"""


def _selftalk_statement(report: Record) -> str:
    legs = report.get("legs")
    total = sum(int(str(_mapping(leg).get("bytes", 0)))
                for leg in (legs if isinstance(legs, Sequence) else ()))
    kinds = [str(record.get("type")) for _, record in arrows(report)]
    sealed, ccs = kinds.count("application_data"), kinds.count("change_cipher_spec")
    hellos = sum(1 for _, record in arrows(report) if record.get("messages"))
    crossed = report.get("secret_crossed_relay_in_clear")
    both = report.get("both_released") is True
    verdict = ("The secret's plaintext <strong class=\"bad\">appeared</strong> in the relayed "
               "bytes." if crossed else
               "The secret's plaintext never appeared in the relayed bytes.")
    ends = ("Both handshakes completed and the secret crossed the relay encrypted, both ways."
            if both else "This run did not complete both handshakes.")
    return (f"<p>What the relay saw: {len(kinds)} records, {total} bytes. {hellos} in the "
            "clear (solid arrows: the hellos and, in TLS 1.2, the certificates and key "
            f"exchange, which carry no secret), {ccs} one-byte change_cipher_spec (in TLS 1.3 "
            "a compatibility no-op) and "
            f"{sealed} encrypted (dashed arrows: the rest of both handshakes, then the secret "
            f"each way), of which it saw only ciphertext. {ends} {verdict}</p>")


def _selftalk(page: PageInputs) -> str:
    p = page.ports
    intro = (f"<p>The piñata's own certificates validate, so relaying a connection to port "
             f"{p['tls_client']} (where the piñata is the client) into one to port "
             f"{p['tls_server']} (where it is the server) makes it hand the secret to itself. "
             "The relay sees every byte.</p>")
    report = page.selftalk
    if report is None:
        body = "<p>No self-talk has run yet.</p>"
    elif "error" in report:
        body = f"<p>The latest self-talk could not run: {escape(str(report['error']))}.</p>"
    else:
        svg = ladder_svg(report, p["tls_client"], p["tls_server"])
        when = escape(_when(report.get("time")))
        body = (f"<p>The latest run, at {when}:</p>"
                + _selftalk_statement(report)
                + f'<div class="scroll">{svg}</div>')
    return (f'<section id="selftalk"><h2>Talking to itself</h2>{intro}{body}'
            '<p>Every recent run as <a href="/selftalk.json">JSON</a>.</p></section>')


def refusing_check(record: Record) -> str:
    """What stopped a connection: the X.509 check, else the alert, else our words."""
    detail = record.get("detail")
    detail_text = str(detail) if detail is not None else None
    if record.get("group") == "X.509 failure":
        check = failed_check(detail_text)
        if check:
            return check
    alert = record.get("alert")
    if alert:
        return str(alert)
    return detail_text or ""


def _recent(page: PageInputs) -> str:
    shown = [(n, r) for n, r in page.recent if r.get("listener") in BOUNTY_LISTENERS]
    shown = shown[-RECENT_ROWS:][::-1]
    if not shown:
        table = "<p>No connection to the three ports yet.</p>"
    else:
        rows = "\n".join(
            f'<tr><td><a href="/connection/{n}">{n}</a></td>'
            f"<td class=\"wide\">{escape(str(r.get('time', ''))[11:19])}</td>"
            f"<td>{escape(str(r.get('port', '')))}</td>"
            f"<td>{escape(mask_address(str(_mapping(r.get('peer')).get('address', ''))))}</td>"
            f"<td>{escape(str(r.get('version', '')))}</td>"
            f"<td>{escape(str(r.get('outcome', '')))}</td>"
            f"<td>{escape(refusing_check(r))}</td></tr>"
            for n, r in shown
        )
        table = ('<div class="scroll"><table id="recent-table"><thead><tr><th>#</th>'
                 '<th class="wide">time (UTC)</th><th>port</th><th>from</th><th>version</th>'
                 "<th>outcome</th><th>refused by</th></tr></thead>"
                 f"<tbody>{rows}</tbody></table></div>")
    return (f'<section id="recent"><h2>Recent connections</h2>'
            "<p>Addresses are shown as their network only (IPv4 /24, IPv6 /48). Follow a "
            f"number for that connection's handshake trace.</p>{table}</section>")


def index_html(page: PageInputs) -> str:
    """The whole index page."""
    software = (f'<section id="software"><h2>Installed software</h2><p>{page.software_count} '
                'packages; the list is at <a href="/software">/software</a>.</p></section>')
    body = (_rules(page) + _ports(page) + _anchor(page) + _counters(page) + _selftalk(page)
            + _recent(page) + software + "</main>"
            '<footer>Machine-readable: <a href="/stats">/stats</a>, <a href="/metrics">'
            '/metrics</a>, <a href="/selftalk.json">/selftalk.json</a>, <a href="/anchor.pem">'
            "/anchor.pem</a>.</footer>")
    return document("The Piñata", body, script=True)


def _trace_rows(trace: object) -> str:
    entries = trace if isinstance(trace, Sequence) else ()
    rows = []
    for entry in entries:
        e = _mapping(entry)
        details = ", ".join(f"{k}={v}" for k, v in e.items() if k not in ("kind", "what"))
        rows.append(f"<tr><td>{escape(str(e.get('kind', '')))}</td>"
                    f"<td>{escape(str(e.get('what', '')))}</td><td>{escape(details)}</td></tr>")
    return "\n".join(rows)


def connection_html(number: int, record: Record) -> str:
    """One connection's page: its verdict, the chain it presented, its bounded trace."""
    fields = [("port", str(record.get("port", ""))), ("time", str(record.get("time", ""))),
              ("from", mask_address(str(_mapping(record.get("peer")).get("address", ""))))]
    fields += [(k, str(record[k])) for k in (
        "outcome", "group", "alert", "cause", "detail", "version", "cipher_suite", "named_group",
        "signature_scheme", "peer_signature_scheme", "duration", "trace_dropped") if k in record]
    chain = record.get("peer_chain")
    for i, link in enumerate(chain if isinstance(chain, Sequence) else ()):
        c = _mapping(link)
        fields.append((f"certificate {i}", f"{c.get('subject')} (SHA-256 {c.get('sha256')})"))
    body = (f'<header><h1>Connection {number}</h1><p><a href="/">Back to the piñata</a></p>'
            f'</header><main><table id="verdict">{_rows(fields)}</table>'
            '<h2>Handshake trace</h2><div class="scroll"><table id="trace"><thead><tr>'
            "<th>kind</th><th>what</th><th>details</th></tr></thead><tbody>"
            f"{_trace_rows(record.get('trace'))}</tbody></table></div></main>")
    return document(f"Connection {number}", body)


def software_text(software: Sequence[tuple[str, str]]) -> str:
    """`/software`: one "name version" line per distribution."""
    return "".join(f"{name} {version}\n" for name, version in software)
