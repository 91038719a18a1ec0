"""What the running appliance holds: engine configs built once from the
settings, counters, the journal, admission tables and self-talk reports."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata

from cryptography import x509 as cx509

from pinata.appliance.journal import Journal
from pinata.appliance.limits import ConnectBackGate, ConnectionCaps
from pinata.appliance.page.history import History
from pinata.appliance.settings import ApplianceSettings
from pinata.appliance.stats import Counters
from pinata.tls.config import ClientConfig, ServerConfig
from pinata.x509 import Purpose, TrustAnchor, authenticator

MAX_SELFTALK_REPORTS = 4


def utc_now() -> datetime:
    return datetime.now(UTC)


def installed_software() -> tuple[tuple[str, str], ...]:
    """The distributions installed beside us, sorted by name."""
    found: dict[str, str] = {}
    for dist in metadata.distributions():
        name = dist.name
        if name:
            found.setdefault(name, dist.version)
    return tuple(sorted(found.items(), key=lambda item: item[0].lower()))


@dataclass
class ApplianceState:
    settings: ApplianceSettings
    server_config: ServerConfig
    https_config: ServerConfig
    client_config: ClientConfig
    counters: Counters
    journal: Journal
    caps: ConnectionCaps
    gate: ConnectBackGate
    software: tuple[tuple[str, str], ...]
    now: Callable[[], datetime] = utc_now
    # Where each listener actually listens (port 0 resolved), by listener name.
    bound: dict[str, tuple[str, int]] = field(default_factory=dict)
    # Trusted-proxy connections still waiting for their PROXY header.
    proxy_headers_pending: int = 0
    selftalk_reports: deque[dict[str, object]] = field(
        default_factory=lambda: deque(maxlen=MAX_SELFTALK_REPORTS)
    )
    # Attempts per minute for the page's chart; the journal feeds it.
    history: History = field(default_factory=History)


def build_state(
    settings: ApplianceSettings,
    write_line: Callable[[str], None],
    clock: float,
    now: Callable[[], datetime] = utc_now,
) -> ApplianceState:
    settings.limits.check()
    anchor = TrustAnchor.from_der(settings.anchor_der)
    anchor_subject = cx509.load_der_x509_certificate(settings.anchor_der).subject.public_bytes()
    server_config = ServerConfig(
        credentials=settings.server_credentials,
        authenticate_client=authenticator(anchor, Purpose.CLIENT_AUTH),
        # §4.2.4: tell clients which anchor we accept, so they pick the right chain.
        certificate_authorities=(anchor_subject,),
    )
    https_config = ServerConfig(
        credentials=settings.https_credentials or settings.server_credentials,
    )
    client_config = ClientConfig(
        authenticate_server=authenticator(anchor, Purpose.SERVER_AUTH),
        credentials=settings.client_credentials,
    )
    limits = settings.limits
    history = History()
    return ApplianceState(
        settings=settings,
        server_config=server_config,
        https_config=https_config,
        client_config=client_config,
        counters=Counters(started=now()),
        journal=Journal(write_line, keep=limits.recent_records, observe=history.observe),
        caps=ConnectionCaps(limits.max_connections, limits.max_connections_per_address),
        gate=ConnectBackGate(limits.connect_back_per_second, limits.connect_back_burst, clock),
        software=settings.software if settings.software is not None else installed_software(),
        now=now,
        history=history,
    )
