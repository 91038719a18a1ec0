"""The four real peers of the TLS 1.2 matrix behind one interface, so that the
same test runs against each: `Peer.client` runs a peer's client to the end
against a port, `Peer.server` starts a peer's server for one connection.

A conversation is one line: the client says "ping", the server answers its
own way (`Serving.answer`), the client ends with close_notify. What a peer
reports is normalised into a `Report` (version, suite, group, extended
master secret, the alert it received), parsed from what the tool prints or
read from the library; a field the peer does not report stays None.
"""

from __future__ import annotations

import contextlib
import re
import socket
import ssl
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest

from pinata.tls.errors import AlertDescription
from tests.tls.interop.conftest import (
    PEER_TIMEOUT,
    InThread,
    OutputReader,
    Pki,
    gnutls_cli,
    listening_port,
    peer_process,
)
from tests.tls.interop.tls12 import (
    GROUPS12,
    OPENSSL_TLS10,
    OPENSSL_TLS11,
    SUITES12,
    TLS12,
    TLS13,
    Group12,
    Scheme12,
    Suite12,
    gnutls_priority12,
    gnutls_serv12,
    no_ems_conf,
    openssl_env,
    s_client12,
    s_server12,
    ssl_context12,
    tlslite_credentials,
    tlslite_settings12,
)

TLS11 = 0x0302
TLS10 = 0x0301
PING = b"ping\n"


@dataclass(frozen=True)
class Options:
    """What one side of the matrix is asked to do. `versions` is (lowest,
    highest); `client_auth` is for a server ("require", "request", None);
    `kind` is the side's own certificate (None: none)."""

    kind: str | None = "p256"
    suite: Suite12 | None = None
    group: Group12 | None = None
    scheme: Scheme12 | None = None
    versions: tuple[int, int] = (TLS12, TLS12)
    client_auth: str | None = "require"
    no_ems: bool = False
    fallback_scsv: bool = False
    # A server narrowed to `scheme` also accepts this one from the client.
    also_accept: Scheme12 | None = None
    # Neither renegotiation_info nor its SCSV (RFC 5746): GnuTLS only.
    no_secure_renegotiation: bool = False


@dataclass
class Report:
    """What a peer said about its conversation."""

    version: int | None = None
    suite: int | None = None
    group: int | None = None
    ems: bool | None = None
    secure_renegotiation: bool | None = None  # RFC 5746, as the peer reports it
    heartbeat: bool | None = None  # RFC 6520 agreed, as tlslite reports it
    received: bytes = b""
    alert_received: int | None = None
    error: str = ""
    output: str = ""

    def __str__(self) -> str:
        return f"{self.error}\n{self.output}"


@dataclass
class Serving:
    """A peer server waiting for one connection on `port`; `report()` after."""

    port: int
    answer: bytes
    _finish: Callable[[], Report] = field(repr=False)

    def report(self) -> Report:
        return self._finish()


# ---- parsing what the tools print -------------------------------------------

_VERSION_NAME = {"TLSv1.3": TLS13, "TLSv1.2": TLS12, "TLSv1.1": TLS11, "TLSv1": TLS10,
                 "TLS1.3": TLS13, "TLS1.2": TLS12, "TLS1.1": TLS11, "TLS1.0": TLS10}  # fmt: skip
_BY_OPENSSL = {s.openssl: s.code for s in SUITES12}
_BY_TEMP_KEY = {g.openssl_temp_key: g.code for g in GROUPS12}
_BY_GNUTLS_GROUP = {g.gnutls: g.code for g in GROUPS12}
_BY_GNUTLS_SUITE = {(s.gnutls_kx, s.gnutls_cipher): s.code for s in SUITES12}


def _search(pattern: str, text: str) -> str | None:
    found = re.search(pattern, text, re.M)
    return found.group(1) if found else None


def _openssl_report(output: str, answer: bytes) -> Report:
    version = _search(r"^\s*Protocol\s*(?:version)?\s*: (\S+)", output) or _search(
        r"^New, (\S+), Cipher is", output
    )
    cipher = _search(r"Cipher is (\S+)", output) or _search(r"^Ciphersuite: (\S+)", output)
    temp_key = _search(r"Server Temp Key: (.+?), \d+ bits", output)
    ems = _search(r"Extended master secret: (\w+)", output)
    renegotiation = re.search(r"Secure Renegotiation IS (NOT )?supported", output)
    alert = _search(r"SSL alert number (\d+)", output)
    return Report(
        version=_VERSION_NAME.get(version or ""),
        suite=_BY_OPENSSL.get(cipher or ""),
        group=_BY_TEMP_KEY.get(temp_key or ""),
        ems=None if ems is None else ems == "yes",
        secure_renegotiation=None if renegotiation is None else renegotiation.group(1) is None,
        received=answer if _printed(output, answer) else b"",
        alert_received=int(alert) if alert else None,
        output=output,
    )


def _printed(output: str, answer: bytes) -> bool:
    return bool(answer) and any(line.endswith(answer.decode()) for line in output.splitlines(True))


def _gnutls_report(output: str, answer: bytes) -> Report:
    described = re.search(
        r"Description: \((TLS1\.\d)-X\.509\)-\(ECDHE-(\S+?)\)-\((\S+?)\)-\((\S+?)\)", output
    )
    kx = _search(r"^- Key Exchange: (\S+)", output)
    options = _search(r"^- Options: (.*)$", output)
    alert = _search(r"Received alert \[(\d+)\]", output)
    report = Report(
        ems=None if options is None else "extended master secret" in options,
        secure_renegotiation=None if options is None else "safe renegotiation" in options,
        received=answer if _printed(output, answer) else b"",
        alert_received=int(alert) if alert else None,
        output=output,
    )
    if described is not None:
        report.version = _VERSION_NAME.get(described.group(1))
        report.group = _BY_GNUTLS_GROUP.get(described.group(2))
        # gnutls-cli prints no "Key Exchange" line: the signature says it.
        signed = described.group(3)
        kx = kx or ("ECDHE-RSA" if signed.startswith("RSA") else "ECDHE-ECDSA")
        report.suite = _BY_GNUTLS_SUITE.get((kx, described.group(4)))
    return report


def _ssl_alert(error: ssl.SSLError) -> int | None:
    """The alert an `ssl` error says it received: its reason is the alert's
    name after SSLV3_ALERT_, TLSV1_ALERT_ or TLSV13_ALERT_."""
    reason = str(error.reason or "")
    name = re.sub(r"^(SSLV3|TLSV1|TLSV13)_ALERT_", "", reason)
    if name == reason:
        return None
    with contextlib.suppress(KeyError):
        return int(AlertDescription[name.lower()])
    return None


# ---- OpenSSL -------------------------------------------------------------------


def _openssl_version_flags(versions: tuple[int, int]) -> tuple[str, ...]:
    if versions == (TLS12, TLS12):
        return ("-tls1_2",)
    if versions == (TLS13, TLS13):
        return ("-tls1_3",)
    if versions == (TLS11, TLS11):
        return OPENSSL_TLS11
    if versions == (TLS10, TLS10):
        return OPENSSL_TLS10
    if versions == (TLS12, TLS13):
        return ("-no_tls1", "-no_tls1_1")
    raise ValueError(versions)


def _client_process(
    args: list[str],
    answer: bytes | None,
    env: dict[str, str],
    parse: Callable[[str, bytes], Report],
) -> Report:
    """A command-line client: it says ping; once it printed `answer` (or
    without waiting if None) its input ends, and it closes and exits."""
    with peer_process(args, env) as process:
        assert process.stdin is not None
        reader = OutputReader(process)
        with contextlib.suppress(OSError):
            process.stdin.write(PING.decode())
            process.stdin.flush()
        if answer is not None:
            # s_client may print the answer at the end of a session ticket's
            # hex dump line (TLS 1.3), so only the line's end counts.
            reader.wait_for(lambda line: line.endswith(answer.decode()))
        with contextlib.suppress(OSError):
            process.stdin.close()
        try:
            process.wait(PEER_TIMEOUT)
        except subprocess.TimeoutExpired:
            pytest.fail(f"{args[0]} did not exit:\n{reader.text}")
        return parse(reader.wait_closed(), answer or b"")


class OpenSSL:
    name = "openssl"
    # What its server, at TLS 1.1 or 1.0 only, sends our 1.3/1.2 ClientHello: no
    # version in common, or (first) no suite, ours being 1.2 AEAD only.
    tls11_server_alert: int = AlertDescription.protocol_version
    # The roles in which it says whether extended_master_secret was used.
    reports_ems: frozenset[str] = frozenset({"client"})
    # What its server sends a client whose Certificate is empty (RFC 5246
    # §7.4.6 leaves the choice to the server).
    no_client_certificate_alert: int | None = AlertDescription.handshake_failure

    def client(self, pki: Pki, port: int, options: Options, answer: bytes | None) -> Report:
        """`openssl s_client`; without -ign_eof it ends at the end of its input."""
        extra = ["-fallback_scsv"] if options.fallback_scsv else []
        args = s_client12(
            pki, port, suite=options.suite, group=options.group, scheme=options.scheme,
            client_kind=options.kind, versions=_openssl_version_flags(options.versions),
            extra=extra,
        )  # fmt: skip
        env = openssl_env(no_ems_conf(pki) if options.no_ems else None)
        return _client_process(args, answer, env, _openssl_report)

    @contextlib.contextmanager
    def server(self, pki: Pki, options: Options) -> Iterator[Serving]:
        """`openssl s_server -naccept 1 -rev`: it answers "gnip"."""
        args = s_server12(
            pki, server_kind=options.kind or "p256", suite=options.suite, group=options.group,
            scheme=options.scheme, client_auth=options.client_auth,
            versions=_openssl_version_flags(options.versions), also_accept=options.also_accept,
        )  # fmt: skip
        env = openssl_env(no_ems_conf(pki) if options.no_ems else None)
        with peer_process(args, env) as process:
            reader = OutputReader(process)
            accept = reader.wait_for(lambda line: line.startswith("ACCEPT"))

            def finish() -> Report:
                try:
                    process.wait(PEER_TIMEOUT)
                except subprocess.TimeoutExpired:
                    pytest.fail(f"s_server did not finish:\n{reader.text}")
                return _openssl_report(reader.wait_closed(), b"")

            yield Serving(int(accept.rsplit(":", 1)[1]), b"gnip\n", finish)


# ---- GnuTLS --------------------------------------------------------------------

_GNUTLS_VERSIONS = {TLS12: "TLS1.2", TLS13: "TLS1.3", TLS11: "TLS1.1", TLS10: "TLS1.0"}


def _gnutls_priority(options: Options) -> str:
    low, high = options.versions
    versions = [_GNUTLS_VERSIONS[v] for v in (TLS13, TLS12, TLS11, TLS10) if low <= v <= high]
    extra = ["%NO_SESSION_HASH"] if options.no_ems else []
    if options.no_secure_renegotiation:
        extra.append("%DISABLE_SAFE_RENEGOTIATION")
    if options.fallback_scsv:
        extra.append("%FALLBACK_SCSV")
    return gnutls_priority12(options.suite, options.group, options.scheme, versions, extra)


class GnuTLS:
    name = "gnutls"
    # What its server, at TLS 1.1 or 1.0 only, sends our 1.3/1.2 ClientHello: no
    # version in common, or (first) no suite, ours being 1.2 AEAD only.
    tls11_server_alert: int = AlertDescription.handshake_failure
    # The roles in which it says whether extended_master_secret was used.
    reports_ems: frozenset[str] = frozenset({"client", "server"})
    # GnuTLS 3.7's "No certificate was found" goes out as decode_error.
    no_client_certificate_alert: int | None = AlertDescription.decode_error

    def client(self, pki: Pki, port: int, options: Options, answer: bytes | None) -> Report:
        args = gnutls_cli(pki, port, _gnutls_priority(options), options.kind)
        return _client_process(args, answer, openssl_env(), _gnutls_report)

    @contextlib.contextmanager
    def server(self, pki: Pki, options: Options) -> Iterator[Serving]:
        """`gnutls-serv --echo`: it answers "ping"; it serves until killed, so
        the report is read once it printed the conversation's end."""
        args = gnutls_serv12(
            pki, _gnutls_priority(options), options.kind or "p256", options.client_auth
        )
        with peer_process(args) as process:
            reader = OutputReader(process)
            reader.wait_for(lambda line: "listening on IPv4" in line)

            def finish() -> Report:
                reader.wait_for(
                    lambda line: "Processing" in line or "Error" in line or "alert" in line
                )
                return _gnutls_report(reader.text, b"")

            yield Serving(listening_port(process.pid), b"ping\n", finish)


# ---- tlslite-ng ----------------------------------------------------------------


def _tlslite_report(connection: object, received: bytes) -> Report:
    session = connection.session  # type: ignore[attr-defined]
    version = connection.version  # type: ignore[attr-defined]
    return Report(
        version=(version[0] << 8 | version[1]) if version else None,
        suite=session.cipherSuite,
        group=connection.ecdhCurve,  # type: ignore[attr-defined]
        ems=bool(session.extendedMasterSecret),
        heartbeat=bool(connection.heartbeat_supported),  # type: ignore[attr-defined]
        received=received,
    )


def _tlslite_settings(options: Options) -> object:
    settings = tlslite_settings12(options.suite, options.group, options.scheme, options.versions)
    if options.no_ems:
        settings.useExtendedMasterSecret = False  # type: ignore[attr-defined]
    if options.fallback_scsv:
        settings.sendFallbackSCSV = True  # type: ignore[attr-defined]
    return settings


def _tlslite_failure(error: BaseException) -> Report:
    from tlslite.api import TLSRemoteAlert  # type: ignore[import-untyped]

    if isinstance(error, TLSRemoteAlert):
        return Report(alert_received=int(error.description), error=repr(error))
    return Report(error=repr(error))


class TlsLite:
    name = "tlslite"
    # What its server, at TLS 1.1 or 1.0 only, sends our 1.3/1.2 ClientHello: no
    # version in common, or (first) no suite, ours being 1.2 AEAD only.
    tls11_server_alert: int = AlertDescription.handshake_failure
    # The roles in which it says whether extended_master_secret was used.
    reports_ems: frozenset[str] = frozenset({"client", "server"})
    # tlslite's server accepts an empty Certificate it asked for: the
    # refusal is left to the application.
    no_client_certificate_alert: int | None = None

    def client(self, pki: Pki, port: int, options: Options, answer: bytes | None) -> Report:
        from tlslite.api import TLSConnection  # type: ignore[import-untyped]

        chain, key = tlslite_credentials(pki, "client", options.kind)
        with socket.create_connection(("127.0.0.1", port), timeout=PEER_TIMEOUT) as raw:
            connection = TLSConnection(raw)
            try:
                connection.handshakeClientCert(
                    chain, key, settings=_tlslite_settings(options), serverName="localhost"
                )
                connection.write(PING)
                report = _tlslite_report(
                    connection, _read_line(lambda: bytes(connection.read(max=100)))
                )
                connection.close()
            except Exception as error:
                return _tlslite_failure(error)
            return report

    @contextlib.contextmanager
    def server(self, pki: Pki, options: Options) -> Iterator[Serving]:
        from tlslite.api import TLSConnection  # type: ignore[import-untyped]

        chain, key = tlslite_credentials(pki, "server", options.kind or "p256")
        listener = socket.create_server(("127.0.0.1", 0))
        listener.settimeout(PEER_TIMEOUT)

        def serve() -> Report:
            raw, _ = listener.accept()
            raw.settimeout(PEER_TIMEOUT)
            with raw:
                connection = TLSConnection(raw)
                try:
                    connection.handshakeServer(
                        certChain=chain, privateKey=key,
                        reqCert=options.client_auth is not None,
                        settings=_tlslite_settings(options),
                    )  # fmt: skip
                    report = _tlslite_report(
                        connection, _read_line(lambda: bytes(connection.read(max=100)))
                    )
                    connection.write(b"pong\n")
                    connection.read()  # the client's close_notify
                    connection.close()
                except Exception as error:
                    return _tlslite_failure(error)
                return report

        with listener:
            thread = InThread(serve)
            yield Serving(listener.getsockname()[1], b"pong\n", thread.result)


# ---- Python's ssl --------------------------------------------------------------

_SSL_VERSION = {TLS13: "TLSv1_3", TLS12: "TLSv1_2", TLS11: "TLSv1_1", TLS10: "TLSv1"}


def _ssl_context(pki: Pki, options: Options, *, server: bool) -> ssl.SSLContext:
    low, high = options.versions
    return ssl_context12(
        pki, server=server, kind=options.kind, suite=options.suite,
        client_auth=options.client_auth,
        minimum=_SSL_VERSION[low], maximum=_SSL_VERSION[high],
    )  # fmt: skip


def _ssl_report(tls: ssl.SSLSocket, received: bytes) -> Report:
    cipher = tls.cipher()
    return Report(
        version=_VERSION_NAME.get(tls.version() or ""),
        suite=_BY_OPENSSL.get(cipher[0]) if cipher else None,
        received=received,
    )


def _read_line(read: Callable[[], bytes]) -> bytes:
    """Reads until a newline or the end of the stream (bounded by the socket's timeout)."""
    data = b""
    for _ in range(100):
        chunk = read()
        data += chunk
        if not chunk or data.endswith(b"\n"):
            break
    return data


class PythonSsl:
    name = "ssl"
    # What its server, at TLS 1.1 or 1.0 only, sends our 1.3/1.2 ClientHello: no
    # version in common, or (first) no suite, ours being 1.2 AEAD only.
    tls11_server_alert: int = AlertDescription.protocol_version
    # The roles in which it says whether extended_master_secret was used.
    reports_ems: frozenset[str] = frozenset(set())
    no_client_certificate_alert: int | None = AlertDescription.handshake_failure

    def client(self, pki: Pki, port: int, options: Options, answer: bytes | None) -> Report:
        if options.no_ems or options.fallback_scsv:
            raise ValueError("Python's ssl can neither leave out EMS nor send the fallback SCSV")
        context = _ssl_context(pki, options, server=False)
        with socket.create_connection(("127.0.0.1", port), timeout=PEER_TIMEOUT) as raw:
            try:
                tls = context.wrap_socket(raw, server_hostname="localhost")
                tls.sendall(PING)
                received = _read_line(lambda: tls.recv(100))
                report = _ssl_report(tls, received)
                with contextlib.suppress(OSError):
                    tls.unwrap()
            except ssl.SSLError as error:
                return Report(alert_received=_ssl_alert(error), error=repr(error))
            except OSError as error:
                return Report(error=repr(error))
            return report

    @contextlib.contextmanager
    def server(self, pki: Pki, options: Options) -> Iterator[Serving]:
        context = _ssl_context(pki, options, server=True)
        listener = socket.create_server(("127.0.0.1", 0))
        listener.settimeout(PEER_TIMEOUT)

        def serve() -> Report:
            raw, _ = listener.accept()
            raw.settimeout(PEER_TIMEOUT)
            try:
                with context.wrap_socket(raw, server_side=True) as tls:
                    report = _ssl_report(tls, _read_line(lambda: tls.recv(100)))
                    tls.sendall(b"pong\n")
                    with contextlib.suppress(OSError):
                        tls.recv(100)  # b"": the client's close_notify
                        tls.unwrap()
                    return report
            except ssl.SSLError as error:
                return Report(alert_received=_ssl_alert(error), error=repr(error))
            finally:
                raw.close()

        with listener:
            thread = InThread(serve)
            yield Serving(listener.getsockname()[1], b"pong\n", thread.result)


Peer = OpenSSL | GnuTLS | TlsLite | PythonSsl
PEERS: tuple[Peer, ...] = (OpenSSL(), GnuTLS(), TlsLite(), PythonSsl())


def peer_id(peer: Peer) -> str:
    return peer.name


def available(peer: Peer) -> None:
    """Skips, naming what is missing, when a peer is not installed."""
    import shutil

    if isinstance(peer, GnuTLS) and shutil.which("gnutls-cli") is None:
        pytest.skip("gnutls-cli is not installed (Debian package gnutls-bin)")
    if isinstance(peer, TlsLite):
        pytest.importorskip("tlslite.api", reason="tlslite-ng (PyPI) is not installed")
