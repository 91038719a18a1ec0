"""What the running appliance holds: engine configs built once from the
settings, counters, the journal, admission tables and self-talk reports."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import trio
from cryptography import x509 as cx509

from pinata.appliance.guard import GuardedStream, GuardRules, Validation
from pinata.appliance.journal import ConnectionRecord, Journal, RefusalTally
from pinata.appliance.limits import ByteBudget, ConnectBackGate, ConnectionCaps, WorkBudget
from pinata.appliance.page.history import History
from pinata.appliance.settings import LISTENER_NAMES, ApplianceSettings
from pinata.appliance.shared_counters import WorkerView
from pinata.appliance.software import installed_software
from pinata.appliance.stats import Counters
from pinata.tls.config import ClientConfig, ServerConfig
from pinata.x509 import Purpose, TrustAnchor, authenticator

MAX_SELFTALK_REPORTS = 4


@dataclass(slots=True, eq=False)
class Slot:
    """A live connection as admission sees it: how to end it (its guarded
    stream's `deadlines`), and whether its peer has authenticated or been
    served (only the others may be evicted). Equal only to itself, and hashed
    so: it is its own key in `ApplianceState.live`. It is also all that the
    connection's task keeps of its connection: the task's outermost frame,
    held twice while the peer stalls, holds the slot and no more (issue 18)."""

    stream: GuardedStream
    record: ConnectionRecord
    started: float  # trio's clock, when it was admitted
    evicted: bool = False

    @property
    def evictable(self) -> bool:
        return (not self.evicted and not self.record.handshake_completed
                and not self.record.http_requests)


def utc_now() -> datetime:
    return datetime.now(UTC)


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
    # Budgets before authentication (issue 11): bytes held, validation work.
    preauth: ByteBudget
    validation: Validation
    # The per-connection rules of `GuardedStream`, shared by every connection.
    guard_rules: GuardRules
    refusals: RefusalTally
    # The leaf certificates the piñata itself presents: a release to one of
    # them is the piñata talking to itself, not a break.
    own_leaves: frozenset[bytes]
    now: Callable[[], datetime] = utc_now
    # A knock queued behind the connect-back in flight to its address waits here.
    handovers: dict[str, trio.Event] = field(default_factory=dict)
    # Live connections by network, oldest first (for eviction under a full cap),
    # as dict keys (values unused): the slot itself, not its id(), an int of
    # 32 bytes per connection.
    live: dict[str, dict[Slot, None]] = field(default_factory=dict)
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
    log_lines_dropped: Callable[[], int] | None = None,
    fleet: WorkerView | None = None,
) -> ApplianceState:
    settings.limits.check()
    settings.budgets.check()
    anchor = TrustAnchor.from_der(settings.anchor_der)
    anchor_subject = cx509.load_der_x509_certificate(settings.anchor_der).subject.public_bytes()
    server_config = ServerConfig(
        credentials=settings.server_credentials,
        authenticate_client=authenticator(anchor, Purpose.CLIENT_AUTH),
        # §4.2.4: tell clients which anchor we accept, so they pick the right chain.
        certificate_authorities=(anchor_subject,),
        versions=settings.tls_versions,
    )
    https_config = ServerConfig(
        credentials=settings.https_credentials or settings.server_credentials,
        versions=settings.tls_versions,
    )
    client_config = ClientConfig(
        authenticate_server=authenticator(anchor, Purpose.SERVER_AUTH),
        credentials=settings.client_credentials,
        versions=settings.tls_versions,
    )
    limits, budgets = settings.limits, settings.budgets
    prefixes = {"prefix_v4": budgets.network_prefix_v4, "prefix_v6": budgets.network_prefix_v6}
    own = [settings.server_credentials, settings.client_credentials, settings.https_credentials]
    history = History()
    validation = Validation(
        WorkBudget(budgets.validation_cpu_per_second, budgets.validation_cpu_burst,
                   max_networks=budgets.max_tracked_networks, **prefixes),
        budgets.validation_threads)
    return ApplianceState(
        settings=settings,
        server_config=server_config,
        https_config=https_config,
        client_config=client_config,
        counters=(Counters(started=now(), fleet=fleet) if log_lines_dropped is None
                  else Counters(started=now(), log_lines_dropped=log_lines_dropped, fleet=fleet)),
        journal=Journal(write_line, keep=limits.recent_records, observe=history.observe,
                        fleet=fleet),
        caps=ConnectionCaps(limits.max_connections, limits.max_connections_per_address,
                            per_network=budgets.max_connections_per_network,
                            listeners=LISTENER_NAMES, reserved=budgets.reserved_per_listener,
                            **prefixes),
        gate=ConnectBackGate(limits.connect_back_per_second, limits.connect_back_burst, clock,
                             network_per_second=budgets.connect_back_per_network_per_second,
                             network_burst=budgets.connect_back_per_network_burst,
                             max_networks=budgets.max_tracked_networks, **prefixes),
        software=settings.software if settings.software is not None else installed_software(),
        preauth=ByteBudget(budgets.preauth_bytes_total),
        validation=validation,
        guard_rules=GuardRules(budgets.first_byte_timeout, budgets.step_timeout,
                               budgets.preauth_bytes_per_connection, validation),
        refusals=RefusalTally(budgets.refusal_summary_top, budgets.max_tracked_networks),
        own_leaves=frozenset(c.chain[0] for c in own if c is not None),
        now=now,
        history=history,
    )
