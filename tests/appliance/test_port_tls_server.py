"""Port 10000 against real clients: Python's ssl and `openssl s_client`."""

from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from bait_ca import forge
from tests.appliance.harness import (
    SECRET,
    TOY,
    RunningAppliance,
    client_context,
    read_all,
    toy_path,
    write_pem,
)

pytestmark = pytest.mark.interop

RESEARCHER = (toy_path("researcher-client.pem"), toy_path("researcher-client.key"))

# Each hostile client credential, and the alert the validator answers it with.
FORGED: dict[str, tuple[Callable[[], forge.ForgedChain], str]] = {
    "self-signed": (lambda: forge.self_signed_leaf("client"), "unknown_ca"),
    "rogue CA": (lambda: forge.rogue_ca_same_subject(TOY.anchor, "client"), "bad_certificate"),
    "expired": (lambda: forge.expired_leaf(TOY.anchor, "client"), "certificate_expired"),
    "wrong EKU": (lambda: forge.wrong_eku_leaf(TOY.anchor, "client"), "bad_certificate"),
}


def python_client(port: int, cert: str | None = None, key: str | None = None,
                  ) -> tuple[bytes, ssl.SSLError | None, int]:
    context = client_context(cert, key)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        source_port = raw.getsockname()[1]
        with context.wrap_socket(raw) as tls:
            try:
                return read_all(tls), None, source_port
            except ssl.SSLError as exc:
                return b"", exc, source_port


def test_python_client_with_the_researcher_certificate_gets_the_secret(
    appliance: RunningAppliance,
) -> None:
    data, error, source_port = python_client(appliance.ports["tls_server"], *RESEARCHER)
    assert error is None
    assert data == SECRET
    record = appliance.record_from("tls_server", source_port)
    assert record["outcome"] == "secret released"
    assert record["version"] == "TLS 1.3"
    assert record["peer_chain"][0]["subject"] == "CN=toy researcher client"
    assert record["trace"], "the handshake trace is logged"


def test_python_client_without_a_certificate_gets_certificate_required(
    appliance: RunningAppliance,
) -> None:
    data, error, source_port = python_client(appliance.ports["tls_server"])
    assert data == b""
    assert error is not None and "CERTIFICATE_REQUIRED" in str(error).upper()
    record = appliance.record_from("tls_server", source_port)
    assert record["outcome"] == "alert sent"
    assert record["alert"] == "certificate_required"
    assert record["group"] == "no certificate"


@pytest.mark.parametrize("case", sorted(FORGED))
def test_python_client_with_a_forged_certificate_gets_an_alert(
    appliance: RunningAppliance, tmp_path: Path, case: str
) -> None:
    make, alert = FORGED[case]
    forged = make()
    cert, key = write_pem(tmp_path, "forged", forged.pem_chain, forged.private_key)
    data, error, source_port = python_client(appliance.ports["tls_server"], cert, key)
    assert data == b""
    assert error is not None and alert.upper() in str(error).upper()
    record = appliance.record_from("tls_server", source_port)
    assert record["outcome"] == "alert sent"
    assert record["alert"] == alert
    assert record["group"] == "X.509 failure"


def openssl_client(port: int, *extra: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        ["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-tls1_3", "-quiet",
         "-ign_eof", "-CAfile", toy_path("anchor.pem"), *extra],
        stdin=subprocess.DEVNULL, capture_output=True, timeout=30, check=False,
    )


needs_openssl = pytest.mark.skipif(shutil.which("openssl") is None, reason="no openssl")


@needs_openssl
def test_openssl_client_with_the_researcher_certificate_gets_the_secret(
    appliance: RunningAppliance,
) -> None:
    cert, key = RESEARCHER
    done = openssl_client(appliance.ports["tls_server"], "-cert", cert, "-key", key)
    assert SECRET in done.stdout


@needs_openssl
@pytest.mark.parametrize("case", ["none", *sorted(FORGED)])
def test_openssl_client_without_a_valid_certificate_gets_an_alert(
    appliance: RunningAppliance, tmp_path: Path, case: str
) -> None:
    extra: list[str] = []
    alert = "certificate required"
    if case != "none":
        make, name = FORGED[case]
        forged = make()
        extra = ["-cert", "-key"]
        cert, key = write_pem(tmp_path, "forged", forged.pem_chain, forged.private_key)
        extra = ["-cert", cert, "-key", key]
        alert = name.replace("_", " ")
    done = openssl_client(appliance.ports["tls_server"], *extra)
    assert SECRET not in done.stdout
    assert f"alert {alert}" in done.stderr.decode(errors="replace").lower()


def test_every_forged_case_is_counted_in_its_group(appliance: RunningAppliance) -> None:
    stats: dict[str, Any] = appliance.stats()
    outcomes = stats["listeners"]["tls_server"]["outcomes"]
    assert outcomes.get("secret released", 0) >= 1
    assert outcomes.get("no certificate", 0) >= 1
    assert outcomes.get("X.509 failure", 0) >= len(FORGED)
