"""The appliance as a guest: settings from the manifest, then the appliance on its sockets.

Settings are built in the tender, before the fork, from bytes already read:
the appliance's own parsers check the credentials (`pinata.appliance.settings`),
so a key that does not match its certificate is refused before anything runs.
Inside the sandbox the guest owns the event loop and installs no signal
handler: the tender stops it with SIGTERM, whose default action ends it, and
a Python-level handler would make the interpreter write to trio's wakeup
socket, which the filter does not allow.
"""

from __future__ import annotations

import socket
from collections.abc import Mapping

import trio

from pinata.appliance import serve
from pinata.appliance import settings as appliance_settings_module
from pinata.appliance.settings import ApplianceSettings, Budgets, Limits, Ports
from pinata.secret import Secret
from pinata.tls.config import Credentials
from unikernel import manifest as mf
from unikernel.launcher import BootData


def _credentials_from_files(files: Mapping[str, bytes]) -> tuple[bytes, Credentials, Credentials]:
    s = appliance_settings_module
    anchors = s.parse_certificates(files["anchor"], "boot.anchor")
    if len(anchors) != 1:
        raise mf.ManifestError("boot.anchor", "must hold exactly one certificate")
    server = s.credentials_from_pem(
        files["server_chain"], files["server_key"], "boot.server_chain", "boot.server_key"
    )
    client = s.credentials_from_pem(
        files["client_chain"], files["client_key"], "boot.client_chain", "boot.client_key"
    )
    return anchors[0], server, client


def appliance_settings(
    m: mf.Manifest,
    boot: BootData,
    software: tuple[tuple[str, str], ...],
    sockets: Mapping[str, socket.socket],
) -> ApplianceSettings:
    """The appliance's settings; the ports are those actually bound (port 0 resolved)."""
    bound = {role: int(s.getsockname()[1]) for role, s in sockets.items()}
    ports = Ports(
        tls_server=bound["tls_server"],
        connect_back=bound["connect_back"],
        tls_client=bound["tls_client"],
        http=bound["http"],
        https=bound["https"],
        connect_back_target=m.connect_back_port,
    )
    https: Credentials | None = None
    if m.boot.credentials == "ephemeral":
        minted = appliance_settings_module.mint_ephemeral()
        anchor_der, server, client = minted[0], minted[1], minted[2]
        if len(minted) > 3:
            https = minted[3]
    else:
        anchor_der, server, client = _credentials_from_files(boot.files)
    return ApplianceSettings(
        address=m.listeners["tls_server"].address,
        ports=ports,
        limits=Limits(max_connections=m.limits.max_connections),
        # The filter allows no new thread (no clone): validate on the loop (issue 11).
        budgets=Budgets(validation_threads=0),
        anchor_der=anchor_der,
        server_credentials=server,
        client_credentials=client,
        https_credentials=https,
        secret=Secret(boot.secret),
        bitcoin_address=m.boot.bitcoin_address,
        software=software,
        log_path=None,
        selftalk_interval=float(m.selftalk_interval),
    )


def run_appliance(settings: object, sockets: Mapping[str, socket.socket]) -> int:
    if not isinstance(settings, ApplianceSettings):
        raise TypeError("the appliance entry needs ApplianceSettings")
    trio.run(_serve, settings, sockets)
    return 0


async def _serve(settings: ApplianceSettings, sockets: Mapping[str, socket.socket]) -> None:
    await serve(settings, preopened=sockets)
