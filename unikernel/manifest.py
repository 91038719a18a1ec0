"""The manifest: every resource the unikernel gets, named before it starts.

Like a Solo5 manifest, it is the whole of the unikernel's world: its
listeners, the one port it may connect to, its limits, the files it reads at
boot. `parse` refuses an unknown key, a missing field or an impossible value
with a `ManifestError` naming the field, before anything is opened.

    entry = "appliance"                # or "probe"
    [listeners]                        # all five roles, numeric addresses only
    tls_server = { address = "127.0.0.1", port = 10000 }
    ...
    [connect_back]
    port = 40001
    [selftalk]                         # the appliance talking to itself through
    interval = 600                     # its own 10002 and 10000; 0: never
    [tls]                              # optional: the versions spoken (default
    versions = ["1.3", "1.2"]          # both), as in `pinata serve`'s TOML
    [limits]                           # the sandbox's, and any of the appliance's
    memory_mib = 1024                  # (pinata.appliance.settings.Limits)
    open_files = 256
    max_connections = 64
    handshake_timeout = 10
    [boot]
    credentials = "ephemeral"          # or "files", with anchor, server_chain, ...
    secret = "boot/secret"             # always a file: the image holds none
    bitcoin_address = "1Pinata..."
    allow_weaker = ["landlock-net"]    # optional: layers it may run without
"""

from __future__ import annotations

import ipaddress
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from pinata.appliance import settings

# The sandbox's layers (unikernel.sandbox); `allow_weaker` may name any of them.
LAYERS: Final = ("seccomp", "landlock", "landlock-net", "identity")
ROLES: Final = ("tls_server", "connect_back", "tls_client", "http", "https")
ENTRIES: Final = ("appliance", "probe")
# Read at boot when `credentials = "files"`; the names are the appliance config's.
CREDENTIAL_FILES: Final = ("anchor", "server_chain", "server_key", "client_chain", "client_key")
MAX_MANIFEST_BYTES: Final = 64 * 1024
MAX_BOOT_FILE_BYTES: Final = 1024 * 1024
# Python, trio and cryptography together need tens of MiB just to be imported.
MIN_MEMORY_MIB: Final = 128
MAX_MEMORY_MIB: Final = 64 * 1024
# The listeners, the epoll fd, trio's wakeup pair and the console come first.
MIN_OPEN_FILES: Final = 16
MAX_OPEN_FILES: Final = 65536
# [limits] keys that size the sandbox; max_connections sizes both, and is required
# because open_files must hold two fds per connection.
SANDBOX_ONLY: Final = frozenset({"memory_mib", "open_files"})
SANDBOX_LIMITS: Final = SANDBOX_ONLY | {"max_connections"}


class ManifestError(ValueError):
    """A manifest refused; `field` is the dotted path of the offending key."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"manifest: {field}: {reason}")
        self.field = field
        self.reason = reason


@dataclass(frozen=True)
class Listener:
    address: str
    port: int


@dataclass(frozen=True)
class Limits:
    memory_mib: int
    open_files: int
    max_connections: int


@dataclass(frozen=True)
class Boot:
    """`credentials` is "ephemeral" (a CA minted at start) or "files"; paths are absolute."""

    credentials: str
    files: Mapping[str, Path]
    secret: Path
    bitcoin_address: str


@dataclass(frozen=True)
class Manifest:
    entry: str
    listeners: Mapping[str, Listener]
    connect_back_port: int
    # Seconds between self-talk runs, 0: never. Self-talk dials our own 10002 and
    # 10000, so when it is on those two ports join the connect-back port in the
    # sandbox's connect allowlist.
    selftalk_interval: int
    limits: Limits
    boot: Boot
    # Layers the launcher may run without when this kernel or user cannot give them;
    # any other missing layer refuses the launch.
    allow_weaker: frozenset[str] = frozenset()
    # The appliance's tables of numbers as written ([limits] less the sandbox's own
    # keys), for `pinata.appliance.settings.build_settings`.
    appliance: Mapping[str, Mapping[str, object]] = field(default_factory=dict)
    # Sandboxed guests serving the same ports (SO_REUSEPORT), each with its own tender;
    # "auto" in the manifest: the cores available.
    workers: int = 1
    # The TLS versions the appliance speaks, as `pinata serve`'s `[tls]` table names them.
    tls_versions: tuple[int, ...] = settings.DEFAULT_TLS_VERSIONS


@dataclass(frozen=True)
class BootData:
    """Boot files as read by the launcher, bounded; credential files are absent for
    `ephemeral`. Settings are built from these bytes: the unikernel opens no file."""

    files: Mapping[str, bytes]
    secret: bytes


def load(path: Path) -> Manifest:
    """Read and parse a manifest file; relative boot paths resolve against its directory."""
    try:
        with path.open("rb") as f:
            raw = f.read(MAX_MANIFEST_BYTES + 1)
    except OSError as e:
        raise ManifestError("<file>", f"cannot read {path}: {e.strerror}") from None
    if len(raw) > MAX_MANIFEST_BYTES:
        raise ManifestError("<file>", f"larger than {MAX_MANIFEST_BYTES} bytes")
    return parse(raw, base=path.resolve().parent)


def parse(raw: bytes, *, base: Path) -> Manifest:
    """A manifest from its bytes; relative boot paths resolve against `base`.

    Raises ManifestError naming the first field that is unknown, missing or
    impossible (the appliance's own limits checked by the appliance's parser).
    """
    try:
        doc = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ManifestError("<file>", "not UTF-8") from None
    except tomllib.TOMLDecodeError as e:
        raise ManifestError("<file>", f"not TOML: {e}") from None
    top = {"entry", "listeners", "connect_back", "selftalk", "limits", "boot"}
    allow_weaker = _allow_weaker(doc)
    optional = {"allow_weaker", "workers", "tls", *settings.NUMBER_TABLES}
    _keys({k: v for k, v in doc.items() if k not in optional - top}, "", required=top)
    entry = _str(doc, "entry", "")
    if entry not in ENTRIES:
        raise ManifestError("entry", f"{entry!r} is not one of {', '.join(ENTRIES)}")

    table = _table(doc, "listeners", "")
    _keys(table, "listeners", required=set(ROLES))
    listeners = {role: _listener(_table(table, role, "listeners"), role) for role in ROLES}
    ports = [(role, listener.port) for role, listener in listeners.items() if listener.port]
    for i, (role, port) in enumerate(ports):
        for other, other_port in ports[:i]:
            if port == other_port:
                raise ManifestError(f"listeners.{role}.port", f"{port} is also {other}'s")

    back = _table(doc, "connect_back", "")
    _keys(back, "connect_back", required={"port"})
    connect_back_port = _int(back, "port", "connect_back", 1, 65535)

    selftalk = _table(doc, "selftalk", "")
    _keys(selftalk, "selftalk", required={"interval"})
    selftalk_interval = _int(selftalk, "interval", "selftalk", 0, 7 * 24 * 3600)

    limits, appliance = _limits(doc)

    boot = _boot(_table(doc, "boot", ""), base)
    try:
        workers = settings.parse_workers(doc.get("workers", 1))
        tls_versions = settings.tls_versions_from(_table(doc, "tls", "") if "tls" in doc else {})
    except settings.ConfigError as e:
        raise ManifestError(e.field, e.reason) from None
    return Manifest(
        entry, listeners, connect_back_port, selftalk_interval, limits, boot, allow_weaker,
        appliance, workers, tls_versions,
    )


def _limits(doc: Mapping[str, Any]) -> tuple[Limits, dict[str, dict[str, Any]]]:
    """The sandbox's limits, and the appliance's tables of numbers as written."""
    lim = _table(doc, "limits", "")
    absent = sorted(SANDBOX_LIMITS - set(lim))
    if absent:
        raise ManifestError(f"limits.{absent[0]}", "missing")
    memory = _int(lim, "memory_mib", "limits", MIN_MEMORY_MIB, MAX_MEMORY_MIB)
    open_files = _int(lim, "open_files", "limits", MIN_OPEN_FILES, MAX_OPEN_FILES)
    # Each connection may hold two fds (10001 opens one back); the rest is fixed overhead.
    max_conn = _int(lim, "max_connections", "limits", 1, (open_files - MIN_OPEN_FILES) // 2)
    limits = Limits(memory, open_files, max_conn)
    # The rest of [limits], and the appliance's other tables of numbers, are the
    # appliance's: checked here by its own parser, passed to its one settings builder.
    appliance = {"limits": {k: v for k, v in lim.items() if k not in SANDBOX_ONLY}}
    appliance |= {name: dict(_table(doc, name, "")) for name in settings.NUMBER_TABLES
                  if name != "limits" and name in doc}
    for name, table in appliance.items():
        try:
            settings.numbers_from(settings.NUMBER_TABLES[name], table, name)
        except settings.ConfigError as e:
            raise ManifestError(e.field, e.reason) from None
    # The filter allows no new thread (no clone): chains are validated on the
    # event loop, under the same per-network CPU budget.
    budgets = appliance.setdefault("budgets", {})
    if budgets.setdefault("validation_threads", 0) != 0:
        raise ManifestError("budgets.validation_threads", "must be 0: the sandbox starts no thread")
    return limits, appliance


def _boot(boot_table: Mapping[str, Any], base: Path) -> Boot:
    always = {"credentials", "secret", "bitcoin_address"}
    credentials = _str(boot_table, "credentials", "boot")
    if credentials == "ephemeral":
        _keys(boot_table, "boot", required=always)
        files: dict[str, Path] = {}
    elif credentials == "files":
        _keys(boot_table, "boot", required={*always, *CREDENTIAL_FILES})
        files = {name: base / _str(boot_table, name, "boot") for name in CREDENTIAL_FILES}
    else:
        raise ManifestError("boot.credentials", f"{credentials!r} is not ephemeral or files")
    bitcoin_address = _str(boot_table, "bitcoin_address", "boot")
    if not (bitcoin_address.isascii() and bitcoin_address.isalnum()):
        raise ManifestError("boot.bitcoin_address", "must be ASCII letters and digits")
    secret = base / _str(boot_table, "secret", "boot")
    return Boot(credentials, files, secret, bitcoin_address)


def _allow_weaker(doc: Mapping[str, Any]) -> frozenset[str]:
    value = doc.get("allow_weaker", [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ManifestError("allow_weaker", "must be a list of layer names")
    for name in value:
        if name not in LAYERS:
            raise ManifestError("allow_weaker", f"{name!r} is not one of {', '.join(LAYERS)}")
    return frozenset(value)


def _name(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if prefix else key


def _keys(table: Mapping[str, Any], prefix: str, *, required: set[str]) -> None:
    for key in sorted(table):
        if key not in required:
            raise ManifestError(_name(prefix, key), "unknown key")
    for key in sorted(required):
        if key not in table:
            raise ManifestError(_name(prefix, key), "missing")


def _table(table: Mapping[str, Any], key: str, prefix: str) -> Mapping[str, Any]:
    value = table[key]
    if not isinstance(value, dict):
        raise ManifestError(_name(prefix, key), "must be a table")
    return value


def _str(table: Mapping[str, Any], key: str, prefix: str) -> str:
    if key not in table:
        raise ManifestError(_name(prefix, key), "missing")
    value = table[key]
    if not isinstance(value, str) or not value:
        raise ManifestError(_name(prefix, key), "must be a non-empty string")
    return value


def _int(table: Mapping[str, Any], key: str, prefix: str, low: int, high: int) -> int:
    value = table[key]
    # bool is an int in Python; `true` is not a port.
    if not isinstance(value, int) or isinstance(value, bool):
        raise ManifestError(_name(prefix, key), "must be an integer")
    if not low <= value <= high:
        raise ManifestError(_name(prefix, key), f"{value} is outside {low}..{high}")
    return value


def _listener(table: Mapping[str, Any], role: str) -> Listener:
    prefix = f"listeners.{role}"
    _keys(table, prefix, required={"address", "port"})
    address = _str(table, "address", prefix)
    try:
        # Numeric only: after boot there is no name resolution.
        ipaddress.ip_address(address)
    except ValueError:
        raise ManifestError(f"{prefix}.address", f"{address!r} is not a numeric IP") from None
    # Port 0 lets the kernel choose; the launcher prints the ports it got.
    return Listener(address, _int(table, "port", prefix, 0, 65535))
