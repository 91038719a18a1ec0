"""The appliance as a guest: settings from the manifest, then the appliance on its sockets.

Settings are built in the tender, before the fork, from bytes already read,
by the appliance's one builder (`pinata.appliance.settings.build_settings`)
from the manifest turned into a document of `pinata serve`'s shape: every
limit the manifest sets reaches the appliance, and a key that does not match
its certificate is refused before anything runs.
Inside the sandbox the guest owns the event loop and installs no signal
handler: the tender stops it with SIGTERM, whose default action ends it, and
a Python-level handler would make the interpreter write to trio's wakeup
socket, which the filter does not allow.
"""

from __future__ import annotations

import signal
import socket
from collections.abc import Mapping
from dataclasses import asdict, dataclass

import trio

from pinata.appliance import serve
from pinata.appliance import settings as appliance_settings
from pinata.appliance.settings import ApplianceSettings, ConfigError
from pinata.appliance.shared_counters import WorkerView
from unikernel import manifest as mf


@dataclass(frozen=True)
class BootFiles:
    """The document's files, as the launcher read them at boot (a `FileSource`)."""

    boot: mf.BootData

    def read(self, field_name: str, name: str) -> bytes:
        if field_name == "secret_file":
            return self.boot.secret
        data = self.boot.files.get(field_name.removeprefix("credentials."))
        if data is None:
            raise ConfigError(field_name, "not among the boot files the launcher read")
        return data

    def path(self, field_name: str, name: str) -> str:
        raise ConfigError(field_name, "the unikernel writes no file: its log is the console")


def settings_document(m: mf.Manifest, bound: Mapping[str, int]) -> dict[str, object]:
    """The manifest as a document of `pinata serve`'s shape; ports as actually bound."""
    credentials: dict[str, object] = {"anchor": appliance_settings.EPHEMERAL}
    if m.boot.credentials != "ephemeral":
        credentials = {name: str(path) for name, path in m.boot.files.items()}
    return {
        "bitcoin_address": m.boot.bitcoin_address,
        "secret_file": str(m.boot.secret),
        "listen": {"address": m.listeners["tls_server"].address},
        "ports": {**bound, "connect_back_target": m.connect_back_port},
        "credentials": credentials,
        "selftalk_interval": m.selftalk_interval,
        "tls": {"versions": appliance_settings.tls_version_names(m.tls_versions)},
        **{name: dict(table) for name, table in m.appliance.items()},
    }


def appliance_settings_for(
    m: mf.Manifest,
    boot: mf.BootData,
    software: tuple[tuple[str, str], ...],
    sockets: Mapping[str, socket.socket],
) -> ApplianceSettings:
    """The appliance's settings, by the one builder; the ports are those actually bound
    (port 0 resolved). Raises ManifestError naming the manifest's field, for what
    `pinata serve` would refuse."""
    bound = {role: int(s.getsockname()[1]) for role, s in sockets.items()}
    try:
        return appliance_settings.build_settings(
            settings_document(m, bound), BootFiles(boot), software=software
        )
    except ConfigError as e:
        raise mf.ManifestError(_manifest_field(e.field), e.reason) from None


def _manifest_field(document_field: str) -> str:
    """The manifest's name for a field of the document built from it."""
    renamed = {"secret_file": "boot.secret", "bitcoin_address": "boot.bitcoin_address"}
    if document_field.startswith("credentials."):
        return "boot." + document_field.removeprefix("credentials.")
    return renamed.get(document_field, document_field)


def numbers_reached(settings: ApplianceSettings) -> dict[str, object]:
    """Every table of numbers in the settings the guest runs with, and the TLS versions
    it speaks, for its startup line."""
    reached: dict[str, object] = {name: asdict(getattr(settings, name))
                                  for name in appliance_settings.NUMBER_TABLES}
    reached["tls"] = {"versions": appliance_settings.tls_version_names(settings.tls_versions)}
    return reached


class _UnregisteredWakeupFd:
    """`signal.set_wakeup_fd` that remembers the fd and registers nothing.

    trio.run registers its wakeup socket, and CPython fstat(2)s the fd first;
    the filter refuses fstat (newfstatat with an absolute path ignores the
    directory fd and reveals any file's metadata). The guest has no Python
    signal handler (SIGINT ignored, SIGTERM's default action ends it), so a
    registered wakeup fd would never be written anyway.
    """

    def __init__(self) -> None:
        self.fd = -1

    def __call__(self, fd: int, /, *, warn_on_full_buffer: bool = True) -> int:
        previous, self.fd = self.fd, fd
        return previous


def run_appliance(settings: ApplianceSettings, sockets: Mapping[str, socket.socket],
                  fleet: WorkerView | None = None) -> int:
    """Serve on the preopened sockets until stopped; takes the settings built before the
    fork, and with workers this guest's view of the shared segment (mapped before the
    fork: reaching it takes no system call)."""
    signal.set_wakeup_fd = _UnregisteredWakeupFd()
    trio.run(_serve, settings, sockets, fleet)
    return 0


async def _serve(settings: ApplianceSettings, sockets: Mapping[str, socket.socket],
                 fleet: WorkerView | None) -> None:
    await serve(settings, preopened=sockets, fleet=fleet)
