"""`pinata try` against `pinata toy` on loopback, on every port: the toy
researcher credentials earn the secret, a forged chain earns the alert that
names its defect, and the appliance's own record of the same connection agrees."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from bait_ca import toy as bait_ca_toy
from pinata.cli import main
from tests.toyproc import ToyProcess, start_toy

PORTS = (10000, 10001, 10002)
LISTENER = {10000: "tls_server", 10001: "connect_back", 10002: "tls_client"}
TOY = bait_ca_toy.load()


@pytest.fixture(scope="module")
def toy() -> Iterator[ToyProcess]:
    running = start_toy()
    yield running
    running.stop()


def run_try(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, Any]]:
    code = main(["try", *args, "--json"])
    out = capsys.readouterr().out
    shown: dict[str, Any] = json.loads(out)
    return code, shown


@pytest.mark.parametrize("port", PORTS)
def test_toy_credentials_receive_the_secret(
    toy: ToyProcess, capsys: pytest.CaptureFixture[str], port: int
) -> None:
    code, shown = run_try(capsys, str(port), "--toy", "--port-offset", str(toy.offset))
    assert code == 0, shown
    assert shown["outcome"] == "secret received"
    assert shown["received"].encode() == TOY.secret_wif
    assert shown["port"] == port + toy.offset
    # Our side's trace shows the handshake completing in our role.
    states = [e["what"] for e in shown["trace"] if e["kind"] == "state"]
    assert states[-1] == ("ClientEstablished" if port == 10000 else "ServerEstablished")
    record = shown["appliance_record"]
    assert record["listener"] == LISTENER[port]
    assert record["outcome"] == "secret released"
    assert record["peer"]["port"] == shown["source_port"]


@pytest.mark.parametrize("port", PORTS)
def test_forged_chain_is_refused_with_its_alert(
    toy: ToyProcess, capsys: pytest.CaptureFixture[str], port: int
) -> None:
    code, shown = run_try(capsys, str(port), "--forge", "expired_leaf",
                          "--port-offset", str(toy.offset))
    assert code == 1
    assert shown["outcome"] == "refused with an alert"
    assert shown["alert"] == "certificate_expired" and shown["alert_sent_by"] == "the piñata"
    assert "received" not in shown
    record = shown["appliance_record"]
    assert record["listener"] == LISTENER[port]
    assert record["outcome"] == "alert sent" and record["alert"] == "certificate_expired"
    assert record["group"] == "X.509 failure"


def test_wrong_purpose_is_named_in_the_record(
    toy: ToyProcess, capsys: pytest.CaptureFixture[str]
) -> None:
    code, shown = run_try(capsys, "10002", "--forge", "wrong_eku_leaf",
                          "--port-offset", str(toy.offset))
    assert code == 1 and shown["alert"] == "bad_certificate"
    assert "eku" in shown["appliance_record"]["detail"]


def test_own_files_with_an_extra_chain_file(
    toy: ToyProcess, capsys: pytest.CaptureFixture[str]
) -> None:
    # The anchor appended as --chain: a bag the validator must still accept.
    code, shown = run_try(
        capsys, "10000", "--cert", str(TOY.path("researcher-client.pem")),
        "--key", str(TOY.path("researcher-client.key")),
        "--chain", str(TOY.path("anchor.pem")), "--port-offset", str(toy.offset))
    assert code == 0 and shown["outcome"] == "secret received"
    assert len(shown["appliance_record"]["peer_chain"]) >= 1


def test_text_report_names_the_secret_and_the_record(
    toy: ToyProcess, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["try", "10000", "--toy", "--port-offset", str(toy.offset)]) == 0
    out = capsys.readouterr().out
    assert "SECRET RECEIVED (52 bytes) over TLS 1.3" in out
    assert TOY.secret_wif.decode() in out
    assert "the appliance's record of this connection" in out
    assert "outcome: secret released" in out


def test_bad_invocations_exit_2(
    tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["try", "10000"]) == 2  # nothing to present
    assert main(["try", "10000", "--toy", "--forge", "expired_leaf"]) == 2
    assert main(["try", "10000", "--cert", str(TOY.path("researcher-client.pem"))]) == 2
    mismatched = ["try", "10000", "--cert", str(TOY.path("researcher-client.pem")),
                  "--key", str(TOY.path("researcher-server.key"))]
    assert main(mismatched) == 2
    assert "does not match" in capsys.readouterr().err
    missing = ["try", "10000", "--cert", str(tmp_path / "none.pem"), "--key", "x"]
    assert main(missing) == 2


def test_nothing_listening_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    from tests.toyproc import free_offset

    assert main(["try", "10000", "--toy", "--port-offset", str(free_offset())]) == 2
    assert "cannot reach" in capsys.readouterr().err


def test_make_toy_instructions_work_as_printed(
    toy: ToyProcess, capsys: pytest.CaptureFixture[str]
) -> None:
    from pinata.appliance import toy_settings
    from pinata.cli import how_to_reach

    text = how_to_reach(toy_settings(port_offset=toy.offset))
    lines = [line.strip() for line in text.splitlines()]
    commands = [line.split("#")[0].split() for line in lines if line.startswith("pinata try")]
    assert [c[2] for c in commands] == ["10000", "10001", "10002", "10000"]
    first_openssl = next(i for i, line in enumerate(lines) if line.startswith("openssl"))
    assert all(i < first_openssl for i, line in enumerate(lines) if line.startswith("pinata try"))
    assert "socat" not in text and "nc -z" not in text and " nc " not in text
    for command in commands:
        code, shown = run_try(capsys, *command[2:])
        expected = 1 if "--forge" in command else 0
        assert code == expected, shown


def run_try_paced(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, Any]]:
    """`run_try`, waiting out the toy's connect-back rate (1 a second per network,
    burst 3) when this module's knocks on 10001 have spent it."""
    for _ in range(5):
        code, shown = run_try(capsys, *args)
        if shown["outcome"] != "no connect-back":
            break
        time.sleep(1.0)
    return code, shown


@pytest.mark.parametrize("version", ["1.3", "1.2"])
@pytest.mark.parametrize("port", PORTS)
def test_the_version_is_chosen_with_tls_version(
    toy: ToyProcess, capsys: pytest.CaptureFixture[str], port: int, version: str
) -> None:
    """The toy speaks both; `--tls-version` makes our side offer (or accept) one,
    and a forged chain is refused with the same alert in either."""
    offset = ("--port-offset", str(toy.offset))
    code, shown = run_try_paced(capsys, str(port), "--toy", "--tls-version", version, *offset)
    assert code == 0, shown
    assert shown["version"] == f"TLS {version}"
    assert shown["appliance_record"].get("version") == f"TLS {version}", shown
    code, shown = run_try_paced(capsys, str(port), "--forge", "expired_leaf", "--tls-version",
                                version, *offset)
    assert code == 1 and shown["alert"] == "certificate_expired", shown
    record = shown["appliance_record"]
    assert record.get("alert") == "certificate_expired", record


def test_an_old_version_cannot_be_chosen(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as refused:
        main(["try", "10000", "--toy", "--tls-version", "1.1"])
    assert refused.value.code == 2
    assert "invalid choice: '1.1'" in capsys.readouterr().err


def test_the_printed_versions_note_works_as_printed(
    toy: ToyProcess, capsys: pytest.CaptureFixture[str]
) -> None:
    from pinata.appliance import toy_settings
    from pinata.cli import how_to_reach

    text = how_to_reach(toy_settings(port_offset=toy.offset))
    assert "(the piñata speaks TLS 1.3 and TLS 1.2: add --tls-version 1.2" in text
    first = next(line.strip() for line in text.splitlines()
                 if line.strip().startswith("pinata try 10000"))
    code, shown = run_try(capsys, *first.split("#")[0].split()[2:], "--tls-version", "1.2")
    assert code == 0 and shown["version"] == "TLS 1.2", shown
