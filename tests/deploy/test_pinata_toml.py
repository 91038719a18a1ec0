"""`deploy/pinata.toml` is the annotated reference of every setting: every field of
every settings table is in it at its default, and `pinata serve` runs it as-is."""

from __future__ import annotations

import json
import re
import signal
import socket
import tomllib
import urllib.request
from dataclasses import fields
from pathlib import Path

from pinata.appliance.settings import (
    EPHEMERAL,
    LISTENER_NAMES,
    NUMBER_TABLES,
    ApplianceSettings,
    Ports,
    load_config,
    tls_version_names,
)
from tests.appliance.harness import toy_path, written
from tests.appliance.test_cli import listening, start, stop

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy" / "pinata.toml"
# ApplianceSettings fields that are not read from the TOML under their own name:
# where they come from instead (derived, or not configuration).
NOT_TOP_LEVEL = {
    "address": "listen.address",
    "ports": "[ports]",
    "limits": "[limits]",
    "budgets": "[budgets]",
    "anchor_der": "credentials.anchor",
    "server_credentials": "credentials.server_chain",
    "client_credentials": "credentials.client_chain",
    "https_credentials": "credentials.web_chain",
    "secret": "secret_file",
    "log_path": "log.path",
    "software": "the image's software list, not configuration",
    "credential_files": "pinata toy's files for visitors, not configuration",
    "tls_versions": "tls.versions",
}


def _document() -> dict[str, object]:
    return tomllib.loads(DEPLOY.read_text())


def test_every_number_table_field_is_there_at_its_default() -> None:
    doc = _document()
    assert NUMBER_TABLES, "no settings tables to check"
    for name, kind in NUMBER_TABLES.items():
        table = doc[name]
        assert isinstance(table, dict)
        expected = {f.name: f.default for f in fields(kind)}  # type: ignore[arg-type]
        assert table == expected, name


def test_every_port_is_there_at_its_default() -> None:
    table = _document()["ports"]
    assert table == {f.name: f.default for f in fields(Ports)}
    assert set(LISTENER_NAMES) < set(table)  # type: ignore[arg-type]


def test_every_top_level_setting_is_there_at_its_default() -> None:
    doc = _document()
    defaults = {f.name: f.default for f in fields(ApplianceSettings)}
    assert doc["selftalk_interval"] == defaults["selftalk_interval"]
    assert doc["trusted_proxies"] == list(defaults["trusted_proxies"])  # type: ignore[call-overload]
    assert doc["workers"] == defaults["workers"]
    assert doc["listen"] == {"address": "127.0.0.1"}
    assert doc["credentials"] == {"anchor": EPHEMERAL, "host_name": "localhost"}
    assert doc["tls"] == {"versions": tls_version_names(defaults["tls_versions"])}  # type: ignore[arg-type]
    text = DEPLOY.read_text()
    for name in NOT_TOP_LEVEL:
        assert name in defaults, f"{name} is no longer a setting"
    for name in defaults:
        assert name in doc or name in NOT_TOP_LEVEL, f"{name} is not in deploy/pinata.toml"
    # Optional fields without a TOML default are named in the comments.
    for name in ("path =", "server_chain", "server_key", "client_chain", "client_key",
                 "web_chain", "web_key"):
        assert name in text


def test_it_loads_as_shipped() -> None:
    settings = load_config(DEPLOY)
    assert settings.workers == 1 and settings.ports == Ports()


def test_pinata_serve_runs_it_as_is(tmp_path: Path) -> None:
    """The shipped file, with only its ports moved to free ones (0)."""
    (tmp_path / "deploy").mkdir()
    (tmp_path / "bait_ca").symlink_to(REPO / "bait_ca")
    text = re.sub(rf"^({'|'.join(LISTENER_NAMES)}) = \d+", r"\1 = 0", DEPLOY.read_text(),
                  flags=re.MULTILINE)
    assert text.count(" = 0 ") + text.count(" = 0\n") >= len(LISTENER_NAMES)
    config = tmp_path / "deploy" / "pinata.toml"
    config.write_text(text)
    process = start(["serve", "--config", str(config)])
    try:
        assert process.stdout is not None
        bound = listening(process.stdout)
        base = f"http://127.0.0.1:{bound['http']}"
        with urllib.request.urlopen(f"{base}/anchor.pem", timeout=10) as response:
            anchor = response.read()
        written(anchor)
        assert anchor.startswith(b"-----BEGIN CERTIFICATE-----")
        assert anchor != Path(toy_path("anchor.pem")).read_bytes()
        with urllib.request.urlopen(f"{base}/stats", timeout=10) as response:
            stats = json.loads(response.read())
        assert stats["secrets_released_to_stranger"] == 0
        # The bounty port answers (its chain check is the appliance's business).
        with socket.create_connection(("127.0.0.1", bound["tls_server"]), timeout=10):
            pass
    finally:
        code, _, err = stop(process, signal.SIGTERM)
    assert code == 0, err
