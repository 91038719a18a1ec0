"""`pinata`: run the toy or a real appliance, watch it talk to itself, benchmark it."""

# A command's own machinery is imported when that command runs: `pinata toy`
# imports the appliance and nothing of `pinata try` (the engine's client side
# in the attacker's seat, urllib and http.client for the record), the worker
# supervisor or the benchmarks, all of which it would otherwise hold for as
# long as it serves (issue 18: RSS at rest, time to the first answer).

from __future__ import annotations

import argparse
import importlib
import json
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import trio

from pinata.appliance import ConfigError, load_config, run, toy_settings
from pinata.appliance.selftalk import RelayResult, relay
from pinata.appliance.settings import ApplianceSettings, parse_trusted_proxies
from pinata.secret import Secret
from pinata.tls.constants import TLS12, version_name

SELFTALK_TIMEOUT = 15.0


def _versions_note(versions: tuple[int, ...]) -> str:
    names = " and ".join(version_name(v) for v in versions)
    if TLS12 in versions and len(versions) > 1:
        return (f"  (the piñata speaks {names}: add --tls-version 1.2 to any of these, "
                "or -tls1_2 to OpenSSL, to play over TLS 1.2)")
    return f"  (the piñata speaks {names} only)"


def how_to_reach(settings: ApplianceSettings) -> str:
    """How to play each port: `pinata try` first, then the same with OpenSSL alone."""
    files = dict(settings.credential_files)
    host, p = settings.address, settings.ports
    anchor = files.get("anchor", "<anchor.pem>")
    ccert, ckey = files.get("client_cert", "<client.pem>"), files.get("client_key", "<client.key>")
    scert, skey = files.get("server_cert", "<server.pem>"), files.get("server_key", "<server.key>")
    offset = p.tls_server - 10000
    where = f" --host {host}" + (f" --port-offset {offset}" if offset else "")
    return "\n".join([
        f"pinata: serving on {host} (Ctrl-C stops it)",
        "",
        "play each port with our own engine in your seat (prints both sides of the story):",
        f"  pinata try 10000{where} --toy    # present the toy client certificate",
        f"  pinata try 10001{where} --toy    # listen on {p.connect_back_target}, knock, "
        "serve the toy server certificate",
        f"  pinata try 10002{where} --toy    # be the TLS server on your own connection",
        f"  pinata try 10000{where} --forge expired_leaf    # watch a refusal "
        "(pinata try --help lists the forgeries)",
        _versions_note(settings.tls_versions),
        "",
        "the same with OpenSSL alone:",
        f"  port {p.tls_server}:",
        f"    openssl s_client -connect {host}:{p.tls_server} -cert {ccert} -key {ckey} "
        f"-CAfile {anchor}",
        f"  port {p.connect_back}: in one terminal, serve the toy server certificate on port "
        f"{p.connect_back_target}:",
        f"    openssl s_server -accept {p.connect_back_target} -naccept 1 -cert {scert} "
        f"-key {skey} -CAfile {anchor}",
        "  then knock from another (it fails at once: the piñata closes; that is the knock):",
        f"    openssl s_client -connect {host}:{p.connect_back} </dev/null",
        f"  port {p.tls_client}: OpenSSL cannot be the TLS server on a connection it opened, so "
        "this port needs `pinata try 10002`, or a TCP relay from it to a local "
        "openssl s_server.",
        "",
        f"web page: http://{host}:{p.http}/  and  https://{host}:{p.https}/ "
        f"(openssl s_client -connect {host}:{p.https} -CAfile {anchor})",
        f"self-talk: pinata selftalk --address {host}"
        + (f" --port-offset {offset}" if offset else ""),
    ])


def _toy(args: argparse.Namespace) -> int:
    settings = toy_settings(address=args.address, port_offset=args.port_offset)
    if args.trusted_proxy:
        try:
            proxies = parse_trusted_proxies(args.trusted_proxy, "--trusted-proxy")
        except ConfigError as exc:
            print(f"pinata toy: refused: {exc}", file=sys.stderr)
            return 2
        settings = replace(settings, trusted_proxies=proxies)
    if args.instructions_only:
        # For `make toy`, which runs the same toy inside the unikernel launcher.
        print(how_to_reach(settings), flush=True)
        return 0
    print(how_to_reach(settings), file=sys.stderr, flush=True)
    run(settings)
    return 0


def _serve(args: argparse.Namespace) -> int:
    try:
        settings = load_config(args.config)
    except ConfigError as exc:
        print(f"pinata serve: refused: {exc}", file=sys.stderr)
        return 2
    from pinata.appliance import workers

    return workers.run(settings)


def _selftalk(args: argparse.Namespace) -> int:
    defaults = toy_settings(address=args.address, port_offset=args.port_offset)
    ports = replace(
        defaults.ports,
        **{name: getattr(args, f"{name}_port") for name in ("tls_client", "tls_server", "http")
           if getattr(args, f"{name}_port") is not None},
    )
    if args.secret_file:
        secret = Secret(Path(args.secret_file).read_bytes())
        secret_source = args.secret_file
    else:
        secret, secret_source = defaults.secret, "the toy's dummy secret"
    try:
        result: RelayResult = trio.run(
            relay, args.address, ports.tls_client, ports.tls_server, SELFTALK_TIMEOUT
        )
    except OSError as exc:
        print(f"pinata selftalk: cannot reach the appliance: {exc}", file=sys.stderr)
        return 2
    carried = result.carried(secret)
    print(f"relay between port {ports.tls_client} (piñata as client) and port "
          f"{ports.tls_server} (piñata as server){' - timed out' if result.timed_out else ''}")
    for leg in result.legs:
        print(f"\n{leg.name}: {leg.total} bytes")
        for record in leg.tap.records:
            messages = record.get("messages")
            suffix = f"  {', '.join(map(str, messages))}" if isinstance(messages, list) else ""
            print(f"  {record['type']:<20} {record['length']:>6}{suffix}")
        if leg.tap.dropped:
            print(f"  ... {leg.tap.dropped} more records")
    from pinata.trial.record import fetch_own_record

    for title, port, listener in (
            ("the piñata as TLS client (port 10002 side)", result.client_leg_port, "tls_client"),
            ("the piñata as TLS server (port 10000 side)", result.server_leg_port, "tls_server")):
        print(f"\nhandshake trace, {title}:")
        print(json.dumps(fetch_own_record(args.address, ports.http, port, listener), indent=2))
    verdict = "APPEARED in" if carried else "never appeared in"
    print(f"\nthe secret's plaintext ({secret_source}) {verdict} the relayed bytes")
    return 1 if carried or result.timed_out else 0


def _bench(argv: Sequence[str]) -> int:
    try:
        bench = importlib.import_module("pinata.bench")
    except ModuleNotFoundError as exc:
        if exc.name not in ("pinata.bench", "pinata"):
            raise
        print("pinata bench: the benchmark module (pinata.bench) is not installed", file=sys.stderr)
        return 2
    code = bench.main(list(argv))
    return int(code) if isinstance(code, int) else 0


TRY_HELP = "play one port with our engine in the attacker's seat"


def _try(argv: Sequence[str]) -> int:
    from pinata.trial import command as try_command

    play = argparse.ArgumentParser(prog="pinata try", description=TRY_HELP)
    try_command.add_arguments(play)
    return try_command.run(play.parse_args(list(argv)))


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="pinata", description=__doc__)
    commands = top.add_subparsers(dest="command", required=True)

    def placement(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--address", default="127.0.0.1", help="address to bind or reach")
        sub.add_argument("--port-offset", type=int, default=0,
                         help="add this to every port (10000, ..., 8080, 8443, 40001)")

    toy = commands.add_parser("toy", help="serve the toy appliance (toy CA, dummy secret)")
    placement(toy)
    toy.add_argument("--instructions-only", action="store_true",
                     help="print how to reach each port with the toy credentials, and exit")
    toy.add_argument("--trusted-proxy", action="append", metavar="NETWORK", default=[],
                     help="believe PROXY protocol headers from this network (repeatable)")
    serve = commands.add_parser("serve", help="serve a real deployment from a TOML config")
    serve.add_argument("--config", required=True, type=Path)
    selftalk = commands.add_parser("selftalk", help="relay the piñata to itself and show it")
    placement(selftalk)
    selftalk.add_argument("--secret-file", help="the secret to look for (default: the toy's)")
    for name in ("tls_client", "tls_server", "http"):
        selftalk.add_argument(f"--{name.replace('_', '-')}-port", type=int,
                              help="this port instead of the default plus offset")
    # `try` and `bench` parse their own arguments (`_try`, `_bench`), after importing
    # what they run; here they are only named, for `pinata --help`.
    commands.add_parser("try", help=TRY_HELP, add_help=False)
    commands.add_parser("bench", help="benchmarks (pinata.bench)", add_help=False)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    """`pinata COMMAND ...`: takes the arguments (default `sys.argv[1:]`); returns the
    exit status."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    own_parsers = {"bench": _bench, "try": _try}
    if args_list[:1] and args_list[0] in own_parsers:
        return own_parsers[args_list[0]](args_list[1:])
    args = parser().parse_args(args_list)
    handlers = {"toy": _toy, "serve": _serve, "selftalk": _selftalk}
    return handlers[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
