"""Headless Chromium driven over the DevTools protocol on a pipe
(`--remote-debugging-pipe`: commands on fd 3, answers on fd 4, each a JSON
text ended by NUL). The protocol lets a test set the viewport exactly (a
headless window is never narrower than 500 px), collect every console
message, uncaught exception and browser log entry (CSP refusals, failed
loads), read the DOM and the page's scroll width, and capture screenshots.
One browser per test module, one fresh tab per load, every wait bounded."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import select
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization

CANDIDATES = ("chromium", "chromium-browser")
TIMEOUT = 30.0
SETTLE = 0.3  # quiet time after the load event, for late console messages
MAX_MESSAGE = 64 << 20
# The wrapper puts our two pipe ends on the descriptors Chromium expects.
_WRAPPER = ("import os, sys; os.dup2(int(sys.argv[1]), 3); os.dup2(int(sys.argv[2]), 4); "
            "os.execv(sys.argv[3], sys.argv[3:])")


def find_chromium() -> str | None:
    for name in CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    return None


def spki_hash(certificate_pem: bytes) -> str:
    """base64(SHA-256(SubjectPublicKeyInfo)), as --ignore-certificate-errors-spki-list wants."""
    public = x509.load_pem_x509_certificate(certificate_pem).public_key()
    spki = public.public_bytes(serialization.Encoding.DER,
                               serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(hashlib.sha256(spki).digest()).decode()


@dataclass
class Load:
    dom: str = ""
    problems: list[str] = field(default_factory=list)
    scroll_width: int = 0
    viewport_width: int = 0
    screenshot: bytes = b""


class Browser:
    def __init__(self, binary: str, trusted_spki: str | None = None) -> None:
        self._profile = tempfile.TemporaryDirectory(prefix="pinata-chromium-")
        to_chrome_r, self._to_chrome = os.pipe()
        self._from_chrome, from_chrome_w = os.pipe()
        command = [
            binary, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
            "--disable-extensions", "--disable-sync", "--hide-scrollbars",
            "--remote-debugging-pipe", f"--user-data-dir={self._profile.name}",
        ]
        if trusted_spki:
            command.append(f"--ignore-certificate-errors-spki-list={trusted_spki}")
        self._process = subprocess.Popen(
            [sys.executable, "-c", _WRAPPER, str(to_chrome_r), str(from_chrome_w), *command],
            pass_fds=(to_chrome_r, from_chrome_w), stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self._buffer = b""
        self._next_id = 0
        self._events: list[dict[str, Any]] = []

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._send("Browser.close", {})
        try:
            self._process.wait(10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait(5)
        for fd in (self._to_chrome, self._from_chrome):
            with contextlib.suppress(OSError):
                os.close(fd)
        self._profile.cleanup()

    # --- the protocol ---------------------------------------------------------

    def _send(self, method: str, params: dict[str, Any], session: str | None = None) -> int:
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params}
        if session is not None:
            message["sessionId"] = session
        os.write(self._to_chrome, json.dumps(message).encode() + b"\0")
        return self._next_id

    def _receive(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("Chromium did not answer in time")
            ready, _, _ = select.select([self._from_chrome], [], [], left)
            if ready:
                chunk = os.read(self._from_chrome, 1 << 20)
                if not chunk:
                    raise ConnectionError("Chromium closed its pipe")
                self._buffer += chunk
                if len(self._buffer) > MAX_MESSAGE:
                    raise ValueError("message too large")
        raw, _, self._buffer = self._buffer.partition(b"\0")
        message: dict[str, Any] = json.loads(raw)
        return message

    def call(self, method: str, params: dict[str, Any] | None = None,
             session: str | None = None) -> dict[str, Any]:
        """Send one command and wait for its answer; events met meanwhile are kept."""
        wanted = self._send(method, params or {}, session)
        deadline = time.monotonic() + TIMEOUT
        while True:
            message = self._receive(deadline)
            if message.get("id") == wanted:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                result: dict[str, Any] = message.get("result", {})
                return result
            if "method" in message:
                self._events.append(message)

    def _wait_event(self, method: str, session: str, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while True:
            if any(e["method"] == method and e.get("sessionId") == session
                   for e in self._events):
                return True
            try:
                self._events.append(self._receive(deadline))
            except TimeoutError:
                return False

    # --- pages ----------------------------------------------------------------

    def load(self, url: str, width: int, height: int = 900, *,
             screenshot: bool = False, script: bool = True,
             then: Callable[[], None] | None = None, advance_ms: int = 0) -> Load:
        """Open `url` in a fresh tab of exactly `width` x `height` CSS pixels
        (with the page's own scripts disabled when `script` is False). With
        `then`, call it once the page has loaded, then let the page's clock run
        `advance_ms` of virtual time (its timers fire, their fetches finish)."""
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.call("Target.attachToTarget",
                            {"targetId": target, "flatten": True})["sessionId"]
        try:
            for domain in ("Page", "Runtime", "Log"):
                self.call(f"{domain}.enable", {}, session)
            self.call("Emulation.setDeviceMetricsOverride", {
                "width": width, "height": height, "deviceScaleFactor": 1,
                "mobile": width < 600}, session)
            if not script:
                self.call("Emulation.setScriptExecutionDisabled", {"value": True}, session)
            self._events.clear()
            loaded = Load()
            navigated = self.call("Page.navigate", {"url": url}, session)
            if navigated.get("errorText"):
                loaded.problems.append(f"navigation: {navigated['errorText']}")
                return loaded
            if not self._wait_event("Page.loadEventFired", session, TIMEOUT):
                loaded.problems.append("no load event")
            self._wait_event("never", session, SETTLE)
            if then is not None:
                then()
                self.call("Emulation.setVirtualTimePolicy", {
                    "policy": "pauseIfNetworkFetchesPending", "budget": advance_ms}, session)
                if not self._wait_event("Emulation.virtualTimeBudgetExpired", session, TIMEOUT):
                    loaded.problems.append("virtual time did not run out")
                self._wait_event("never", session, SETTLE)
            self._fill(loaded, session, screenshot)
            loaded.problems += [problem for event in self._events
                                if event.get("sessionId") == session
                                for problem in _problem(event)]
            return loaded
        finally:
            self.call("Target.closeTarget", {"targetId": target})

    def _fill(self, loaded: Load, session: str, screenshot: bool) -> None:
        def evaluate(expression: str) -> Any:
            answer = self.call("Runtime.evaluate",
                               {"expression": expression, "returnByValue": True}, session)
            return answer["result"].get("value")

        loaded.dom = str(evaluate("document.documentElement.outerHTML"))
        loaded.scroll_width = int(evaluate("document.documentElement.scrollWidth"))
        loaded.viewport_width = int(evaluate("window.innerWidth"))
        if screenshot:
            shot = self.call("Page.captureScreenshot",
                             {"format": "png", "captureBeyondViewport": True}, session)
            loaded.screenshot = base64.b64decode(shot["data"])


def _problem(event: dict[str, Any]) -> list[str]:
    method, params = event["method"], event.get("params", {})
    if method == "Runtime.exceptionThrown":
        details = params.get("exceptionDetails", {})
        return [f"exception: {details.get('exception', {}).get('description') or details}"]
    if method == "Runtime.consoleAPICalled":
        return [f"console.{params.get('type')}: {params.get('args')}"]
    if method == "Log.entryAdded":
        entry = params.get("entry", {})
        return [f"log {entry.get('level')} ({entry.get('source')}): {entry.get('text')}"]
    return []


def png_size(data: bytes) -> tuple[int, int]:
    """(width, height) from a PNG's IHDR chunk; ValueError if it is not a PNG."""
    if data[:8] != b"\x89PNG\r\n\x1a\n" or data[12:16] != b"IHDR":
        raise ValueError("not a PNG")
    width, height = struct.unpack(">II", data[16:24])
    return int(width), int(height)


def save_png(data: bytes, path: Path) -> tuple[int, int]:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return png_size(data)
