"""The TLS 1.2 interop matrix: what each real peer calls our suites, groups
and signature schemes, and how each peer is told to speak TLS 1.2 only.

Suites and schemes are named by their code points (RFC 5289, RFC 7905,
RFC 8446 §4.2.3), so the tables do not depend on the engine's enum names.
Every command line and settings object built here is also run peer against
peer in `test_harness12.py`, so a failure against our engine is ours, not
the harness's.

Facts about the peers that shape the matrix (each checked on this machine:
OpenSSL 3.0, GnuTLS 3.7, tlslite-ng 0.8, Python's `ssl` on OpenSSL 3.0):

- In TLS 1.2, OpenSSL holds an ECDSA certificate's curve to the groups
  lists (RFC 8422 §5.1.1 read strictly): a server refuses a client's P-256
  certificate with "wrong curve" unless P-256 is in its own list and the
  client's, and a client refuses a server's likewise. So where a peer is
  narrowed to one group, both sides use RSA certificates.
- Python's `ssl` can choose neither TLS 1.2 groups (`set_ecdh_curve` takes
  one NIST curve, not x25519) nor signature schemes: against it our side
  narrows, and our HandshakeComplete is the witness.
- OpenSSL's command line has no switch to leave out extended_master_secret:
  a config file (`NO_EMS_CONF`) sets `Options = -ExtendedMasterSecret`.
"""

from __future__ import annotations

import os
import ssl
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tests.tls.interop.conftest import Pki

TLS12 = 0x0303
TLS13 = 0x0304


@dataclass(frozen=True)
class Suite12:
    """One TLS 1.2 suite of the contract, as each peer names it."""

    code: int
    openssl: str  # OpenSSL's name, also what Python's ssl reports
    iana: str
    gnutls_kx: str  # GnuTLS priority keyword for the key exchange
    gnutls_cipher: str  # GnuTLS priority keyword and printed name of the cipher
    tlslite_cipher: str
    tlslite_kx: str
    server_kind: str  # the server key (Pki kind) the suite's authentication needs

    @property
    def id(self) -> str:
        return self.iana


SUITES12 = (
    Suite12(0xC02B, "ECDHE-ECDSA-AES128-GCM-SHA256", "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
            "ECDHE-ECDSA", "AES-128-GCM", "aes128gcm", "ecdhe_ecdsa", "p256"),
    Suite12(0xC02C, "ECDHE-ECDSA-AES256-GCM-SHA384", "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
            "ECDHE-ECDSA", "AES-256-GCM", "aes256gcm", "ecdhe_ecdsa", "p256"),
    Suite12(0xCCA9, "ECDHE-ECDSA-CHACHA20-POLY1305",
            "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
            "ECDHE-ECDSA", "CHACHA20-POLY1305", "chacha20-poly1305", "ecdhe_ecdsa", "p256"),
    Suite12(0xC02F, "ECDHE-RSA-AES128-GCM-SHA256", "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
            "ECDHE-RSA", "AES-128-GCM", "aes128gcm", "ecdhe_rsa", "rsa2048"),
    Suite12(0xC030, "ECDHE-RSA-AES256-GCM-SHA384", "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
            "ECDHE-RSA", "AES-256-GCM", "aes256gcm", "ecdhe_rsa", "rsa2048"),
    Suite12(0xCCA8, "ECDHE-RSA-CHACHA20-POLY1305", "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
            "ECDHE-RSA", "CHACHA20-POLY1305", "chacha20-poly1305", "ecdhe_rsa", "rsa2048"),
)  # fmt: skip


@dataclass(frozen=True)
class Group12:
    code: int
    name: str  # RFC 8446 / tlslite name
    openssl: str  # -groups name
    openssl_temp_key: str  # how s_client prints the server's ECDHE key
    gnutls: str  # GROUP-xxx keyword and printed name

    @property
    def id(self) -> str:
        return self.name


GROUPS12 = (
    Group12(0x001D, "x25519", "X25519", "X25519", "X25519"),
    Group12(0x0017, "secp256r1", "P-256", "ECDH, prime256v1", "SECP256R1"),
    Group12(0x0018, "secp384r1", "P-384", "ECDH, secp384r1", "SECP384R1"),
)


@dataclass(frozen=True)
class Scheme12:
    """A signature scheme for ServerKeyExchange and CertificateVerify in TLS
    1.2 (RFC 5246 §7.4.1.4.1 as RFC 8446 §4.2.3 renamed the pairs; an ECDSA
    scheme names only the hash in 1.2, the curve is the key's)."""

    code: int
    name: str
    kind: str  # the key (Pki kind) that signs with it
    openssl: str  # -sigalgs name
    openssl_type: str  # s_client's "Peer signature type"
    openssl_digest: str | None  # s_client's "Peer signing digest"
    gnutls: str  # SIGN-xxx keyword (without SIGN-) and printed name

    @property
    def id(self) -> str:
        return self.name

    @property
    def suite(self) -> Suite12:
        """An AES-128-GCM suite whose authentication this key can do."""
        ecdsa = self.kind in ("p256", "p384", "ed25519")
        return SUITES12[0] if ecdsa else SUITES12[3]

    @property
    def rsa_padding(self) -> str | None:
        if self.name.startswith("rsa_pkcs1"):
            return "pkcs1"
        return "pss" if self.name.startswith("rsa_pss") else None

    @property
    def digest(self) -> str | None:
        return None if self.kind == "ed25519" else self.name.rsplit("_", 1)[1]


SCHEMES12 = (
    Scheme12(0x0403, "ecdsa_secp256r1_sha256", "p256", "ECDSA+SHA256", "ECDSA", "SHA256",
             "ECDSA-SHA256"),
    Scheme12(0x0503, "ecdsa_secp384r1_sha384", "p384", "ECDSA+SHA384", "ECDSA", "SHA384",
             "ECDSA-SHA384"),
    Scheme12(0x0401, "rsa_pkcs1_sha256", "rsa2048", "RSA+SHA256", "RSA", "SHA256", "RSA-SHA256"),
    Scheme12(0x0501, "rsa_pkcs1_sha384", "rsa2048", "RSA+SHA384", "RSA", "SHA384", "RSA-SHA384"),
    Scheme12(0x0601, "rsa_pkcs1_sha512", "rsa2048", "RSA+SHA512", "RSA", "SHA512", "RSA-SHA512"),
    Scheme12(0x0804, "rsa_pss_rsae_sha256", "rsa2048", "rsa_pss_rsae_sha256", "RSA-PSS", "SHA256",
             "RSA-PSS-RSAE-SHA256"),
    Scheme12(0x0805, "rsa_pss_rsae_sha384", "rsa2048", "rsa_pss_rsae_sha384", "RSA-PSS", "SHA384",
             "RSA-PSS-RSAE-SHA384"),
    Scheme12(0x0806, "rsa_pss_rsae_sha512", "rsa2048", "rsa_pss_rsae_sha512", "RSA-PSS", "SHA512",
             "RSA-PSS-RSAE-SHA512"),
    Scheme12(0x0809, "rsa_pss_pss_sha256", "rsapss", "rsa_pss_pss_sha256", "RSA-PSS", "SHA256",
             "RSA-PSS-SHA256"),
    Scheme12(0x080A, "rsa_pss_pss_sha384", "rsapss", "rsa_pss_pss_sha384", "RSA-PSS", "SHA384",
             "RSA-PSS-SHA384"),
    Scheme12(0x080B, "rsa_pss_pss_sha512", "rsapss", "rsa_pss_pss_sha512", "RSA-PSS", "SHA512",
             "RSA-PSS-SHA512"),
    Scheme12(0x0807, "ed25519", "ed25519", "ed25519", "Ed25519", None, "EdDSA-Ed25519"),
)  # fmt: skip

# tlslite-ng 0.8's TLS 1.2 client refuses a CertificateRequest that lists
# no RSA scheme ("Server doesn't accept any sigalgs we support", whatever
# its own key): a server narrowed to one scheme also lists this one for it.
TLSLITE_CLIENT_NEEDS = SCHEMES12[2]

# The server keys of the matrix, each with the suite family it serves.
SERVER_KINDS = ("p256", "p384", "ed25519", "rsa2048", "rsapss")


def suite_for_kind(kind: str) -> Suite12:
    return next(s for s in SCHEMES12 if s.kind == kind).suite


# ---- OpenSSL -----------------------------------------------------------------


def openssl_env(conf: Path | None = None) -> dict[str, str]:
    """The environment for an openssl process; `conf` replaces the system's
    openssl.cnf (where Debian may set a minimum protocol or security level)."""
    env = dict(os.environ)
    if conf is not None:
        env["OPENSSL_CONF"] = str(conf)
    return env


NO_EMS_CONF = """\
openssl_conf = openssl_init
[openssl_init]
ssl_conf = ssl_sect
[ssl_sect]
system_default = system_default_sect
[system_default_sect]
Options = -ExtendedMasterSecret
"""


def no_ems_conf(pki: Pki) -> Path:
    """An openssl.cnf that turns extended_master_secret off (RFC 7627)."""
    path = pki.directory / "no-ems.cnf"
    if not path.exists():
        path.write_text(NO_EMS_CONF)
    return path


# What OpenSSL needs to offer TLS 1.1 or 1.0: their SHA-1 and CBC suites
# live below the default security level.
OPENSSL_TLS11 = ("-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0")
OPENSSL_TLS10 = ("-tls1", "-cipher", "DEFAULT@SECLEVEL=0")


def s_client12(
    pki: Pki,
    port: int,
    *,
    suite: Suite12 | None = None,
    group: Group12 | None = None,
    scheme: Scheme12 | None = None,
    client_kind: str | None = "p256",
    versions: Sequence[str] = ("-tls1_2",),
    extra: Sequence[str] = (),
) -> list[str]:
    """`openssl s_client` to 127.0.0.1:`port`, TLS 1.2 only unless `versions`
    says otherwise, verifying the server against the test CA."""
    args = [
        "openssl", "s_client", "-connect", f"127.0.0.1:{port}", *versions,
        "-CAfile", str(pki.ca_path), "-verify_return_error", "-servername", "localhost",
    ]  # fmt: skip
    if suite is not None:
        args += ["-cipher", suite.openssl]
    if group is not None:
        args += ["-groups", group.openssl]
    if scheme is not None:
        args += ["-sigalgs", scheme.openssl]
    if client_kind is not None:
        party = pki.party("client", client_kind)
        args += ["-cert", str(party.cert_path), "-key", str(party.key_path)]
    return args + list(extra)


def s_server12(
    pki: Pki,
    *,
    server_kind: str = "p256",
    suite: Suite12 | None = None,
    group: Group12 | None = None,
    scheme: Scheme12 | None = None,
    client_auth: str | None = "require",
    versions: Sequence[str] = ("-tls1_2",),
    also_accept: Scheme12 | None = None,
    extra: Sequence[str] = (),
) -> list[str]:
    """`openssl s_server` on an ephemeral loopback port for one connection,
    answering each line reversed (-rev). `client_auth`: "require" (-Verify),
    "request" (-verify) or None (no CertificateRequest)."""
    party = pki.party("server", server_kind)
    args = [
        "openssl", "s_server", "-accept", "127.0.0.1:0", "-naccept", "1", *versions,
        "-CAfile", str(pki.ca_path), "-cert", str(party.cert_path), "-key", str(party.key_path),
        "-rev", "-serverpref",
    ]  # fmt: skip
    if client_auth == "require":
        args += ["-Verify", "1", "-verify_return_error"]
    elif client_auth == "request":
        args += ["-verify", "1", "-verify_return_error"]
    if suite is not None:
        args += ["-cipher", suite.openssl]
    if group is not None:
        args += ["-groups", group.openssl]
    if scheme is not None:
        accepted = scheme.openssl
        if also_accept is not None and also_accept != scheme:
            accepted += ":" + also_accept.openssl
        args += ["-sigalgs", scheme.openssl, "-client_sigalgs", accepted]
    return args + list(extra)


# ---- GnuTLS ------------------------------------------------------------------


def gnutls_priority12(
    suite: Suite12 | None = None,
    group: Group12 | None = None,
    scheme: Scheme12 | None = None,
    versions: Sequence[str] = ("TLS1.2",),
    extra: Sequence[str] = (),
) -> str:
    """A GnuTLS priority string: NORMAL narrowed to `versions` and to one
    suite, group or scheme."""
    parts = ["NORMAL", "-VERS-ALL", *("+VERS-" + v for v in versions)]
    if suite is not None:
        parts += ["-KX-ALL", "+" + suite.gnutls_kx, "-CIPHER-ALL", "+" + suite.gnutls_cipher]
    if group is not None:
        parts += ["-GROUP-ALL", "+GROUP-" + group.gnutls]
    if scheme is not None:
        parts += ["-SIGN-ALL", "+SIGN-" + scheme.gnutls.upper()]
        if scheme.kind == "ed25519":
            # With Ed25519 alone, GnuTLS 3.7's TLS 1.2 CertificateRequest has
            # an empty certificate_types, which RFC 5246 §7.4.4 forbids (see
            # test_tls12's test of it); an Ed25519 key still signs Ed25519.
            parts.append("+SIGN-ECDSA-SHA256")
    return ":".join([*parts, *extra])


def gnutls_serv12(
    pki: Pki, prio: str, server_kind: str = "p256", client_auth: str | None = "require"
) -> list[str]:
    """`gnutls-serv --echo` on port 0 (read the port with `listening_port`)."""
    party = pki.party("server", server_kind)
    args = [
        "gnutls-serv", "-p", "0", "--echo", "--x509cafile", str(pki.ca_path),
        "--x509certfile", str(party.cert_path), "--x509keyfile", str(party.key_path),
        "--priority", prio,
    ]  # fmt: skip
    if client_auth == "require":
        args += ["--require-client-cert", "--verify-client-cert"]
    elif client_auth == "request":
        args += ["--verify-client-cert"]
    else:
        args += ["--disable-client-cert"]
    return args


# ---- tlslite-ng --------------------------------------------------------------

TLSLITE_VERSION = {TLS12: (3, 3), TLS13: (3, 4), 0x0302: (3, 2), 0x0301: (3, 1), 0x0300: (3, 0)}


def tlslite_settings12(
    suite: Suite12 | None = None,
    group: Group12 | None = None,
    scheme: Scheme12 | None = None,
    versions: tuple[int, int] = (TLS12, TLS12),
) -> object:
    """tlslite-ng's HandshakeSettings between `versions` (lowest, highest),
    narrowed to one suite, group or scheme. tlslite offers its heartbeat
    extension by default (RFC 6520); it stays on, as a real client has it."""
    from tlslite.api import HandshakeSettings  # type: ignore[import-untyped]

    chosen = HandshakeSettings()
    chosen.minVersion, chosen.maxVersion = (TLSLITE_VERSION[v] for v in versions)
    # As in the TLS 1.3 tests: tlslite 0.8.2 compresses its certificate
    # unasked (RFC 8879), which we do not implement.
    chosen.certificate_compression_send = []
    chosen.certificate_compression_receive = []
    if suite is not None:
        chosen.cipherNames = [suite.tlslite_cipher]
        chosen.keyExchangeNames = [suite.tlslite_kx]
    if group is not None:
        chosen.eccCurves = [group.name]
    else:
        chosen.eccCurves = [g.name for g in GROUPS12]
    # A key share only for an offered group (a TLS 1.3 ClientHello).
    chosen.keyShares = chosen.eccCurves[:1]
    if scheme is not None:
        digest = scheme.digest
        chosen.ecdsaSigHashes = [digest] if scheme.kind in ("p256", "p384") else []
        chosen.rsaSigHashes = [digest] if scheme.rsa_padding else []
        chosen.rsaSchemes = [scheme.rsa_padding] if scheme.rsa_padding else ["pss"]
        chosen.more_sig_schemes = ["Ed25519"] if scheme.kind == "ed25519" else []
    return chosen


def tlslite_credentials(pki: Pki, role: str, kind: str | None) -> tuple[object, object]:
    """tlslite's (certificate chain, private key), or (None, None)."""
    if kind is None:
        return None, None
    from tlslite.api import X509CertChain, parsePEMKey  # type: ignore[import-untyped]

    party = pki.party(role, kind)
    chain = X509CertChain()
    chain.parsePemList(party.cert_path.read_text())
    return chain, parsePEMKey(party.key_path.read_text(), private=True)


# ---- Python's ssl ------------------------------------------------------------


def ssl_context12(
    pki: Pki,
    *,
    server: bool,
    kind: str | None = "p256",
    suite: Suite12 | None = None,
    client_auth: str | None = "require",
    maximum: str = "TLSv1_2",
    minimum: str = "TLSv1_2",
) -> ssl.SSLContext:
    """An `ssl` context between `minimum` and `maximum`, verifying the peer
    against the test CA (a server asks for a client certificate as
    `client_auth` says: "require", "request" or None), with `kind`'s
    certificate if not None."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER if server else ssl.PROTOCOL_TLS_CLIENT)
    with warnings.catch_warnings():
        # TLSv1_1 is deprecated in `ssl`: exactly why it is the refused peer here.
        warnings.simplefilter("ignore", DeprecationWarning)
        context.minimum_version = ssl.TLSVersion[minimum]
        context.maximum_version = ssl.TLSVersion[maximum]
    if minimum < "TLSv1_2":
        context.set_ciphers("DEFAULT@SECLEVEL=0")
    if suite is not None:
        context.set_ciphers(suite.openssl)
    context.load_verify_locations(cafile=str(pki.ca_path))
    if server:
        context.verify_mode = {
            "require": ssl.CERT_REQUIRED,
            "request": ssl.CERT_OPTIONAL,
            None: ssl.CERT_NONE,
        }[client_auth]
    if kind is not None:
        party = pki.party("server" if server else "client", kind)
        context.load_cert_chain(str(party.cert_path), str(party.key_path))
    return context
