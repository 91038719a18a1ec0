"""One way from configuration to a running appliance: the manifest goes through the same
settings builder as `pinata toy` and `pinata serve`, and everything it sets arrives."""

from __future__ import annotations

import ast
import subprocess
import sys
from dataclasses import fields
from pathlib import Path

import pytest

from pinata.appliance import settings
from tests.unikernel.harness import REPO, Launched, write_manifest
from unikernel import manifest as mf

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="the sandbox is Linux's")
# The manifest bounds max_connections by open_files (two fds a connection).
MANIFEST_MAX_CONNECTIONS = 100


def non_default(name: str, default: object) -> object:
    if name == "max_connections":
        return MANIFEST_MAX_CONNECTIONS
    if name == "validation_threads":
        return 0  # the only value a manifest takes: the sandbox starts no thread
    if isinstance(default, float):
        return default * 1.5
    assert isinstance(default, int)
    return default + 1


def every_number_changed() -> dict[str, dict[str, object]]:
    return {
        table: {f.name: non_default(f.name, f.default) for f in fields(kind)}  # type: ignore[arg-type]
        for table, kind in settings.NUMBER_TABLES.items()
    }


def toml_tables(tables: dict[str, dict[str, object]]) -> str:
    return "".join(
        f"[{name}]\n" + "".join(f"{key} = {value!r}\n" for key, value in values.items())
        for name, values in tables.items()
    )


# Not the default (both), so arriving at it proves the manifest's [tls] reached the guest.
TLS_VERSIONS = {"versions": ["1.2"]}


def test_every_number_set_in_a_manifest_reaches_the_running_guest(tmp_path: Path) -> None:
    """Every table of numbers, and the TLS versions."""
    wanted = every_number_changed()
    assert wanted["limits"], "the appliance has limits to set"
    manifest = write_manifest(tmp_path, entry="appliance", max_connections=100)
    text = manifest.read_text().replace("max_connections = 100\n", "")
    sandbox_limits, rest = text.split("[limits]\n")[1].split("[boot]")
    body = text.split("[limits]\n")[0] + "[limits]\n" + sandbox_limits
    tables = dict(wanted)
    body += "".join(f"{k} = {v!r}\n" for k, v in tables.pop("limits").items())
    tables["tls"] = TLS_VERSIONS
    manifest.write_text(body + toml_tables(tables) + "[boot]" + rest)
    run = Launched.manifest(manifest)
    try:
        reached = run.wait_event("settings")
    finally:
        exit_event = run.stop()
    assert "filtered" not in exit_event, run.stderr
    for name, values in wanted.items():
        assert reached[name] == values, name
    assert reached["tls"] == TLS_VERSIONS


def test_a_manifest_naming_an_old_tls_version_is_refused() -> None:
    text = write_manifest_text().replace("[boot]", '[tls]\nversions = ["1.3", "1.1"]\n[boot]')
    with pytest.raises(mf.ManifestError) as refused:
        mf.parse(text.encode(), base=Path("/base"))
    assert refused.value.field == "tls.versions"
    assert mf.parse(write_manifest_text().encode(), base=Path("/base")).tls_versions == (
        settings.DEFAULT_TLS_VERSIONS)


def test_a_manifest_asking_for_validation_threads_is_refused() -> None:
    text = write_manifest_text().replace("[boot]", "[budgets]\nvalidation_threads = 2\n[boot]")
    with pytest.raises(mf.ManifestError) as refused:
        mf.parse(text.encode(), base=Path("/base"))
    assert refused.value.field == "budgets.validation_threads"


def test_a_manifest_limit_is_checked_by_the_appliances_own_parser() -> None:
    base = Path("/base")
    text = write_manifest_text().replace("max_connections = 128", "max_connections = 128\n"
                                         "handshake_timeout = -1")
    with pytest.raises(mf.ManifestError) as refused:
        mf.parse(text.encode(), base=base)
    assert refused.value.field == "limits.handshake_timeout"
    text = write_manifest_text().replace("max_connections = 128", "max_connections = 128\n"
                                         "handshake_timout = 3")
    with pytest.raises(mf.ManifestError) as refused:
        mf.parse(text.encode(), base=base)
    assert refused.value.field == "limits.handshake_timout"


def write_manifest_text() -> str:
    from tests.unikernel.harness import manifest_text

    return manifest_text(entry="appliance")


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names |= {f"{node.module}.{alias.name}" for alias in node.names}
    return names


def test_the_guest_does_not_import_the_launcher() -> None:
    guest_imports = imported_modules(REPO / "unikernel" / "guest.py")
    assert [n for n in guest_imports if "launcher" in n] == []
    assert "unikernel.guest" in imported_modules(REPO / "unikernel" / "launcher.py")


def test_only_the_appliances_modules_are_preloaded() -> None:
    script = (
        "import sys\n"
        "from unikernel import launcher\n"
        "launcher.preload('appliance')\n"
        "print(sorted(m for m in sys.modules if m.startswith(('pinata.bench', 'bait_ca.forge',"
        " 'pinata.cli', 'pytest', 'hypothesis', 'importlib.metadata', 'email.policy',"
        " 'cryptography.hazmat.primitives.serialization.pkcs7'))))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True,
                            text=True, timeout=120, check=True)
    assert result.stdout.strip() == "[]"


def test_a_failed_import_stops_the_launch_with_its_name(tmp_path: Path) -> None:
    manifest = write_manifest(tmp_path, entry="appliance")
    script = (
        "import sys\n"
        "from unikernel import __main__ as cli, launcher\n"
        "launcher.APPLIANCE_TREES += ('pinata.no_such_module',)\n"
        "sys.exit(cli.main(['launch', '--manifest', sys.argv[1]]))\n"
    )
    result = subprocess.run([sys.executable, "-c", script, str(manifest)], cwd=REPO,
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 2
    assert "cannot import pinata.no_such_module" in result.stderr
    assert '"listening"' not in result.stdout
