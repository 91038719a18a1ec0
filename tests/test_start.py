"""What `pinata toy` imports and builds before its first answer (issue 18): only what
serving needs, since whatever is imported stays in memory as long as it serves."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bait_ca import toy
from pinata.appliance import settings as appliance_settings
from pinata.appliance.software import installed_software

REPO = Path(__file__).resolve().parents[1]
# Modules of other commands, and of start-up work the toy does not do.
NOT_FOR_THE_TOY = ("pinata.trial", "pinata.bench", "pinata.appliance.workers", "urllib.request",
                   "http.client", "bait_ca.ca", "bait_ca.forge", "importlib.metadata")


def modules_after(script: str) -> set[str]:
    """The modules a fresh interpreter holds after running `script`."""
    result = subprocess.run(
        [sys.executable, "-c", f"{script}\nimport sys\nprint('\\n'.join(sys.modules))"],
        cwd=REPO, capture_output=True, text=True, timeout=120, check=True)
    return set(result.stdout.split())


def test_the_command_line_imports_the_appliance_and_no_other_command() -> None:
    loaded = modules_after("import pinata.cli")
    assert "pinata.appliance.server" in loaded
    assert sorted(m for m in loaded if m.startswith(NOT_FOR_THE_TOY)) == []


def test_other_commands_import_what_they_run() -> None:
    loaded = modules_after("from pinata.cli import main\n"
                           "try:\n    main(['try', '--help'])\nexcept SystemExit:\n    pass")
    assert "pinata.trial.command" in loaded


def test_the_toy_settings_read_no_key_beyond_the_appliance_s(
        monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object) -> object:
        raise AssertionError("the whole toy CA was loaded")

    monkeypatch.setattr(toy, "load", refuse)
    built = appliance_settings.toy_settings(port_offset=7)
    assert built.ports.tls_server == 10007
    assert built.bitcoin_address == toy.addresses()["p2pkh"]
    assert built.bitcoin_address.startswith(("m", "n"))  # a testnet P2PKH address


def test_the_toy_addresses_are_those_load_reads() -> None:
    loaded = toy.load()
    found = toy.addresses()
    assert (found["p2pkh"], found["p2wpkh"]) == (loaded.p2pkh_address, loaded.p2wpkh_address)


def test_the_software_list_is_importlib_metadata_s_read_once() -> None:
    from importlib import metadata

    slow: dict[str, str] = {}
    for dist in metadata.distributions():
        if dist.name:
            slow.setdefault(dist.name, dist.version)
    listed = installed_software()
    assert dict(listed) == slow
    assert [name.lower() for name, _ in listed] == sorted(name.lower() for name in slow)
    assert {"trio", "cryptography", "h11"} <= {name.lower() for name, _ in listed}
