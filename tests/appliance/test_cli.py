"""`pinata toy`, `pinata serve` and `pinata bench` as a user runs them."""

from __future__ import annotations

import json
import random
import signal
import socket
import subprocess
import sys
import time
import types
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import IO

import pytest

from pinata.cli import main
from tests.appliance.harness import SECRET, client_context, read_all, toy_path, written
from tests.appliance.test_settings import GOOD, write_config

DEFAULT_PORTS = (10000, 10001, 10002, 8080, 8443, 40001)


def free_offset() -> int:
    """An offset at which every default port is free on loopback (a race, rarely lost)."""
    for _ in range(50):
        offset = random.randrange(1000, 20000)
        sockets: list[socket.socket] = []
        try:
            for port in DEFAULT_PORTS:
                sock = socket.socket()
                sockets.append(sock)
                sock.bind(("127.0.0.1", port + offset))
            return offset
        except OSError:
            continue
        finally:
            for sock in sockets:
                sock.close()
    raise RuntimeError("no free port offset")


def start(args: Sequence[str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "pinata.cli", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )


def listening(stdout: IO[bytes]) -> dict[str, int]:
    line = stdout.readline()
    written(line)
    ports: dict[str, int] = {k: v["port"] for k, v in json.loads(line)["listening"].items()}
    return ports


def stop(process: subprocess.Popen[bytes], how: signal.Signals) -> tuple[int, bytes, bytes]:
    process.send_signal(how)
    out, err = process.communicate(timeout=15)
    written(out + err)
    return process.returncode, out, err


@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_toy_serves_prints_how_to_reach_it_and_stops_cleanly(how: signal.Signals) -> None:
    offset = free_offset()
    process = start(["toy", "--port-offset", str(offset)])
    try:
        assert process.stdout is not None
        ports = listening(process.stdout)
        assert ports["tls_server"] == 10000 + offset and ports["https"] == 8443 + offset
        context = client_context(toy_path("researcher-client.pem"),
                                 toy_path("researcher-client.key"))
        with socket.create_connection(("127.0.0.1", ports["tls_server"]), timeout=10) as raw, \
                context.wrap_socket(raw) as tls:
            assert read_all(tls) == SECRET
        deadline = time.monotonic() + 10
        released = 0
        while not released and time.monotonic() < deadline:  # the record lands just after EOF
            url = f"http://127.0.0.1:{ports['http']}/stats"
            with urllib.request.urlopen(url, timeout=10) as response:
                page = response.read()
            written(page)
            released = json.loads(page)["secrets_released_to_stranger"]
        assert released >= 1
    finally:
        code, out, err = stop(process, how)
    assert code == 0, err
    instructions = err.decode()
    assert f"openssl s_client -connect 127.0.0.1:{10000 + offset}" in instructions
    assert toy_path("researcher-client.pem") in instructions
    assert b"Traceback" not in err
    assert '"outcome":"secret released"' in out.decode()


def test_serve_refuses_a_bad_config_naming_the_field(tmp_path: Path) -> None:
    path = write_config(tmp_path, GOOD.replace('client_key = "client.key"',
                                               'client_key = "server.key"'))
    done = subprocess.run([sys.executable, "-m", "pinata.cli", "serve", "--config", str(path)],
                          capture_output=True, timeout=60, check=False)
    written(done.stdout + done.stderr)
    assert done.returncode == 2
    assert b"credentials.client_key" in done.stderr and b"does not match" in done.stderr


def test_serve_runs_a_config_with_an_ephemeral_anchor(tmp_path: Path) -> None:
    ports = "\n".join(f"{name} = 0" for name in
                      ("tls_server", "connect_back", "tls_client", "http", "https"))
    body = GOOD.split("[ports]")[0] + f"[ports]\n{ports}\n" + \
        '[credentials]\nanchor = "ephemeral"\n'
    path = write_config(tmp_path, body)
    process = start(["serve", "--config", str(path)])
    try:
        assert process.stdout is not None
        bound = listening(process.stdout)
        with urllib.request.urlopen(f"http://127.0.0.1:{bound['http']}/anchor.pem",
                                    timeout=10) as response:
            anchor = response.read()
        written(anchor)
        assert anchor.startswith(b"-----BEGIN CERTIFICATE-----")
        assert anchor != Path(toy_path("anchor.pem")).read_bytes()
    finally:
        code, _, err = stop(process, signal.SIGTERM)
    assert code == 0, err


def test_bench_without_the_module_says_so(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "pinata.bench", None)
    assert main(["bench", "--anything"]) == 2
    assert "pinata.bench" in capsys.readouterr().err


def test_bench_dispatches_its_arguments(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[list[str]] = []
    fake = types.ModuleType("pinata.bench")
    fake.main = lambda argv: seen.append(argv) or 3  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "pinata.bench", fake)
    assert main(["bench", "--rounds", "5"]) == 3
    assert seen == [["--rounds", "5"]]
