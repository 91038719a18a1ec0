"""The same page and `pinata try` against the sandboxed unikernel (chroot,
uid 65534 as root, Landlock, seccomp), launched as `python -m unikernel
launch` does, with the toy credentials on ephemeral loopback ports."""

from __future__ import annotations

import json
import re
import socket
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from bait_ca import toy as bait_ca_toy
from pinata.cli import main
from tests.page.browser import Browser, find_chromium, png_size, spki_hash
from tests.unikernel.harness import Launched, write_manifest

TOY = bait_ca_toy.load()
CANONICAL = {"tls_server": 10000, "connect_back": 10001, "tls_client": 10002}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Sandboxed:
    run: Launched
    ports: dict[str, int]
    connect_back: int

    def url(self, path: str, scheme: str = "http") -> str:
        return f"{scheme}://127.0.0.1:{self.ports[scheme]}{path}"

    def try_args(self, listener: str) -> list[str]:
        canonical = CANONICAL[listener]
        return ["try", str(canonical), "--port-offset", str(self.ports[listener] - canonical),
                "--http-port", str(self.ports["http"]), "--listen-port", str(self.connect_back),
                "--json"]


@pytest.fixture(scope="module")
def sandboxed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandboxed]:
    connect_back = free_port()
    manifest = write_manifest(tmp_path_factory.mktemp("page"), entry="appliance",
                              connect_back_port=connect_back, selftalk=600)
    run = Launched.manifest(manifest)
    try:
        ports = run.ports()
        run.wait_event("sandbox")
        yield Sandboxed(run, ports, connect_back)
    finally:
        # SIGTERM, which the tender forwards, so the guest ends cleanly (a SIGKILLed
        # tender's guest is killed by its parent-death signal).
        run.stop()


VERSIONS = ("1.3", "1.2")


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("listener", sorted(CANONICAL))
def test_try_earns_the_secret_from_the_sandboxed_image(
    sandboxed: Sandboxed, capsys: pytest.CaptureFixture[str], listener: str, version: str
) -> None:
    code = main([*sandboxed.try_args(listener), "--toy", "--tls-version", version])
    shown = json.loads(capsys.readouterr().out)
    assert code == 0, shown
    assert shown["received"].encode() == TOY.secret_wif
    assert shown["version"] == f"TLS {version}"
    assert shown["appliance_record"]["outcome"] == "secret released"
    assert shown["appliance_record"]["listener"] == listener
    assert shown["appliance_record"]["version"] == f"TLS {version}"


@pytest.mark.parametrize("version", VERSIONS)
def test_try_with_a_forged_chain_is_refused_by_the_sandboxed_image(
    sandboxed: Sandboxed, capsys: pytest.CaptureFixture[str], version: str
) -> None:
    code = main([*sandboxed.try_args("tls_server"), "--forge", "rogue_ca_same_subject",
                 "--tls-version", version])
    shown = json.loads(capsys.readouterr().out)
    assert code == 1
    assert shown["alert_sent_by"] == "the piñata"
    assert shown["appliance_record"]["group"] == "X.509 failure"
    assert shown["appliance_record"]["version"] == f"TLS {version}"


@pytest.mark.parametrize("width", (375, 1280))
@pytest.mark.parametrize("scheme", ("http", "https"))
def test_the_sandboxed_page_in_a_browser(
    sandboxed: Sandboxed, scheme: str, width: int
) -> None:
    binary = find_chromium()
    if binary is None:
        pytest.skip("headless Chromium is not installed (Debian package chromium; "
                    "`make test` installs it when run as root with apt-get)")
    deadline = time.monotonic() + 30
    reports: list[dict[str, object]] = []
    while not reports and time.monotonic() < deadline:
        with urllib.request.urlopen(sandboxed.url("/selftalk.json"), timeout=10) as response:
            reports = json.loads(response.read())
        time.sleep(0.2)
    assert reports and reports[-1].get("both_released") is True
    # The manifest names no web certificate, so HTTPS presents the server's.
    with Browser(binary, trusted_spki=spki_hash(TOY.path("server.pem").read_bytes())) as chromium:
        loaded = chromium.load(sandboxed.url("/", scheme), width, screenshot=True)
    assert not loaded.problems, loaded.problems
    for name in CANONICAL:
        assert f'data-port="{name}">{sandboxed.ports[name]}<' in loaded.dom
    legs = reports[-1]["legs"]
    assert isinstance(legs, list)
    assert loaded.dom.count('<g class="rec') == sum(len(leg["records"]) for leg in legs)
    assert re.search(r'data-stat="secrets_released[^"]*">\d+<', loaded.dom)
    assert TOY.secret_wif.decode() not in loaded.dom
    assert loaded.viewport_width == width and loaded.scroll_width <= width
    assert png_size(loaded.screenshot)[0] == width
