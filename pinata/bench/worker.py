"""`python -m pinata.bench.worker ROLE ...`: one side of a benchmark, in its
own process. Servers print `{"port": ...}` once listening and serve until
SIGTERM; clients answer JSON commands on stdin (see `clients`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    if argv[:1] == ["abuse-attacker"]:
        from pinata.bench import attacks

        attacks.main(argv[1:])
        return 0
    parser = argparse.ArgumentParser(prog="python -m pinata.bench.worker")
    parser.add_argument("role", choices=("server-ours", "server-ssl", "server-tlslite",
                                         "server-plain", "server-appliance",
                                         "server-ssl-secret", "client-ssl", "client-ours",
                                         "client-plain", "appliance", "staller",
                                         "abuse-appliance"))
    parser.add_argument("--pki", type=Path)
    parser.add_argument("--suite", choices=("aes128gcm", "chacha20"))
    parser.add_argument("--group", default="x25519")
    parser.add_argument("--profile", type=Path)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--max-connections", type=int, default=1024)
    parser.add_argument("--trace-allocations", action="store_true")
    parser.add_argument("--validation-threads", type=int)
    parser.add_argument("--appliance-transport", action="store_true",
                        help="server-ours, server-plain: on the appliance's SocketTransport")
    parser.add_argument("--tls12", action="store_true",
                        help="Python's ssl, client or server: TLS 1.2 (the client: only)")
    args = parser.parse_args(argv)
    # Each role imports only what it runs, so a server's memory and start-up
    # are its own.
    if args.role == "server-ours":
        from pinata.bench import servers

        servers.run_trio_server(servers.ours_handler(args.pki, args.suite), args.profile,
                                appliance_transport=args.appliance_transport)
    elif args.role == "server-ssl":
        from pinata.bench import servers

        servers.run_trio_server(servers.ssl_handler(args.pki, tls12=args.tls12))
    elif args.role == "server-appliance":
        from pinata.bench import servers

        servers.run_appliance_server(args.profile, args.validation_threads)
    elif args.role == "server-ssl-secret":
        from pinata.bench import servers

        servers.run_trio_server(servers.ssl_secret_handler(args.pki))
    elif args.role == "server-plain":
        from pinata.bench import servers

        servers.run_trio_server(servers.plain_handler(),
                                appliance_transport=args.appliance_transport)
    elif args.role == "client-plain":
        from pinata.bench import clients

        clients.serve_commands(clients.PlainClient())
    elif args.role == "server-tlslite":
        from pinata.bench import servers

        servers.run_tlslite_server(args.pki)
    elif args.role == "client-ssl":
        from pinata.bench import clients

        clients.serve_commands(clients.SSLClient(args.pki, tls12=args.tls12))
    elif args.role == "client-ours":
        from pinata.bench import clients
        from pinata.tls.constants import NamedGroup

        clients.serve_commands(clients.OurClient(args.pki, NamedGroup[args.group]))
    elif args.role == "abuse-appliance":
        from pinata.bench.abuse import run_appliance as run_abused

        run_abused(args.port)
    elif args.role == "appliance":
        from pinata.bench.stall import run_appliance

        run_appliance(args.max_connections, args.trace_allocations)
    else:
        from pinata.bench.stall import serve_stall_commands

        serve_stall_commands(args.port)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
