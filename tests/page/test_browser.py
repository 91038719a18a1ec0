"""The page in a real browser: headless Chromium (over the DevTools protocol)
loads it from `pinata toy` over HTTP and over HTTPS (our engine; the toy web
certificate trusted by its SPKI hash) in viewports exactly 375 and 1280 px
wide. No console message, exception or log entry (CSP refusal, failed load);
no sideways scrolling; the DOM holds the ports, the anchor, the counters and
one ladder arrow per relayed record, with scripts off too; a hostile
certificate subject stays text. Full-page screenshots go to out/browser/."""

from __future__ import annotations

import hashlib
import re
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from bait_ca import forge
from bait_ca import toy as bait_ca_toy
from pinata.cli import main
from tests.page.browser import Browser, find_chromium, save_png, spki_hash
from tests.page.markup import assert_no_injected_markup
from tests.toyproc import ToyProcess, start_toy

TOY = bait_ca_toy.load()
ARTEFACTS = Path(__file__).resolve().parents[2] / "out" / "browser"
HOSTILE_CN = '</td><script>alert(1)</script><img src=x onerror=alert(2)>'
# The subject as the page shows it: RFC 4514 escapes (backslashes), then HTML escapes.
ESCAPED = re.compile(r"&lt;script\\?&gt;alert\(1\)")
WIDTHS = (375, 1280)
SCHEMES = ("http", "https")


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    binary = find_chromium()
    if binary is None:
        pytest.skip("headless Chromium is not installed (Debian package chromium; "
                    "`make test` installs it when run as root with apt-get)")
    with Browser(binary, trusted_spki=spki_hash(TOY.path("web.pem").read_bytes())) as browser:
        yield browser


@pytest.fixture(scope="module")
def toy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ToyProcess]:
    running = start_toy()
    offset = str(running.offset)
    # Something for every part of the page: a release, a refusal, a hostile subject.
    leaf = forge.issue_leaf(TOY.anchor, "client", name=HOSTILE_CN)
    files = tmp_path_factory.mktemp("hostile")
    (files / "c.pem").write_bytes(leaf.pem)
    (files / "c.key").write_bytes(leaf.key_pem)
    assert main(["try", "10000", "--toy", "--port-offset", offset, "--json"]) == 0
    assert main(["try", "10002", "--forge", "expired_leaf", "--port-offset", offset,
                 "--json"]) == 1
    assert main(["try", "10000", "--cert", str(files / "c.pem"), "--key",
                 str(files / "c.key"), "--port-offset", offset, "--json"]) == 0
    running.wait_for_selftalk()
    yield running
    running.stop()


def test_console_problems_are_seen(chromium: Browser) -> None:
    # The controls: the checks below would catch a script error, a console
    # message, a CSP refusal and an untrusted certificate.
    loaded = chromium.load("data:text/html,<p>x</p><script>console.log(1);nosuchfunction()"
                           "</script>", 400)
    assert any("nosuchfunction" in line for line in loaded.problems), loaded.problems
    assert any(line.startswith("console.log") for line in loaded.problems), loaded.problems
    refused = chromium.load("data:text/html,<meta http-equiv='Content-Security-Policy' "
                            "content=\"style-src 'none'\"><style>p{}</style><p>x</p>", 400)
    assert any("Content Security Policy" in line for line in refused.problems)
    binary = find_chromium()
    assert binary is not None
    with Browser(binary) as untrusting:
        failed = untrusting.load("https://127.0.0.1:1/", 400)
    assert failed.problems


def _fingerprint(pem: bytes) -> str:
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    der = x509.load_pem_x509_certificate(pem).public_bytes(serialization.Encoding.DER)
    digest = hashlib.sha256(der).hexdigest().upper()
    return ":".join(digest[i:i + 2] for i in range(0, len(digest), 2))


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("scheme", SCHEMES)
def test_page_loads_clean_and_holds_everything(
    chromium: Browser, toy: ToyProcess, scheme: str, width: int
) -> None:
    loaded = chromium.load(toy.url("/", scheme), width)
    assert not loaded.problems, loaded.problems
    dom = loaded.dom
    assert "<h1>The Piñata</h1>" in dom, dom[:500]
    for name in ("tls_server", "connect_back", "tls_client"):
        assert f'data-port="{name}">{toy.ports[name]}<' in dom
    assert _fingerprint(TOY.path("anchor.pem").read_bytes()) in dom
    assert "BEGIN CERTIFICATE" in dom and 'href="/anchor.pem"' in dom
    assert 'href="/software"' in dom
    refused = re.search(r'data-stat="outcomes/X.509 failure">(\d+)<', dom)
    assert refused is not None and int(refused.group(1)) >= 1
    released = re.search(r'data-stat="secrets_released[^"]*">(\d+)<', dom)
    assert released is not None and int(released.group(1)) >= 2
    report = toy.wait_for_selftalk()
    legs = report["legs"]
    assert isinstance(legs, list)
    relayed = sum(len(leg["records"]) for leg in legs)
    assert relayed >= 4
    assert dom.count('<g class="rec') == relayed
    # Both directions share one sequence: the ladder is drawn in the relay's order.
    seqs = sorted(record["seq"] for leg in legs for record in leg["records"])
    assert seqs == list(range(relayed))
    first, second = re.findall(r'<g class="rec [a-z]+" data-leg="(\d)"', dom)[:2]
    assert (first, second) == ("0", "1")  # ClientHello out, then ServerHello back
    assert "client_hello" in dom and "server_hello" in dom
    assert '<svg class="chart"' in dom
    assert "127.0.0.0/24" in dom and "127.0.0.1" not in dom.split('id="recent"')[1]
    assert_no_injected_markup(dom, max_scripts=1)
    assert TOY.secret_wif.decode() not in dom


def test_page_reads_the_same_without_javascript(chromium: Browser, toy: ToyProcess) -> None:
    without = chromium.load(toy.url("/"), 375, script=False)
    assert not without.problems, without.problems
    for marker in ('id="rules"', 'id="ports"', 'id="anchor"', 'id="counters"',
                   'id="selftalk"', 'id="recent"', 'id="software"', 'data-stat="outcomes/'):
        assert marker in without.dom
    with_script = chromium.load(toy.url("/"), 375)
    assert without.dom.count('<g class="rec') == with_script.dom.count('<g class="rec') > 0
    # The control: with scripts off, a page's own script really does not run.
    probe = chromium.load("data:text/html,<p>x</p><script>nosuchfunction()</script>", 400,
                          script=False)
    assert not probe.problems, probe.problems


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("scheme", SCHEMES)
def test_page_fits_the_width_without_sideways_scrolling(
    chromium: Browser, toy: ToyProcess, scheme: str, width: int
) -> None:
    # Wide parts (the chart, tables) scroll inside their own box; the page never does.
    loaded = chromium.load(toy.url("/", scheme), width)
    assert loaded.viewport_width == width
    assert loaded.scroll_width <= width


def test_script_refreshes_the_counters(
    chromium: Browser, toy: ToyProcess, capsys: pytest.CaptureFixture[str]
) -> None:
    pattern = re.compile(r'data-stat="outcomes/X.509 failure">(\d+)<')

    def refuse_once() -> None:
        assert main(["try", "10000", "--forge", "wrong_eku_leaf", "--port-offset",
                     str(toy.offset), "--json"]) == 1
        capsys.readouterr()

    before = chromium.load(toy.url("/"), 1280)
    loaded = chromium.load(toy.url("/"), 1280, then=refuse_once, advance_ms=16_000)
    assert not loaded.problems, loaded.problems
    old, new = pattern.search(before.dom), pattern.search(loaded.dom)
    assert old is not None and new is not None
    assert int(new.group(1)) == int(old.group(1)) + 1


def _hostile_connection_path(toy: ToyProcess) -> str:
    with urllib.request.urlopen(toy.url("/"), timeout=10) as response:
        page = response.read().decode()
    for number in re.findall(r'href="/connection/(\d+)"', page):
        with urllib.request.urlopen(toy.url(f"/connection/{number}"), timeout=10) as response:
            if ESCAPED.search(response.read().decode()):
                return f"/connection/{number}"
    raise AssertionError("the hostile connection is not listed")


@pytest.mark.parametrize("scheme", SCHEMES)
def test_hostile_subject_stays_text_in_the_browser(
    chromium: Browser, toy: ToyProcess, scheme: str
) -> None:
    loaded = chromium.load(toy.url(_hostile_connection_path(toy), scheme), 375)
    assert not loaded.problems, loaded.problems
    # Serialised by the browser: an injected element would appear as markup here.
    assert_no_injected_markup(loaded.dom, max_scripts=0)
    assert ESCAPED.search(loaded.dom)
    assert TOY.secret_wif.decode() not in loaded.dom
    assert "ClientHello" in loaded.dom or "Certificate" in loaded.dom


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("scheme", SCHEMES)
def test_screenshots(chromium: Browser, toy: ToyProcess, scheme: str, width: int) -> None:
    loaded = chromium.load(toy.url("/", scheme), width, screenshot=True)
    assert not loaded.problems, loaded.problems
    path = ARTEFACTS / f"page-{scheme}-{width}.png"
    shot_width, shot_height = save_png(loaded.screenshot, path)
    assert shot_width == width
    assert shot_height > 2000  # the whole page, not one screen of it
