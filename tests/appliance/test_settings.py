"""Settings: the toy default, and config files refused with the field named."""

from __future__ import annotations

from dataclasses import asdict, fields
from pathlib import Path

import pytest

from bait_ca import forge
from bait_ca.keys import private_key_pem
from pinata.appliance.settings import (
    DEFAULT_TLS_VERSIONS,
    NUMBER_TABLES,
    Budgets,
    ConfigError,
    Limits,
    Ports,
    credentials_from_pem,
    load_config,
    numbers_from,
    toy_settings,
)
from pinata.tls.constants import TLS12, TLS13
from tests.appliance.harness import SECRET, TOY


def test_toy_settings_use_the_toy_files_and_move_ports_by_offset() -> None:
    settings = toy_settings(address="127.0.0.9", port_offset=7)
    assert settings.address == "127.0.0.9"
    assert settings.ports == Ports(10007, 10008, 10009, 8087, 8450, 40008)
    assert settings.anchor_der == TOY.anchor.der
    assert settings.secret.reveal_for_verified_peer() == SECRET
    assert SECRET.decode() not in repr(settings)
    assert all(Path(path).is_file() for _, path in settings.credential_files)


def write_config(tmp: Path, body: str) -> Path:
    for stem in ("anchor", "server", "client"):
        (tmp / f"{stem}.pem").write_bytes(TOY.path(f"{stem}.pem").read_bytes())
    for stem in ("server", "client"):
        (tmp / f"{stem}.key").write_bytes(TOY.path(f"{stem}.key").read_bytes())
    (tmp / "secret").write_bytes(b"the secret")
    path = tmp / "pinata.toml"
    path.write_text(body)
    return path


GOOD = """
bitcoin_address = "1BitcoinEaterAddressDontSendf59kuE"
secret_file = "secret"
selftalk_interval = 0
[listen]
address = "127.0.0.1"
[ports]
tls_server = 20000
[limits]
handshake_timeout = 3
max_connections = 7
[credentials]
anchor = "anchor.pem"
server_chain = "server.pem"
server_key = "server.key"
client_chain = "client.pem"
client_key = "client.key"
"""


def test_a_complete_config_loads(tmp_path: Path) -> None:
    settings = load_config(write_config(tmp_path, GOOD))
    assert settings.ports.tls_server == 20000 and settings.ports.tls_client == 10002
    assert settings.limits == Limits(handshake_timeout=3.0, max_connections=7)
    assert settings.secret.reveal_for_verified_peer() == b"the secret"
    assert settings.anchor_der == TOY.anchor.der
    assert settings.selftalk_interval == 0.0


@pytest.mark.parametrize(
    ("edit", "field"),
    [
        (lambda s: s.replace('secret_file = "secret"\n', ""), "secret_file"),
        (lambda s: s.replace('bitcoin_address = "1BitcoinEaterAddressDontSendf59kuE"\n', ""),
         "bitcoin_address"),
        (lambda s: s.replace('server_key = "server.key"', 'server_key = "nope.key"'),
         "credentials.server_key"),
        (lambda s: s.replace('client_key = "client.key"', 'client_key = "server.key"'),
         "credentials.client_key"),
        (lambda s: s.replace('anchor = "anchor.pem"', 'anchor = "secret"'), "credentials.anchor"),
        (lambda s: s.replace("max_connections = 7", "max_connections = 0"),
         "limits.max_connections"),
        (lambda s: s.replace("max_connections = 7", "max_conections = 7"),
         "limits.max_conections"),
        (lambda s: s.replace("tls_server = 20000", "tls_server = 70000"), "ports.tls_server"),
        (lambda s: s.replace("[credentials]", "[credentialz]"), "credentials"),
        (lambda s: s + "\n[[[", "config"),
    ],
    ids=["no-secret", "no-address", "unreadable-key", "key-mismatch", "anchor-not-pem",
         "zero-limit", "unknown-limit", "bad-port", "no-credentials", "not-toml"],
)
def test_bad_configs_are_refused_naming_the_field(
    tmp_path: Path, edit: object, field: str
) -> None:
    assert callable(edit)
    path = write_config(tmp_path, edit(GOOD))
    with pytest.raises(ConfigError) as refused:
        load_config(path)
    assert refused.value.field == field
    assert str(refused.value).startswith(field)


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as refused:
        load_config(tmp_path / "absent.toml")
    assert refused.value.field == "config"


def test_ephemeral_anchor_is_minted_at_load(tmp_path: Path) -> None:
    body = GOOD.split("[credentials]")[0] + '[credentials]\nanchor = "ephemeral"\n'
    first = load_config(write_config(tmp_path, body))
    second = load_config(tmp_path / "pinata.toml")
    assert first.anchor_der != second.anchor_der
    assert first.server_credentials.chain[0] != TOY.server.der
    assert first.https_credentials is not None


def test_key_must_match_the_leaf() -> None:
    good = forge.good_chain(TOY.anchor, "client")
    other = forge.good_chain(TOY.anchor, "client")
    credentials = credentials_from_pem(good.pem_chain, private_key_pem(good.private_key), "c", "k")
    assert credentials.chain == good.chain
    with pytest.raises(ConfigError) as refused:
        credentials_from_pem(good.pem_chain, private_key_pem(other.private_key), "c", "k")
    assert refused.value.field == "k"


def test_the_toy_is_built_from_its_files_by_the_one_builder() -> None:
    settings = toy_settings()
    assert settings.server_credentials.chain == (TOY.server.der,)
    assert settings.client_credentials.chain == (TOY.client.der,)
    assert settings.https_credentials is not None
    assert settings.https_credentials.chain == (TOY.web.der,)
    assert settings.bitcoin_address == TOY.p2pkh_address
    assert settings.limits == Limits()
    assert settings.selftalk_interval == 600.0


def test_every_number_of_every_table_is_read_from_the_config(tmp_path: Path) -> None:
    """A field added to a table of numbers is configurable with no other code."""
    wanted: dict[str, dict[str, float | int]] = {}
    for table, kind in NUMBER_TABLES.items():
        wanted[table] = {}
        for f in fields(kind):  # type: ignore[arg-type]
            default = f.default
            assert isinstance(default, int | float)
            wanted[table][f.name] = default * 1.5 if isinstance(default, float) else default + 3
    body = GOOD.replace("[limits]\nhandshake_timeout = 3\nmax_connections = 7\n", "")
    for table, values in wanted.items():
        body += f"[{table}]\n" + "".join(f"{k} = {v!r}\n" for k, v in values.items())
    settings = load_config(write_config(tmp_path, body))
    for table, values in wanted.items():
        assert asdict(getattr(settings, table)) == values


def test_a_number_of_the_wrong_type_is_refused_by_name() -> None:
    with pytest.raises(ConfigError) as refused:
        numbers_from(Limits, {"max_connections": 2.5}, "limits")
    assert refused.value.field == "limits.max_connections"
    with pytest.raises(ConfigError) as refused:
        numbers_from(Limits, {"handshake_timeout": True}, "limits")
    assert refused.value.field == "limits.handshake_timeout"
    assert numbers_from(Limits, {"handshake_timeout": 3}, "limits").handshake_timeout == 3.0


def test_the_web_page_may_have_its_own_certificate(tmp_path: Path) -> None:
    (tmp_path / "web.pem").write_bytes(TOY.path("web.pem").read_bytes())
    (tmp_path / "web.key").write_bytes(TOY.path("web.key").read_bytes())
    body = GOOD + 'web_chain = "web.pem"\nweb_key = "web.key"\n'
    settings = load_config(write_config(tmp_path, body))
    assert settings.https_credentials is not None
    assert settings.https_credentials.chain == (TOY.web.der,)
    with pytest.raises(ConfigError) as refused:
        load_config(write_config(tmp_path, GOOD + 'web_chain = "web.pem"\n'))
    assert refused.value.field == "credentials.web_key"
def test_budgets_come_from_the_config(tmp_path: Path) -> None:
    body = GOOD.replace("[credentials]", "[budgets]\nfirst_byte_timeout = 1\n"
                        "max_connections_per_network = 9\nlog_keep_files = 2\n[credentials]")
    settings = load_config(write_config(tmp_path, body))
    assert settings.budgets == Budgets(first_byte_timeout=1.0, max_connections_per_network=9,
                                       log_keep_files=2)
    plain = tmp_path / "plain"
    plain.mkdir()
    assert load_config(write_config(plain, GOOD)).budgets == Budgets()
    bad = body.replace("log_keep_files = 2", "log_keep_file = 2")
    with pytest.raises(ConfigError) as refused:
        load_config(write_config(tmp_path, bad))
    assert refused.value.field == "budgets.log_keep_file"


def _with_tls(tmp: Path, table: str) -> Path:
    return write_config(tmp, GOOD.replace("[credentials]", f"[tls]\n{table}\n[credentials]"))


def test_tls_versions_default_to_both() -> None:
    assert DEFAULT_TLS_VERSIONS == (TLS13, TLS12)
    assert toy_settings().tls_versions == (TLS13, TLS12)


@pytest.mark.parametrize(("written", "versions"), [
    ('versions = ["1.2"]', (TLS12,)),
    ('versions = ["1.3"]', (TLS13,)),
    ('versions = ["1.2", "1.3"]', (TLS13, TLS12)),
    ("", (TLS13, TLS12)),
])
def test_tls_versions_come_from_the_config(
    tmp_path: Path, written: str, versions: tuple[int, ...]
) -> None:
    assert load_config(_with_tls(tmp_path, written)).tls_versions == versions


@pytest.mark.parametrize(("written", "field", "reason"), [
    ('versions = ["1.3", "1.1"]', "tls.versions", "'1.1' is not a version we speak"),
    ('versions = ["1.0"]', "tls.versions", "'1.0' is not a version we speak"),
    ('versions = ["SSLv3"]', "tls.versions", "'SSLv3' is not a version we speak"),
    ("versions = [1.2]", "tls.versions", "1.2 is not a version we speak"),
    ("versions = []", "tls.versions", "must be a non-empty list"),
    ('versions = "1.3"', "tls.versions", "must be a non-empty list"),
    ('versions = ["1.2", "1.2"]', "tls.versions", "'1.2' is named twice"),
    ('version = ["1.2"]', "tls.version", "unknown setting"),
])
def test_other_tls_versions_are_refused_by_name(
    tmp_path: Path, written: str, field: str, reason: str
) -> None:
    with pytest.raises(ConfigError) as refused:
        load_config(_with_tls(tmp_path, written))
    assert refused.value.field == field
    assert refused.value.reason.startswith(reason)
