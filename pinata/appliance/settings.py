"""Everything the appliance is told before it starts, checked before it starts.

`ApplianceSettings` is a frozen value built by one function,
`build_settings`, from a document of `pinata serve`'s TOML shape: `pinata
serve --config` reads it from the file, `pinata toy` has it embedded, and the
unikernel's launcher makes it from its manifest. `pinata.appliance.run` takes
the result. Loading reads every file once, here; after start the appliance opens no
file. A config that misses a field, names an unreadable file, or pairs a key
with a certificate it does not match is refused with a `ConfigError` that
names the field.
"""

from __future__ import annotations

import ipaddress
import os
import tomllib
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol, TypeVar

from cryptography import x509 as cx509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes

from bait_ca import toy as bait_ca_toy
from bait_ca.issued import Issued
from pinata.secret import Secret
from pinata.tls.config import Credentials, InvalidCredentials
from pinata.tls.constants import TLS12, TLS13

# What the original piñata listened on, and where it connected back to.
TLS_SERVER_PORT = 10000
CONNECT_BACK_PORT = 10001
TLS_CLIENT_PORT = 10002
CONNECT_BACK_TARGET_PORT = 40001
HTTP_PORT = 8080
HTTPS_PORT = 8443

LISTENER_NAMES = ("tls_server", "connect_back", "tls_client", "http", "https")

# The protocol versions a config may name (`[tls] versions`), by the names
# people use. Nothing below TLS 1.2 is speakable: RFC 8996 deprecates 1.0 and
# 1.1, and the original's SSLv3 hellos are a statistic, not a feature.
TLS_VERSIONS: dict[str, int] = {"1.3": TLS13, "1.2": TLS12}
DEFAULT_TLS_VERSIONS: tuple[int, ...] = (TLS13, TLS12)


class ConfigError(Exception):
    """The configuration cannot start an appliance; `field` says which entry."""

    def __init__(self, field_name: str, reason: str) -> None:
        super().__init__(f"{field_name}: {reason}")
        self.field = field_name
        self.reason = reason


@dataclass(frozen=True)
class Ports:
    tls_server: int = TLS_SERVER_PORT
    connect_back: int = CONNECT_BACK_PORT
    tls_client: int = TLS_CLIENT_PORT
    http: int = HTTP_PORT
    https: int = HTTPS_PORT
    # Port 10001 connects back only to this port of the initiating address.
    connect_back_target: int = CONNECT_BACK_TARGET_PORT

    def shifted(self, offset: int) -> Ports:
        """Every port moved by `offset` (for running several appliances side by side)."""
        return Ports(
            tls_server=self.tls_server + offset,
            connect_back=self.connect_back + offset,
            tls_client=self.tls_client + offset,
            http=self.http + offset,
            https=self.https + offset,
            connect_back_target=self.connect_back_target + offset,
        )

    def listener_port(self, name: str) -> int:
        port: int = getattr(self, name)
        return port


@dataclass(frozen=True)
class Limits:
    """Bounds against hostile load; every one is configurable (`NUMBER_TABLES`)."""

    handshake_timeout: float = 10.0
    connection_timeout: float = 30.0
    connect_timeout: float = 5.0
    max_connections: int = 1024
    max_connections_per_address: int = 32
    # Connect-back is a way to make us open connections to third parties:
    # a token bucket bounds how often, globally.
    connect_back_per_second: float = 5.0
    connect_back_burst: int = 10
    max_http_request_bytes: int = 8192
    max_http_requests_per_connection: int = 32
    max_trace_entries: int = 64
    # Kept in memory for the web page (latest self-talk) and /connection.
    recent_records: int = 256
    # After close_notify we read (and drop) what the peer still sends, so a
    # close does not turn into a reset that eats our last records.
    linger_timeout: float = 1.0
    linger_bytes: int = 65536

    def check(self) -> None:
        _check_positive("limits", self)


def _check_positive(table: str, numbers: object, may_be_zero: frozenset[str] = frozenset()
                    ) -> None:
    """Every float of a table of numbers positive, every integer at least 1 (0
    where `may_be_zero` names it); ConfigError names the first that is not."""
    for name, value in vars(numbers).items():
        if isinstance(value, float) and not value > 0:
            raise ConfigError(f"{table}.{name}", "must be a positive number")
        if isinstance(value, int) and value < (0 if name in may_be_zero else 1):
            raise ConfigError(f"{table}.{name}", "must be a positive integer")


# --- budgets against hostile load (issue 11) ------------------------------------
# One table, `[budgets]` in `pinata serve`'s TOML, every field optional.


@dataclass(frozen=True)
class Budgets:
    """What an unauthenticated peer may make us spend, beyond `Limits`' caps."""

    # Peers are grouped by network: an IPv4 /24, an IPv6 /64.
    network_prefix_v4: int = 24
    network_prefix_v6: int = 64
    max_connections_per_network: int = 64
    # Slots each listener keeps for itself (at most half of max_connections in all).
    reserved_per_listener: int = 32
    # Seconds from accept to the peer's first byte, and from our last send to
    # the peer's next flight (each step of the handshake, not only the whole).
    first_byte_timeout: float = 2.0
    step_timeout: float = 5.0
    # CPU seconds of certificate validation per network per second, and its burst.
    validation_cpu_per_second: float = 0.25
    validation_cpu_burst: float = 1.0
    # Worker threads validating at once, so the loop never validates itself; 0:
    # on the loop (the sandboxed image, whose filter allows no new thread).
    validation_threads: int = 2
    # Bytes received from peers that have not authenticated: all of them, and
    # one connection until its first handshake message (the ClientHello) is complete.
    preauth_bytes_total: int = 16 << 20
    preauth_bytes_per_connection: int = 16 << 10
    connect_back_per_network_per_second: float = 1.0
    connect_back_per_network_burst: int = 3
    # Networks remembered by the per-network token buckets.
    max_tracked_networks: int = 4096
    # Log lines waiting for the writer; beyond it lines are dropped and counted.
    log_queue_lines: int = 4096
    # log_path rotates at this size, keeping this many old files.
    log_max_bytes: int = 16 << 20
    log_keep_files: int = 4
    # Seconds between summaries of refusals (one line per limit).
    refusal_summary_interval: float = 10.0
    refusal_summary_top: int = 5

    def check(self) -> None:
        _check_positive("budgets", self, may_be_zero=frozenset({"validation_threads"}))
        if not 8 <= self.network_prefix_v4 <= 32:
            raise ConfigError("budgets.network_prefix_v4", "must be between 8 and 32")
        if not 16 <= self.network_prefix_v6 <= 128:
            raise ConfigError("budgets.network_prefix_v6", "must be between 16 and 128")


@dataclass(frozen=True)
class ApplianceSettings:
    address: str
    ports: Ports
    limits: Limits
    # The single trust anchor, DER; shown on the page and at /anchor.pem.
    anchor_der: bytes = field(repr=False)
    # Presented on 10000 and on the HTTPS page.
    server_credentials: Credentials
    # Presented on 10001 (connect-back) and 10002 when the peer asks.
    client_credentials: Credentials
    secret: Secret
    bitcoin_address: str
    # Presented on the HTTPS page; None: the server credentials.
    https_credentials: Credentials | None = None
    # (name, version) of the software in the image; None: the installed distributions.
    software: tuple[tuple[str, str], ...] | None = None
    # Where the per-connection JSON lines go; None: standard output.
    log_path: str | None = None
    # Seconds between self-talk runs (the first shortly after start); 0: never.
    selftalk_interval: float = 600.0
    # Files a visitor may fetch to try the toy (shown by `pinata toy`); empty otherwise.
    credential_files: tuple[tuple[str, str], ...] = ()
    budgets: Budgets = field(default_factory=Budgets)
    # Networks whose connections start with a PROXY protocol header naming the
    # real client (`pinata.appliance.proxied`); empty: nobody's header is believed.
    trusted_proxies: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
    # Processes serving the same listeners (SO_REUSEPORT), `pinata.appliance.workers`;
    # `Limits` and `Budgets` apply to each worker, so the appliance's totals are N times theirs.
    workers: int = 1
    # The TLS versions every engine config of the appliance speaks (the three
    # bounty ports, the HTTPS page, self-talk), highest first (`[tls] versions`).
    tls_versions: tuple[int, ...] = DEFAULT_TLS_VERSIONS

    @property
    def anchor_pem(self) -> str:
        return cx509.load_der_x509_certificate(self.anchor_der).public_bytes(
            serialization.Encoding.PEM
        ).decode("ascii")


# --- loading credentials --------------------------------------------------------

_SIGNING_KEYS = (
    rsa.RSAPrivateKey,
    ec.EllipticCurvePrivateKey,
    ed25519.Ed25519PrivateKey,
    ed448.Ed448PrivateKey,
)


def _read(path: Path, field_name: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ConfigError(field_name, f"cannot read {str(path)!r} ({exc.strerror})") from None


def parse_certificates(pem: bytes, field_name: str) -> tuple[bytes, ...]:
    """DER certificates from PEM text, in file order; at least one."""
    try:
        certificates = cx509.load_pem_x509_certificates(pem)
    except ValueError:
        raise ConfigError(field_name, "no PEM certificate could be read") from None
    return tuple(c.public_bytes(serialization.Encoding.DER) for c in certificates)


def parse_private_key(pem: bytes, field_name: str) -> CertificateIssuerPrivateKeyTypes:
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError):
        raise ConfigError(field_name, "not an unencrypted PEM private key") from None
    if not isinstance(key, _SIGNING_KEYS):
        raise ConfigError(field_name, "not a signing key (RSA, ECDSA, Ed25519, Ed448)")
    return key


def credentials_from_pem(
    chain_pem: bytes, key_pem: bytes, chain_field: str, key_field: str
) -> Credentials:
    """A chain (leaf first) and its key; refused unless the key is the leaf's."""
    chain = parse_certificates(chain_pem, chain_field)
    key = parse_private_key(key_pem, key_field)
    try:
        # The one constructor checks the match and derives the signing schemes.
        return Credentials(chain, key)
    except InvalidCredentials as error:
        raise ConfigError(key_field, f"{error} (the first certificate of {chain_field})") from None


def _credentials_of(issued: Issued) -> Credentials:
    return Credentials(chain=(issued.der,), private_key=issued.private_key)


def mint_ephemeral(
    host_name: str = "localhost",
) -> tuple[bytes, Credentials, Credentials, Credentials]:
    """A CA minted now, in memory, as the 2015 original did at every boot.

    Returns the anchor (DER) and the server, client and web credentials. The
    anchor's key is dropped with the ceremony when this returns: nobody, us
    included, can issue under this anchor again.
    """
    # The ceremony's certificate builders are imported only by a boot that mints
    # (issue 18): the toy and file credentials never run them, and whatever is
    # imported stays in memory as long as the appliance serves.
    from bait_ca.ca import ceremony

    minted = ceremony(host_name, now=datetime.now(UTC))
    return (
        minted.anchor.public_bytes(serialization.Encoding.DER),
        _credentials_of(minted.server),
        _credentials_of(minted.client),
        _credentials_of(minted.web),
    )


# --- one way from configuration to settings ----------------------------------------
#
# `pinata serve`'s TOML, `pinata toy`'s embedded default and the unikernel's
# manifest all become one document of the TOML's shape, and `build_settings`
# alone turns a document into `ApplianceSettings`. Files named in it are read
# through a `FileSource`: a directory (serve, toy), or the boot files the
# unikernel's launcher has already read.

EPHEMERAL = "ephemeral"


class NumberTable(Protocol):
    """A frozen dataclass of numbers with defaults, checked as a whole by `check`."""

    def check(self) -> None: ...


# Every table of numbers in a document: its name, which is also the ApplianceSettings
# field it fills, and its class. A field added to one of these classes, or a class
# added here, is read from `pinata serve`'s TOML and the unikernel manifest, refused
# there when out of range, and has its default in `pinata toy`, with no other code.
NUMBER_TABLES: dict[str, type[NumberTable]] = {"limits": Limits, "budgets": Budgets}

N = TypeVar("N", bound=NumberTable)


def numbers_from(kind: type[N], table: Mapping[str, object], prefix: str) -> N:
    """An instance of `kind` from a TOML table: defaults for what is absent, each value of
    its field's type (an integer where a float is due is taken), then `check()`ed.

    Raises ConfigError naming `prefix.field` for a wrong type, an unknown key or a value
    `check` refuses.
    """
    values: dict[str, object] = {}
    for f in fields(kind):  # type: ignore[arg-type]
        default: object = f.default
        value = table.get(f.name, default)
        if isinstance(value, bool) or not isinstance(value, int | float) or (
            isinstance(default, int) and not isinstance(value, int)
        ):
            raise ConfigError(f"{prefix}.{f.name}", f"must be a {type(default).__name__}")
        values[f.name] = float(value) if isinstance(default, float) else value
    unknown = sorted(set(table) - set(values))
    if unknown:
        raise ConfigError(f"{prefix}.{unknown[0]}", "unknown setting")
    made = kind(**values)
    made.check()
    return made


class FileSource(Protocol):
    """Where the files a document names come from."""

    def read(self, field_name: str, name: str) -> bytes:
        """The file's bytes; raises ConfigError naming `field_name`."""
        ...

    def path(self, field_name: str, name: str) -> str:
        """A file the appliance will write (the log); raises ConfigError if there is none."""
        ...


@dataclass(frozen=True)
class Directory:
    """Files relative to a directory: a config file's, or the toy's."""

    base: Path

    def read(self, field_name: str, name: str) -> bytes:
        return _read(self.base / name, field_name)

    def path(self, field_name: str, name: str) -> str:
        return str(self.base / name)


def _get(table: Mapping[str, object], key: str, kind: type, prefix: str = "") -> object:
    name = f"{prefix}{key}"
    if key not in table:
        raise ConfigError(name, "missing")
    value = table[key]
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise ConfigError(name, f"must be a {kind.__name__}")
    return value


def _table(doc: Mapping[str, object], key: str, required: bool) -> Mapping[str, object]:
    value = doc.get(key)
    if value is None:
        if required:
            raise ConfigError(key, "missing table")
        return {}
    if not isinstance(value, dict):
        raise ConfigError(key, "must be a table")
    return value


def _str(table: Mapping[str, object], key: str, prefix: str) -> str:
    value = _get(table, key, str, prefix)
    assert isinstance(value, str)
    return value


def _ports(table: Mapping[str, object]) -> Ports:
    values: dict[str, int] = {}
    defaults = Ports()
    for name in (*LISTENER_NAMES, "connect_back_target"):
        value = table.get(name, getattr(defaults, name))
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 65535:
            raise ConfigError(f"ports.{name}", "must be a port number (0-65535)")
        values[name] = value
    unknown = sorted(set(table) - set(values))
    if unknown:
        raise ConfigError(f"ports.{unknown[0]}", "unknown port")
    return Ports(**values)


@dataclass(frozen=True)
class _Credentials:
    anchor_der: bytes
    server: Credentials
    client: Credentials
    web: Credentials | None


MAX_TRUSTED_PROXIES = 64
# More processes than this would be a typo, not a machine.
MAX_WORKERS = 256
AUTO = "auto"


def available_cores() -> int:
    """The cores this process may run on (its affinity mask, not the machine's count)."""
    return max(1, len(os.sched_getaffinity(0)))


def parse_workers(value: object, field_name: str = "workers") -> int:
    """A count of worker processes: an integer from 1 to MAX_WORKERS, or "auto"
    (the cores available); refused with the field's name."""
    if value == AUTO:
        return min(available_cores(), MAX_WORKERS)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_WORKERS:
        raise ConfigError(field_name, f'must be "auto" or an integer from 1 to {MAX_WORKERS}')
    return value


def parse_trusted_proxies(
    value: object, field_name: str = "trusted_proxies"
) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    """Networks from a list of strings ("10.0.0.0/8", "::1"); refused with the field's name."""
    if not isinstance(value, list) or len(value) > MAX_TRUSTED_PROXIES:
        raise ConfigError(field_name, f"must be a list of at most {MAX_TRUSTED_PROXIES} networks")
    networks = []
    for entry in value:
        if not isinstance(entry, str):
            raise ConfigError(field_name, "every entry must be a string")
        try:
            # strict: "10.0.0.1/8" is refused, it is probably not what was meant.
            networks.append(ipaddress.ip_network(entry, strict=True))
        except ValueError as exc:
            raise ConfigError(field_name, f"{entry!r} is not a network ({exc})") from None
    return tuple(networks)


def parse_tls_versions(value: object, field_name: str = "tls.versions") -> tuple[int, ...]:
    """Protocol versions from a list of names ("1.3", "1.2"), highest first.

    Takes the TOML value; returns the versions as `pinata.tls.constants` numbers,
    sorted highest first (the order written does not matter: the highest version
    both sides speak is negotiated, RFC 8446 §4.2.1). Raises ConfigError naming
    the field for an empty list, a duplicate, or any other name ("1.1", "SSLv3").
    """
    if not isinstance(value, list) or not value:
        raise ConfigError(field_name, 'must be a non-empty list such as ["1.3", "1.2"]')
    versions: list[int] = []
    for name in value:
        if not isinstance(name, str) or name not in TLS_VERSIONS:
            spoken = ", ".join(f'"{n}"' for n in TLS_VERSIONS)
            raise ConfigError(field_name, f"{name!r} is not a version we speak ({spoken})")
        if TLS_VERSIONS[name] in versions:
            raise ConfigError(field_name, f"{name!r} is named twice")
        versions.append(TLS_VERSIONS[name])
    return tuple(sorted(versions, reverse=True))


def tls_version_names(versions: tuple[int, ...]) -> list[str]:
    """The `[tls] versions` names of `versions`, in their order (for documents and events)."""
    by_number = {number: name for name, number in TLS_VERSIONS.items()}
    return [by_number[v] for v in versions]


def tls_versions_from(table: Mapping[str, object]) -> tuple[int, ...]:
    """The versions of a `[tls]` table (the default when it names none); raises
    ConfigError naming `tls.<key>` for an unknown key or a bad `versions`."""
    unknown = sorted(set(table) - {"versions"})
    if unknown:
        raise ConfigError(f"tls.{unknown[0]}", "unknown setting")
    if "versions" not in table:
        return DEFAULT_TLS_VERSIONS
    return parse_tls_versions(table["versions"])


def _pair(creds: Mapping[str, object], files: FileSource, role: str) -> Credentials:
    p = "credentials."
    chain, key = f"{role}_chain", f"{role}_key"
    return credentials_from_pem(
        files.read(p + chain, _str(creds, chain, p)), files.read(p + key, _str(creds, key, p)),
        p + chain, p + key,
    )


def _credentials(creds: Mapping[str, object], files: FileSource) -> _Credentials:
    anchor_setting = _str(creds, "anchor", "credentials.")
    if anchor_setting == EPHEMERAL:
        host_name = creds.get("host_name", "localhost")
        if not isinstance(host_name, str):
            raise ConfigError("credentials.host_name", "must be a string")
        try:
            anchor_der, server, client, web = mint_ephemeral(host_name)
        except ValueError as exc:
            raise ConfigError("credentials.host_name", str(exc)) from None
        return _Credentials(anchor_der, server, client, web)
    anchor_chain = parse_certificates(
        files.read("credentials.anchor", anchor_setting), "credentials.anchor"
    )
    if len(anchor_chain) != 1:
        raise ConfigError("credentials.anchor", "must hold exactly one certificate")
    # The web page's own certificate is optional: without it HTTPS shows the server's.
    has_web = "web_chain" in creds or "web_key" in creds
    return _Credentials(
        anchor_chain[0], _pair(creds, files, "server"), _pair(creds, files, "client"),
        _pair(creds, files, "web") if has_web else None,
    )


def build_settings(
    doc: Mapping[str, object],
    files: FileSource,
    *,
    software: tuple[tuple[str, str], ...] | None = None,
    credential_files: tuple[tuple[str, str], ...] = (),
) -> ApplianceSettings:
    """The one builder: settings from a document of `pinata serve`'s TOML shape.

    Takes the document, where its files come from, and what is not configuration
    (the image's software list, the toy's files for visitors). Returns checked
    settings; raises ConfigError naming the first field that cannot start an
    appliance (missing, of the wrong type, out of range, unreadable, a key not
    its certificate's).
    """
    bitcoin_address = _str(doc, "bitcoin_address", "")
    if not (bitcoin_address.isascii() and bitcoin_address.isalnum()):
        raise ConfigError("bitcoin_address", "must be ASCII letters and digits")
    secret_bytes = files.read("secret_file", _str(doc, "secret_file", ""))
    if not secret_bytes:
        raise ConfigError("secret_file", "is empty")
    listen = _table(doc, "listen", required=False)
    address = listen.get("address", "127.0.0.1")
    if not isinstance(address, str):
        raise ConfigError("listen.address", "must be a string")
    numbers = {name: numbers_from(kind, _table(doc, name, required=False), name)
               for name, kind in NUMBER_TABLES.items()}
    log_path = _table(doc, "log", required=False).get("path")
    if log_path is not None and not isinstance(log_path, str):
        raise ConfigError("log.path", "must be a string")
    interval = doc.get("selftalk_interval", 600.0)
    if isinstance(interval, bool) or not isinstance(interval, int | float) or interval < 0:
        raise ConfigError("selftalk_interval", "must be a number of seconds (0: never)")
    creds = _credentials(_table(doc, "credentials", required=True), files)
    return ApplianceSettings(
        address=address,
        ports=_ports(_table(doc, "ports", required=False)),
        anchor_der=creds.anchor_der,
        server_credentials=creds.server,
        client_credentials=creds.client,
        https_credentials=creds.web,
        secret=Secret(secret_bytes),
        bitcoin_address=bitcoin_address,
        software=software,
        log_path=files.path("log.path", log_path) if log_path else None,
        selftalk_interval=float(interval),
        trusted_proxies=parse_trusted_proxies(doc.get("trusted_proxies", [])),
        workers=parse_workers(doc.get("workers", 1)),
        tls_versions=tls_versions_from(_table(doc, "tls", required=False)),
        credential_files=credential_files,
        **numbers,  # type: ignore[arg-type]
    )


def load_config(path: str | Path) -> ApplianceSettings:
    """Settings from a TOML file (`pinata serve`); relative file names are relative to it."""
    path = Path(path)
    try:
        doc = tomllib.loads(_read(path, "config").decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError("config", f"not valid TOML ({exc})") from None
    return build_settings(doc, Directory(path.parent))


# --- the toy ---------------------------------------------------------------------


def toy_document(address: str = "127.0.0.1", port_offset: int = 0) -> dict[str, object]:
    """`pinata toy`'s configuration: the files of `bait_ca/toy/`, every number its default."""
    pairs = {f"{role}_{part}": f"{role}.{'pem' if part == 'chain' else 'key'}"
             for role in ("server", "client", "web") for part in ("chain", "key")}
    return {
        "bitcoin_address": bait_ca_toy.addresses()["p2pkh"],
        "secret_file": "secret.wif",
        "listen": {"address": address},
        "ports": asdict(Ports().shifted(port_offset)),
        "credentials": {"anchor": "anchor.pem", **pairs},
    }


def toy_settings(address: str = "127.0.0.1", port_offset: int = 0) -> ApplianceSettings:
    """The embedded default: toy credentials from `bait_ca/toy/` and the toy's dummy
    secret (a testnet key anyone can recompute). Nothing here protects anything."""
    # Only the files the appliance serves with are read (by `build_settings`, which
    # checks each key against its certificate): loading the whole toy CA, its
    # anchor's key and the researcher's pairs included, cost 3 ms at every start.
    directory = bait_ca_toy.DIRECTORY
    files = (
        ("anchor", "anchor.pem"),
        ("client_cert", "researcher-client.pem"),
        ("client_key", "researcher-client.key"),
        ("server_cert", "researcher-server.pem"),
        ("server_key", "researcher-server.key"),
    )
    return build_settings(
        toy_document(address, port_offset),
        Directory(directory),
        credential_files=tuple((label, str(directory / name)) for label, name in files),
    )
