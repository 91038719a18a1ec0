"""The appliance's own record of one of our connections, from its web page.

`/connection?port=P&listener=L` answers only the address that asks, with the
record of its own connection from source port P to listener L; `pinata try`
and `pinata selftalk` show it beside their side of the story.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

ATTEMPTS = 100  # 10 s: a record is written after the appliance lingers on an alert it sent
PAUSE = 0.1
MAX_BODY = 1 << 20


def fetch_own_record(address: str, http_port: int, source_port: int, listener: str,
                     attempts: int = ATTEMPTS) -> dict[str, object]:
    """The record, or {"unavailable": why}.

    The appliance writes a record when its connection ends, a moment after
    ours does, so a 404 is retried for a little while (bounded by `attempts`).
    The listener is named because the kernel reuses source ports across
    destinations: without it, one of our own earlier fetches of this page
    from the same port could answer instead.
    """
    host = f"[{address}]" if ":" in address else address
    url = f"http://{host}:{http_port}/connection?port={source_port}&listener={listener}"
    for _ in range(attempts):
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                found = json.loads(response.read(MAX_BODY))
                return found if isinstance(found, dict) else {"unavailable": "not a record"}
        except urllib.error.HTTPError as exc:
            if exc.code != 404:
                return {"unavailable": str(exc)}
        except (urllib.error.URLError, OSError, ValueError) as exc:
            return {"unavailable": str(exc)}
        time.sleep(PAUSE)
    return {"unavailable": "no record of this connection"}
