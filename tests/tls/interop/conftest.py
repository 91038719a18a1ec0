"""Shared pieces of the interop tests: PEM files for the peers, our engine as
a loopback server in a thread, and peer processes that cannot outlive a test.

Every certificate is issued by the test CA of `tests.tls.peers`; the only
kind that module cannot make is an id-RSASSA-PSS leaf, which `cryptography`
cannot encode, so OpenSSL's command line issues those (RFC 4055 §1.2).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from pinata.tls.config import (
    Credentials,
    PeerAuthenticator,
    PeerRejected,
    ServerConfig,
    VerifiedPeer,
    spki_is_rsassa_pss,
)
from pinata.tls.connection import ClientConnection, ServerConnection
from pinata.tls.constants import CipherSuite, NamedGroup, SignatureScheme
from pinata.tls.errors import AlertDescription
from tests.tls.driver import Outcome, converse
from tests.tls.peers import cert_pem, key_pem, leaf, test_ca

# Wall-clock bound on one peer process or one engine conversation (seconds).
PEER_TIMEOUT = 15.0

# TLS 1.3's suites (RFC 8446 §B.4, 0x13xx); TLS 1.2's are in tls12.py.
SUITES = tuple(s for s in CipherSuite if s >> 8 == 0x13)
# X25519MLKEM768 is ours-to-ours only: the machine's OpenSSL 3.0 lacks it.
GROUPS = (NamedGroup.x25519, NamedGroup.secp256r1, NamedGroup.secp384r1)
SCHEMES = (
    SignatureScheme.ecdsa_secp256r1_sha256,
    SignatureScheme.ecdsa_secp384r1_sha384,
    SignatureScheme.rsa_pss_rsae_sha256,
    SignatureScheme.rsa_pss_rsae_sha384,
    SignatureScheme.rsa_pss_rsae_sha512,
    SignatureScheme.rsa_pss_pss_sha256,
    SignatureScheme.rsa_pss_pss_sha384,
    SignatureScheme.rsa_pss_pss_sha512,
    SignatureScheme.ed25519,
)


def key_kind(scheme: SignatureScheme) -> str:
    """The key (and certificate) that signs with `scheme`."""
    name = scheme.name
    if name.startswith("ecdsa_secp256r1"):
        return "p256"
    if name.startswith("ecdsa_secp384r1"):
        return "p384"
    if name.startswith("rsa_pss_rsae"):
        return "rsa2048"
    if name.startswith("rsa_pss_pss"):
        return "rsapss"
    assert scheme == SignatureScheme.ed25519
    return "ed25519"


# ---- certificates ----------------------------------------------------------


@dataclass(frozen=True)
class Party:
    """One side's certificate and key, both as our Credentials and as files."""

    credentials: Credentials
    cert_path: Path
    key_path: Path


@dataclass
class Pki:
    """A directory of PEM files: the test CA and, issued on first use, a leaf
    per (role, kind) with kind one of p256, p384, ed25519, rsa2048, rsapss."""

    directory: Path
    _parties: dict[tuple[str, str], Party] = field(default_factory=dict)

    @property
    def ca_path(self) -> Path:
        return self.directory / "ca.pem"

    def party(self, role: str, kind: str) -> Party:
        if (role, kind) not in self._parties:
            self._parties[(role, kind)] = self._issue(role, kind)
        return self._parties[(role, kind)]

    def _issue(self, role: str, kind: str) -> Party:
        cert_path = self.directory / f"{role}-{kind}.pem"
        key_path = self.directory / f"{role}-{kind}.key"
        if kind == "rsapss":
            credentials = _issue_rsassa_pss(self.directory, role, cert_path, key_path)
        else:
            credentials, _ = leaf(role, kind)
            cert_path.write_bytes(cert_pem(credentials))
            key_path.write_bytes(key_pem(credentials))
        return Party(credentials, cert_path, key_path)


def _issue_rsassa_pss(directory: Path, role: str, cert_path: Path, key_path: Path) -> Credentials:
    ca = test_ca()
    ca_key = directory / "ca.key"
    if not ca_key.exists():
        ca_key.write_bytes(
            ca.key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    eku = "serverAuth" if role == "server" else "clientAuth"
    extensions = directory / f"{role}-rsapss.ext"
    extensions.write_text(
        "basicConstraints=critical,CA:FALSE\n"
        f"extendedKeyUsage={eku}\n"
        "subjectAltName=DNS:localhost,IP:127.0.0.1\n"
    )
    csr = directory / f"{role}-rsapss.csr"
    commands = (
        ["openssl", "genpkey", "-algorithm", "RSA-PSS", "-pkeyopt", "rsa_keygen_bits:2048",
         "-out", str(key_path)],
        ["openssl", "req", "-new", "-key", str(key_path), "-subj",
         f"/CN=pinata test {role} rsapss", "-out", str(csr)],
        ["openssl", "x509", "-req", "-in", str(csr), "-CA", str(directory / "ca.pem"),
         "-CAkey", str(ca_key), "-set_serial", "7", "-days", "365", "-sha256",
         "-extfile", str(extensions), "-out", str(cert_path)],
    )  # fmt: skip
    for command in commands:
        subprocess.run(command, check=True, capture_output=True, timeout=PEER_TIMEOUT)
    certificate = x509.load_pem_x509_certificate(cert_path.read_bytes())
    der = certificate.public_bytes(serialization.Encoding.DER)
    assert spki_is_rsassa_pss(der), "openssl did not issue an id-RSASSA-PSS certificate"
    key = load_pem_private_key(key_path.read_bytes(), None)
    return Credentials((der,), key)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command line tool (Debian package openssl) is not installed")
    directory = tmp_path_factory.mktemp("interop-pki")
    (directory / "ca.pem").write_bytes(test_ca().pem)
    return Pki(directory)


def authenticator() -> PeerAuthenticator:
    """Accepts a chain whose leaf the test CA signed, and says whether the leaf
    key is id-RSASSA-PSS (only rsa_pss_pss_* may then verify, RFC 8446 §4.2.3)."""
    ca = test_ca()

    def authenticate(
        certificates: Sequence[bytes], now: dt.datetime
    ) -> VerifiedPeer | PeerRejected:
        if not certificates:
            return PeerRejected(AlertDescription.certificate_required, "no certificate")
        try:
            cert = x509.load_der_x509_certificate(certificates[0])
            ca.key.public_key().verify(
                cert.signature,
                cert.tbs_certificate_bytes,
                ec.ECDSA(cert.signature_hash_algorithm),  # type: ignore[arg-type]
            )
        except Exception as error:
            return PeerRejected(AlertDescription.unknown_ca, str(error))
        return VerifiedPeer(
            chain=(certificates[0], ca.der),
            leaf_public_key=cert.public_key(),
            subjects=(cert.subject.rfc4514_string(),),
            leaf_key_is_rsassa_pss=spki_is_rsassa_pss(certificates[0]),
        )

    return authenticate


def server_config(
    pki: Pki, kind: str = "p256", *, client_auth: bool = True, **kw: Any
) -> ServerConfig:
    return ServerConfig(
        credentials=pki.party("server", kind).credentials,
        authenticate_client=authenticator() if client_auth else None,
        certificate_authorities=(test_ca().certificate.subject.public_bytes(),),
        **kw,
    )


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def traced(
    connection: ServerConnection | ClientConnection, kind: str, what: str
) -> list[dict[str, object]]:
    """The trace entries of one kind, e.g. ("in", "KeyUpdate"), with their details."""
    return [e for e in connection.trace.to_json() if (e["kind"], e["what"]) == (kind, what)]


# ---- our engine on loopback ------------------------------------------------


@dataclass
class EngineRun:
    """What our side of a conversation saw; filled in by its thread."""

    connection: ServerConnection | ClientConnection | None = None
    outcome: Outcome | None = None
    error: BaseException | None = None

    def result(self) -> Outcome:
        if self.error is not None:
            raise self.error
        assert self.outcome is not None, "our engine's thread did not finish in time"
        return self.outcome


@contextlib.contextmanager
def our_server(config: ServerConfig, **converse_options: Any) -> Iterator[tuple[int, EngineRun]]:
    """Our ServerConnection on an ephemeral loopback port, for one connection.

    Yields (port, run); on leaving, the thread is joined and `run` filled in.
    """
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    listener.settimeout(PEER_TIMEOUT)
    record = EngineRun()

    def serve() -> None:
        try:
            sock, _ = listener.accept()
            connection = ServerConnection(config, now=now())
            record.connection = connection
            record.outcome = converse(sock, connection, timeout=PEER_TIMEOUT, **converse_options)
        except BaseException as error:
            record.error = error

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1], record
    finally:
        thread.join(PEER_TIMEOUT + 2)
        listener.close()


def our_client(port: int, connection: ClientConnection, **converse_options: Any) -> Outcome:
    sock = socket.create_connection(("127.0.0.1", port), timeout=PEER_TIMEOUT)
    return converse(sock, connection, timeout=PEER_TIMEOUT, **converse_options)


T = TypeVar("T")


class InThread(Generic[T]):
    """Runs a peer library's side in a thread; `result()` joins with a deadline."""

    def __init__(self, function: Callable[[], T]) -> None:
        self._value: T | None = None
        self._error: BaseException | None = None

        def target() -> None:
            try:
                self._value = function()
            except BaseException as error:
                self._error = error

        self._thread = threading.Thread(target=target, daemon=True)
        self._thread.start()

    def result(self) -> T:
        self._thread.join(PEER_TIMEOUT + 2)
        assert not self._thread.is_alive(), "the peer's thread did not finish in time"
        if self._error is not None:
            raise self._error
        assert self._value is not None
        return self._value


# ---- peer processes --------------------------------------------------------


def require_tool(tool: str, package: str) -> None:
    if shutil.which(tool) is None:
        pytest.skip(f"{tool} is not installed (Debian package {package})")


@contextlib.contextmanager
def peer_process(
    args: Sequence[str], env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[str]]:
    """A peer on pipes (in `env` if given); killed on the way out whatever happened."""
    process = subprocess.Popen(
        list(args),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
        env=env,
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(PEER_TIMEOUT)
        for pipe in (process.stdin, process.stdout):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()


class OutputReader:
    """Collects a process's output in a thread, so a test can wait for a line
    without blocking past its deadline."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        self._stream = process.stdout
        self._lines: list[str] = []
        self._changed = threading.Condition()
        self._done = False
        self._thread = threading.Thread(target=self._pump, daemon=True)
        self._thread.start()

    def _pump(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            for line in self._stream:
                with self._changed:
                    self._lines.append(line)
                    self._changed.notify_all()
        with self._changed:
            self._done = True
            self._changed.notify_all()

    @property
    def text(self) -> str:
        with self._changed:
            return "".join(self._lines)

    def wait_for(self, predicate: Callable[[str], bool], timeout: float = PEER_TIMEOUT) -> str:
        """The first line matching `predicate`; fails the test on timeout or EOF."""
        seen = 0
        end = time.monotonic() + timeout
        with self._changed:
            while True:
                for line in self._lines[seen:]:
                    if predicate(line):
                        return line
                seen = len(self._lines)
                remaining = end - time.monotonic()
                if self._done or remaining <= 0:
                    pytest.fail(
                        f"peer never printed the expected line; output:\n{''.join(self._lines)}"
                    )
                self._changed.wait(remaining)

    def wait_closed(self, timeout: float = PEER_TIMEOUT) -> str:
        self._thread.join(timeout)
        return self.text


def listening_port(pid: int, timeout: float = PEER_TIMEOUT) -> int:
    """The IPv4 port a process listens on, from its socket inodes and /proc/net/tcp."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        inodes = set()
        with_fds = Path(f"/proc/{pid}/fd")
        for fd in os.listdir(with_fds):
            try:
                link = os.readlink(with_fds / fd)
            except OSError:
                continue
            if link.startswith("socket:["):
                inodes.add(link[len("socket:[") : -1])
        for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:  # 0A: TCP_LISTEN
                return int(fields[1].rsplit(":", 1)[1], 16)
        time.sleep(0.02)
    pytest.fail(f"process {pid} is not listening")


def gnutls_cli(pki: Pki, port: int, prio: str, client_kind: str | None = "p256") -> list[str]:
    """`gnutls-cli` to our server on loopback, trusting the run's CA, with a client
    certificate of `client_kind` (None: none)."""
    args = [
        "gnutls-cli", "127.0.0.1", "-p", str(port), "--x509cafile", str(pki.ca_path),
        "--sni-hostname", "localhost", "--verify-hostname", "localhost", "--priority", prio,
    ]  # fmt: skip
    if client_kind is not None:
        party = pki.party("client", client_kind)
        args += ["--x509certfile", str(party.cert_path), "--x509keyfile", str(party.key_path)]
    return args
