"""The web page over HTTP and over HTTPS (our engine, no client certificate)."""

from __future__ import annotations

import contextlib
import http.client
import json
import re
import socket
import time
from dataclasses import replace
from typing import Any

import pytest
from cryptography import x509

from pinata.tls.constants import TLS13
from tests.appliance.harness import (
    RunningAppliance,
    client_context,
    test_settings,
    toy_path,
    written,
)


def get(appliance: RunningAppliance, path: str, *, https: bool = False,
        method: str = "GET") -> tuple[int, dict[str, str], bytes]:
    connection: http.client.HTTPConnection
    if https:
        connection = http.client.HTTPSConnection(
            "127.0.0.1", appliance.ports["https"], timeout=10, context=client_context()
        )
    else:
        connection = http.client.HTTPConnection("127.0.0.1", appliance.ports["http"], timeout=10)
    try:
        connection.request(method, path)
        response = connection.getresponse()
        body = response.read()
        written(body)
        return response.status, {k.lower(): v for k, v in response.getheaders()}, body
    finally:
        connection.close()


def raw_exchange(appliance: RunningAppliance, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", appliance.ports["http"]), timeout=10) as sock:
        with contextlib.suppress(OSError):  # the server may close before reading it all
            sock.sendall(request)
        answer = b""
        while True:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            answer += chunk
    written(answer)
    return answer


@pytest.mark.parametrize("https", [False, True], ids=["http", "https"])
def test_index_states_rules_ports_anchor_and_address(
    appliance: RunningAppliance, https: bool
) -> None:
    status, headers, body = get(appliance, "/", https=https)
    assert status == 200
    assert headers["content-type"].startswith("text/html")
    page = body.decode()
    assert appliance.settings.bitcoin_address in page
    for name in ("tls_server", "connect_back", "tls_client"):
        assert str(appliance.ports[name]) in page
    assert "BEGIN CERTIFICATE" in page
    assert "Rules" in page and "Talking to itself" in page
    assert '<span id="tls-versions">TLS 1.3 and TLS 1.2</span>' in page


def test_the_rules_name_the_versions_the_settings_speak(make_appliance: Any) -> None:
    running = make_appliance(replace(test_settings(), tls_versions=(TLS13,)))
    _, _, body = get(running, "/")
    assert '<span id="tls-versions">TLS 1.3</span>' in body.decode()


def test_anchor_pem_is_the_toy_anchor(appliance: RunningAppliance) -> None:
    status, _, body = get(appliance, "/anchor.pem")
    assert status == 200
    served = x509.load_pem_x509_certificate(body)
    with open(toy_path("anchor.pem"), "rb") as f:
        assert served == x509.load_pem_x509_certificate(f.read())


def test_software_lists_installed_distributions(appliance: RunningAppliance) -> None:
    status, _, body = get(appliance, "/software")
    assert status == 200
    names = {line.split(" ")[0].lower() for line in body.decode().splitlines()}
    assert {"trio", "cryptography", "h11"} <= names


def test_stats_is_json_and_counts_requests(appliance: RunningAppliance) -> None:
    _, _, first = get(appliance, "/stats")
    before: dict[str, Any] = json.loads(first)
    get(appliance, "/anchor.pem")
    _, _, second = get(appliance, "/stats")
    after: dict[str, Any] = json.loads(second)
    assert after["http_responses"].get("200", 0) >= before["http_responses"].get("200", 0) + 2
    connections = after["listeners"]["http"]["connections"]
    assert connections >= before["listeners"]["http"]["connections"] + 2
    assert set(after["listeners"]) == {"tls_server", "connect_back", "tls_client", "http", "https"}


METRIC_LINE = re.compile(r'^[a-z_]+(\{([a-z_]+="[^"\\]*(\\.[^"\\]*)*",?)*\})? [0-9.e+-]+$')


def test_metrics_is_prometheus_text(appliance: RunningAppliance) -> None:
    status, headers, body = get(appliance, "/metrics")
    assert status == 200
    assert "version=0.0.4" in headers["content-type"]
    lines = body.decode().splitlines()
    samples = [line for line in lines if not line.startswith("#")]
    assert samples and all(METRIC_LINE.match(line) for line in samples), samples
    assert any(line.startswith("pinata_connections_total{") for line in samples)
    declared = {line.split()[2] for line in lines if line.startswith("# TYPE")}
    assert {s.split("{")[0].split(" ")[0] for s in samples} <= declared


def test_head_has_no_body_and_unknown_paths_are_404(appliance: RunningAppliance) -> None:
    status, headers, body = get(appliance, "/", method="HEAD")
    assert status == 200 and body == b"" and int(headers["content-length"]) > 0
    assert get(appliance, "/nothing-here")[0] == 404
    assert get(appliance, "/", method="DELETE")[0] == 405


def test_connection_lookup_shows_only_own_connections(appliance: RunningAppliance) -> None:
    assert get(appliance, "/connection?port=abc")[0] == 400
    assert get(appliance, "/connection?port=1")[0] == 404
    assert get(appliance, "/connection?port=1&listener=tls_server")[0] == 404
    assert get(appliance, "/connection?port=1&listener=ssh")[0] == 400


def _from_port(source_port: int, to_port: int, sent: bytes) -> None:
    """One connection from 127.0.0.1:`source_port`: send, read to the end, close."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", source_port))
        sock.settimeout(10)
        sock.connect(("127.0.0.1", to_port))
        sock.sendall(sent)
        with contextlib.suppress(OSError):
            while sock.recv(65536):
                pass


def _record(appliance: RunningAppliance, query: str) -> dict[str, Any]:
    for _ in range(100):  # a record is written a moment after its connection ends
        status, _, body = get(appliance, f"/connection?{query}")
        if status == 200:
            found: dict[str, Any] = json.loads(body)
            return found
        assert status == 404
        time.sleep(0.05)
    raise AssertionError(f"no record for {query}")


def test_connection_lookup_by_listener_tells_apart_connections_from_one_port(
    appliance: RunningAppliance,
) -> None:
    """The kernel gives one source port to connections to different ports, so
    `pinata try` names the listener: a later page visit from the same port
    does not answer for the bounty connection."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    _from_port(port, appliance.ports["tls_server"], b"\x16\x03\x03\x00\x04\x63\x00\x00\x00")
    assert _record(appliance, f"port={port}&listener=tls_server")["listener"] == "tls_server"
    _from_port(port, appliance.ports["http"],
               b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert _record(appliance, f"port={port}&listener=http")["listener"] == "http"
    assert _record(appliance, f"port={port}")["listener"] == "http"  # the latest
    bounty = _record(appliance, f"port={port}&listener=tls_server")
    assert bounty["listener"] == "tls_server" and bounty["peer"]["port"] == port


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"NOT HTTP AT ALL\r\n\r\n",
        b"GET / HTTP/1.1\r\n\r\n",  # HTTP/1.1 without Host
        b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\n" + b"X-Pad: " + b"a" * 20000 + b"\r\n\r\n",
    ],
    ids=["garbage", "no-host", "bad-length", "oversized-head"],
)
def test_bad_requests_get_400_and_the_connection_closes(
    appliance: RunningAppliance, request_bytes: bytes
) -> None:
    answer = raw_exchange(appliance, request_bytes)
    assert answer.startswith(b"HTTP/1.1 4"), answer[:100]
    assert answer.split(b" ", 2)[1] in (b"400", b"431")
    assert b"connection: close" in answer.lower()


def test_oversized_body_is_refused(appliance: RunningAppliance) -> None:
    limit = appliance.settings.limits.max_http_request_bytes
    body = b"x" * (limit + 1)
    answer = raw_exchange(
        appliance,
        b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body) + body,
    )
    assert answer.startswith(b"HTTP/1.1 413")


def test_keep_alive_serves_several_requests(appliance: RunningAppliance) -> None:
    answer = raw_exchange(
        appliance,
        b"GET /stats HTTP/1.1\r\nHost: x\r\n\r\nGET /anchor.pem HTTP/1.1\r\nHost: x\r\n"
        b"Connection: close\r\n\r\n",
    )
    assert answer.count(b"HTTP/1.1 200") == 2


def test_https_engine_is_ours_and_asks_no_client_certificate(
    appliance: RunningAppliance,
) -> None:
    context = client_context()
    with socket.create_connection(("127.0.0.1", appliance.ports["https"]), timeout=10) as raw:
        source_port = raw.getsockname()[1]
        with context.wrap_socket(raw) as tls:
            assert tls.version() == "TLSv1.3"
            tls.sendall(b"GET /stats HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            answer = b""
            while chunk := tls.recv(65536):
                answer += chunk
    written(answer)
    assert answer.startswith(b"HTTP/1.1 200")
    record = appliance.record_from("https", source_port)
    assert record["outcome"] == "served" and record["version"] == "TLS 1.3"
    assert "peer_chain" not in record


def test_https_without_tls_is_refused(appliance: RunningAppliance) -> None:
    with socket.create_connection(("127.0.0.1", appliance.ports["https"]), timeout=10) as sock:
        source_port = sock.getsockname()[1]
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        try:
            answer = sock.recv(100)
        except ConnectionResetError:
            answer = b""
    assert not answer.startswith(b"HTTP")
    assert appliance.record_from("https", source_port)["outcome"] == "alert sent"



def test_html_policy_admits_only_the_page_style_and_script(appliance: RunningAppliance) -> None:
    from pinata.appliance.page.layout import CONTENT_SECURITY_POLICY

    _, headers, _ = get(appliance, "/")
    assert headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    _, headers, _ = get(appliance, "/stats")
    assert headers["content-security-policy"] == "default-src 'none'"


def test_selftalk_json_and_connection_pages(appliance: RunningAppliance) -> None:
    status, headers, body = get(appliance, "/selftalk.json")
    assert status == 200 and headers["content-type"] == "application/json"
    assert isinstance(json.loads(body), list)
    # A refusal on 10000 (no certificate) is listed and has its own page.
    with socket.create_connection(("127.0.0.1", appliance.ports["tls_server"]),
                                  timeout=10) as raw:
        source_port = raw.getsockname()[1]
        with contextlib.suppress(OSError), client_context().wrap_socket(raw) as tls:
            tls.recv(100)
    appliance.record_from("tls_server", source_port)
    _, _, page = get(appliance, "/")
    numbers = re.findall(r'<a href="/connection/(\d+)">', page.decode())
    assert numbers
    status, headers, view = get(appliance, f"/connection/{numbers[0]}", https=True)
    assert status == 200 and headers["content-type"].startswith("text/html")
    assert b"certificate_required" in view and b"127.0.0.0/24" in view
    assert b"127.0.0.1" not in view


@pytest.mark.parametrize("path", ["/connection/0", "/connection/999999", "/connection/x",
                                  "/connection/" + "9" * 40, "/connection/%C2%B2"])
def test_connection_page_refuses_unknown_numbers(appliance: RunningAppliance, path: str) -> None:
    assert get(appliance, path)[0] == 404


def test_web_connections_have_no_page(appliance: RunningAppliance) -> None:
    get(appliance, "/stats")
    numbers = appliance.call(lambda: [
        n for n, r in appliance.state.journal.numbered() if r["listener"] == "http"])
    assert numbers
    assert get(appliance, f"/connection/{numbers[-1]}")[0] == 404
