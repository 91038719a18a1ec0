"""The page's frame: inline style and script, and the policy that allows them.

One self-contained document: no external asset, no framework. The script
only refreshes counters and the page reads the same without it. The
Content-Security-Policy admits exactly this style and this script, by hash
(CSP Level 3 §8.3), and nothing else: an injected `<script>` or `style`
attribute would not run even if escaping ever failed.
"""

from __future__ import annotations

import base64
import hashlib
from html import escape

STYLE = """
:root{color-scheme:light;--ink:#1b1f24;--muted:#4b5563;--line:#d0d7de;--bg:#fbfbf8;
--accent:#0b5cad;--ok:#1a7f37;--bad:#b3261e;--other:#6b7280;--panel:#ffffff}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--ink);
font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif}
header,main,footer{max-width:72rem;margin:0 auto;padding:0 1rem}
header{padding-top:1.5rem}
h1{font-size:1.9rem;margin:.2rem 0}
h2{font-size:1.3rem;margin:2rem 0 .6rem;border-bottom:2px solid var(--line)}
a{color:var(--accent)}
code,pre{font:.85rem/1.4 ui-monospace,"DejaVu Sans Mono",monospace}
pre{background:var(--panel);border:1px solid var(--line);padding:.6rem;
white-space:pre-wrap;word-break:break-all;margin:.4rem 0}
.address{font-size:1rem;word-break:break-all;background:var(--panel);
border:1px solid var(--line);padding:.1rem .3rem}
.grid{display:grid;gap:1rem;grid-template-columns:repeat(auto-fit,minmax(16rem,1fr))}
.card{background:var(--panel);border:1px solid var(--line);border-radius:6px;padding:.8rem}
.card h3{margin:0 0 .3rem;font-size:1.05rem}
.port{font-size:1.6rem;font-weight:700;color:var(--accent)}
.scroll{overflow-x:auto}
table{border-collapse:collapse;width:100%;background:var(--panel)}
th,td{text-align:left;padding:.3rem .5rem;border-bottom:1px solid var(--line);
vertical-align:top}
td.n{text-align:right;font-variant-numeric:tabular-nums}
dl.stats{display:grid;grid-template-columns:1fr auto;margin:0}
dl.stats dt{padding:.15rem 0}
dl.stats dd{margin:0;text-align:right;font-weight:600;font-variant-numeric:tabular-nums}
.big{font-size:2rem;font-weight:700}
.good{color:var(--ok)}.bad{color:var(--bad)}.muted{color:var(--muted)}
svg{width:100%;height:auto;display:block;background:var(--panel);
border:1px solid var(--line);font:12px system-ui,sans-serif}
svg text{fill:var(--ink)}
svg.ladder{max-width:38rem;margin:0 auto;font-size:13px}
svg.chart{min-width:34rem;font-size:11px}
.scroll.from-end{direction:rtl}.scroll.from-end>*{direction:ltr}
svg .lane{stroke:var(--line);stroke-width:2;font-weight:700;font-size:14px}
svg text.lane{stroke:none}
svg .sub{fill:var(--muted)}
svg .rec line{stroke:var(--ink);stroke-width:1.5}
svg .rec path,svg .rec circle{fill:var(--ink)}
svg .rec.sealed line{stroke:var(--accent);stroke-dasharray:6 3}
svg .rec.sealed path,svg .rec.sealed circle{fill:var(--accent)}
svg .axis{stroke:var(--muted)}
svg .k-released{fill:var(--ok)}svg .k-refused{fill:var(--bad)}svg .k-other{fill:var(--other)}
footer{color:var(--muted);padding:2rem 1rem}
@media (max-width:40rem){body{font-size:15px}h1{font-size:1.5rem}th,td{padding:.25rem}
table{font-size:.85rem}.wide{display:none}}
"""

# Refreshes every element marked data-stat from /stats; "a/b" walks the JSON.
SCRIPT = """
setInterval(function(){fetch('/stats',{cache:'no-store'}).then(function(r){return r.json()})
.then(function(s){document.querySelectorAll('[data-stat]').forEach(function(e){
var v=s;e.getAttribute('data-stat').split('/').forEach(function(k){v=v==null?v:v[k]});
e.textContent=String(v==null?0:v)})}).catch(function(){})},15000);
"""


def _hash(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


CONTENT_SECURITY_POLICY = (
    f"default-src 'none'; style-src {_hash(STYLE)}; script-src {_hash(SCRIPT)}; "
    "connect-src 'self'; img-src 'none'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)


def document(title: str, body: str, *, script: bool = False) -> str:
    """A whole HTML document around `body` (already escaped markup); `title` is escaped."""
    tail = f"<script>{SCRIPT}</script>" if script else ""
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{escape(title)}</title><style>{STYLE}</style></head>\n"
        f"<body>\n{body}\n{tail}</body></html>\n"
    )
