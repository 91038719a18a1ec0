"""The `pinata try` command line: arguments, credentials, and what is printed."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from bait_ca import forge
from bait_ca import toy as bait_ca_toy
from pinata.appliance.settings import (
    TLS_VERSIONS,
    ConfigError,
    credentials_from_pem,
    parse_tls_versions,
)
from pinata.tls.config import Credentials
from pinata.trial.play import PORT_ROLES, Trial, TrialResult, play
from pinata.trial.record import fetch_own_record

HTTP_PORT = 8080
FORGE_KINDS = tuple(sorted(forge.HOSTILE))
# What we present on each port: a client chain to the server on 10000, a
# server chain to the piñata-as-client on 10001 and 10002.
ROLE_OF_PORT: dict[int, forge.Role] = {10000: "client", 10001: "server", 10002: "server"}


def add_arguments(sub: argparse.ArgumentParser) -> None:
    """The `try` subcommand's arguments, on the parser `pinata` made for it."""
    sub.add_argument("port", type=int, choices=sorted(PORT_ROLES),
                     help="which port to play: 10000 (TLS server), 10001 (connect-back), "
                          "10002 (TLS client); the offset is added")
    sub.add_argument("--host", default="127.0.0.1", help="the piñata's address (numeric)")
    sub.add_argument("--port-offset", type=int, default=0,
                     help="the offset the appliance runs with (every port, 8080 and 40001 too)")
    sub.add_argument("--cert", type=Path, help="our certificate chain (PEM, leaf first)")
    sub.add_argument("--key", type=Path, help="the leaf's private key (PEM)")
    sub.add_argument("--chain", type=Path, nargs="+", default=[],
                     help="more PEM certificates to send after --cert's")
    sub.add_argument("--toy", action="store_true",
                     help="use the toy researcher credentials (bait_ca/toy/researcher-*)")
    sub.add_argument("--forge", choices=FORGE_KINDS, metavar="KIND",
                     help="send one of bait_ca.forge's hostile chains, built under the toy "
                          "CA: " + ", ".join(FORGE_KINDS))
    sub.add_argument("--timeout", type=float, default=20.0, help="seconds for the whole try")
    sub.add_argument("--http-port", type=int,
                     help="the appliance's HTTP port, for its record (default 8080 + offset)")
    sub.add_argument("--listen-port", type=int,
                     help="10001 only: where to wait for the piñata (default 40001 + offset)")
    sub.add_argument("--tls-version", choices=sorted(TLS_VERSIONS, reverse=True),
                     help="offer (or, as the server, accept) only this version; "
                          "default: both, and the highest common one is negotiated")
    sub.add_argument("--json", action="store_true", help="print one JSON object")


def credentials(args: argparse.Namespace) -> tuple[Credentials, str]:
    """What we present, and where it came from; ConfigError names a bad flag."""
    role = ROLE_OF_PORT[args.port]
    chosen = [name for name in ("cert", "toy", "forge") if getattr(args, name)]
    if len(chosen) != 1:
        raise ConfigError("--cert/--toy/--forge", "give exactly one of them")
    if args.forge:
        toy = bait_ca_toy.load()
        forged = forged_chain(args.forge, toy.anchor, role)
        return Credentials(forged.chain, forged.private_key), (
            f"forged chain {args.forge}: {forged.defect}")
    if args.toy:
        toy = bait_ca_toy.load()
        issued = toy.researcher_client if role == "client" else toy.researcher_server
        return Credentials((issued.der,), issued.private_key), (
            f"the toy researcher {role} certificate")
    if args.key is None:
        raise ConfigError("--key", "required with --cert")
    try:
        chain_pem = args.cert.read_bytes() + b"".join(p.read_bytes() for p in args.chain)
        key_pem = args.key.read_bytes()
    except OSError as exc:
        raise ConfigError("--cert/--key/--chain", f"cannot read {exc.filename}") from None
    creds = credentials_from_pem(chain_pem, key_pem, "--cert", "--key")
    return Credentials(creds.chain, creds.private_key), str(args.cert)


def forged_chain(kind: str, ca: forge.Issued, role: forge.Role) -> forge.ForgedChain:
    """`--forge KIND`'s chain (one of `FORGE_KINDS`) under `ca`, for `role`."""
    # HOSTILE's entries build client chains; the same builders take a role.
    if kind == "self_signed_leaf":
        return forge.self_signed_leaf(role)
    if kind == "long_chain":
        return forge.long_chain(ca, 20, role)
    if kind == "junk_bag":
        return forge.junk_bag(ca, 50, role)
    builder = getattr(forge, kind)
    forged: forge.ForgedChain = builder(ca, role)
    return forged


def report(trial: Trial, presented: str, result: TrialResult,
           record: dict[str, object] | None) -> dict[str, object]:
    """Everything `pinata try` shows, as one JSON-able object."""
    out: dict[str, object] = {
        "port": trial.target_port, "role": trial.role, "host": trial.host,
        "presented": presented, "outcome": result.outcome,
    }
    for key in ("alert", "alert_sent_by", "reason", "version", "cipher_suite", "source_port"):
        value = getattr(result, key)
        if value is not None:
            out[key] = value
    if result.peer_subjects:
        out["piñata_chain_subjects"] = list(result.peer_subjects)
    if result.received:
        out["received"] = result.received.decode("utf-8", "replace")
    out["trace"] = result.trace
    if record is not None:
        out["appliance_record"] = record
    return out


RECORD_FIELDS = ("unavailable", "listener", "port", "outcome", "group", "alert", "detail",
                 "version", "cipher_suite", "peer_chain")


def _trace_lines(trace: list[dict[str, object]]) -> list[str]:
    lines = []
    for entry in trace:
        details = ", ".join(f"{k}={v}" for k, v in entry.items() if k not in ("kind", "what"))
        lines.append(f"  {entry.get('kind', '')!s:<9} {entry.get('what', '')!s:<22} {details}")
    return lines


def render_text(shown: dict[str, object], result: TrialResult) -> str:
    """The human-readable report."""
    lines = [f"pinata try: port {shown['port']} on {shown['host']} ({shown['role']}), "
             f"presenting {shown['presented']}", "", "our side's handshake trace:"]
    lines += _trace_lines(result.trace)
    lines.append("")
    if result.secret_received:
        lines += [f"SECRET RECEIVED ({len(result.received)} bytes) over {result.version}:",
                  f"  {shown['received']}"]
    elif result.alert is not None:
        lines.append(f"REFUSED: {result.alert_sent_by} sent the alert {result.alert}"
                     f" ({result.reason})")
    else:
        lines.append(f"NO SECRET: {result.outcome}" + (f" ({result.reason})" if result.reason
                                                         else ""))
    record = shown.get("appliance_record")
    if isinstance(record, dict):
        lines += ["", f"the appliance's record of this connection (our source port "
                  f"{shown.get('source_port')}; all of it with --json):"]
        lines += [f"  {key}: {record[key]}" for key in RECORD_FIELDS if key in record]
        trace = record.get("trace")
        if isinstance(trace, list):
            lines += ["its handshake trace:", *_trace_lines(trace)]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """`pinata try`: 0 when the secret was received, 1 when not, 2 when it could not try."""
    try:
        creds, presented = credentials(args)
    except (ConfigError, ValueError) as exc:
        print(f"pinata try: {exc}", file=sys.stderr)
        return 2
    versions = parse_tls_versions(
        [args.tls_version] if args.tls_version else list(TLS_VERSIONS), "--tls-version")
    trial = Trial(port=args.port, host=args.host, port_offset=args.port_offset,
                  credentials=creds, timeout=args.timeout, listen_port=args.listen_port,
                  versions=versions)
    try:
        result = play(trial)
    except OSError as exc:
        print(f"pinata try: cannot reach port {trial.target_port} on {trial.host}: "
              f"{exc.strerror or exc}", file=sys.stderr)
        return 2
    record = None
    if result.source_port is not None:
        http_port = args.http_port or HTTP_PORT + args.port_offset
        record = fetch_own_record(args.host, http_port, result.source_port, trial.role)
    shown = report(trial, presented, result, record)
    print(json.dumps(shown, indent=2) if args.json else render_text(shown, result))
    return 0 if result.secret_received else 1
