"""Manifest refusals: an unknown key, a missing field or an impossible value, named."""

from __future__ import annotations

import contextlib
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.unikernel.harness import TOY, manifest_text
from unikernel import manifest as mf

BASE = Path("/base")


def parse(text: str) -> mf.Manifest:
    return mf.parse(text.encode(), base=BASE)


def refused(text: str) -> mf.ManifestError:
    with pytest.raises(mf.ManifestError) as info:
        parse(text)
    return info.value


def test_a_complete_manifest_parses() -> None:
    m = parse(manifest_text(entry="appliance", connect_back_port=40001, selftalk=60))
    assert m.entry == "appliance"
    assert set(m.listeners) == set(mf.ROLES)
    assert all(listener.port == 0 for listener in m.listeners.values())
    assert m.connect_back_port == 40001
    assert m.selftalk_interval == 60
    assert m.limits == mf.Limits(memory_mib=1024, open_files=512, max_connections=128)
    assert m.boot.credentials == "files"
    assert m.boot.files["server_key"] == TOY / "server.key"
    assert m.boot.secret == TOY / "secret.wif"


def test_relative_boot_paths_resolve_against_the_manifest(tmp_path: Path) -> None:
    text = manifest_text().replace(f'"{TOY}/', '"toy/')
    path = tmp_path / "m.toml"
    path.write_text(text)
    m = mf.load(path)
    assert m.boot.files["anchor"] == tmp_path / "toy" / "anchor.pem"


def test_ephemeral_credentials_need_no_credential_files() -> None:
    m = parse(manifest_text(credentials="ephemeral"))
    assert m.boot.credentials == "ephemeral"
    assert m.boot.files == {}


@pytest.mark.parametrize(
    ("before", "after", "field"),
    [
        ('entry = "probe"', 'entry = "probe"\nshell = true', "shell"),
        ("[limits]", "[limits]\nthreads = 4", "limits.threads"),
        ("[connect_back]", "[connect_back]\naddress = '10.0.0.1'", "connect_back.address"),
        ("[selftalk]", "[selftalk]\nport = 1", "selftalk.port"),
        ("[boot]", "[boot]\nextra = 'x'", "boot.extra"),
        ("[listeners]", "[listeners]\nssh = { address = '127.0.0.1', port = 22 }",
         "listeners.ssh"),
        ('tls_server = { address = "127.0.0.1", port = 0 }',
         'tls_server = { address = "127.0.0.1", port = 0, backlog = 5 }',
         "listeners.tls_server.backlog"),
        ("[limits]", "[network]\nopen = true\n[limits]", "network"),
    ],
)
def test_an_unknown_key_is_refused_by_name(before: str, after: str, field: str) -> None:
    text = manifest_text()
    assert before in text
    error = refused(text.replace(before, after, 1))
    assert error.field == field
    assert "unknown" in error.reason
    assert field in str(error)


@pytest.mark.parametrize(
    ("line", "field"),
    [
        ('entry = "probe"', "entry"),
        ("port = 40001", "connect_back.port"),
        ("interval = 0", "selftalk.interval"),
        ("memory_mib = 1024", "limits.memory_mib"),
        ("open_files = 512", "limits.open_files"),
        ("max_connections = 128", "limits.max_connections"),
        ('https = { address = "127.0.0.1", port = 0 }', "listeners.https"),
        ('credentials = "files"', "boot.credentials"),
        ("bitcoin_address = ", "boot.bitcoin_address"),
        ("secret = ", "boot.secret"),
        ("server_key = ", "boot.server_key"),
    ],
)
def test_a_missing_field_is_refused_by_name(line: str, field: str) -> None:
    text = manifest_text(connect_back_port=40001)
    kept = [row for row in text.splitlines() if not row.startswith(line)]
    assert len(kept) == len(text.splitlines()) - 1
    error = refused("\n".join(kept))
    assert error.field == field
    assert error.reason == "missing"


@pytest.mark.parametrize(
    ("before", "after", "field"),
    [
        ('entry = "probe"', 'entry = "shell"', "entry"),
        ("port = 40001", "port = 0", "connect_back.port"),
        ("port = 40001", "port = 65536", "connect_back.port"),
        ("port = 40001", 'port = "40001"', "connect_back.port"),
        ("port = 40001", "port = true", "connect_back.port"),
        ("memory_mib = 1024", "memory_mib = 1", "limits.memory_mib"),
        ("memory_mib = 1024", "memory_mib = -5", "limits.memory_mib"),
        ("open_files = 512", "open_files = 3", "limits.open_files"),
        ("max_connections = 128", "max_connections = 0", "limits.max_connections"),
        # More connections than the fd limit can hold.
        ("max_connections = 128", "max_connections = 100000", "limits.max_connections"),
        ("interval = 0", "interval = -1", "selftalk.interval"),
        ('credentials = "files"', 'credentials = "maybe"', "boot.credentials"),
        ('bitcoin_address = "', 'bitcoin_address = "<script>', "boot.bitcoin_address"),
        ('tls_server = { address = "127.0.0.1", port = 0 }',
         'tls_server = { address = "localhost", port = 0 }', "listeners.tls_server.address"),
        ('tls_server = { address = "127.0.0.1", port = 0 }',
         'tls_server = { address = "127.0.0.1", port = 99999 }', "listeners.tls_server.port"),
        ('http = { address = "127.0.0.1", port = 0 }', 'http = "127.0.0.1:80"',
         "listeners.http"),
    ],
)
def test_an_impossible_value_is_refused_by_name(before: str, after: str, field: str) -> None:
    text = manifest_text(connect_back_port=40001)
    assert before in text
    error = refused(text.replace(before, after, 1))
    assert error.field == field
    assert field in str(error)


def test_two_listeners_on_one_port_are_refused() -> None:
    text = manifest_text()
    text = re.sub(r'(tls_server|http) = \{ address = "127.0.0.1", port = 0 \}',
                  r'\1 = { address = "127.0.0.1", port = 8080 }', text)
    error = refused(text)
    assert error.field == "listeners.http.port"
    assert "tls_server" in error.reason


def test_non_toml_and_non_utf8_are_refused() -> None:
    assert refused("entry = ").field == "<file>"
    with pytest.raises(mf.ManifestError) as info:
        mf.parse(b"\xff\xfe", base=BASE)
    assert info.value.field == "<file>"


def test_an_oversized_or_missing_file_is_refused(tmp_path: Path) -> None:
    big = tmp_path / "big.toml"
    big.write_bytes(b"#" * (mf.MAX_MANIFEST_BYTES + 1))
    with pytest.raises(mf.ManifestError, match="larger"):
        mf.load(big)
    with pytest.raises(mf.ManifestError, match="cannot read"):
        mf.load(tmp_path / "absent.toml")


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=512))
def test_any_bytes_parse_or_are_refused(raw: bytes) -> None:
    with contextlib.suppress(mf.ManifestError):
        mf.parse(raw, base=BASE)


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(manifest_text(connect_back_port=40001).splitlines()), st.text(max_size=40))
def test_any_line_replaced_parses_or_is_refused(line: str, replacement: str) -> None:
    text = manifest_text(connect_back_port=40001).replace(line, replacement, 1)
    try:
        parse(text)
    except mf.ManifestError as e:
        assert e.field


def test_allow_weaker_names_known_layers_only() -> None:
    text = manifest_text()
    assert parse(text).allow_weaker == frozenset()
    m = parse('allow_weaker = ["landlock-net", "identity"]\n' + text)
    assert m.allow_weaker == {"landlock-net", "identity"}
    for bad in ('["landlock-nett"]', '"landlock-net"', "[1]", '["seccomp", true]'):
        error = refused(f"allow_weaker = {bad}\n" + text)
        assert error.field == "allow_weaker", bad
