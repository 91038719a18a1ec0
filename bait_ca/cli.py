"""`python -m bait_ca ceremony|toy|issue|wallet`: the CA's command line.

Every refusal (non-empty output directory, a key that does not match its
certificate, a name that is neither a DNS name nor an IP address, an
inverted validity period) prints one line to stderr and exits 1 before
anything is written; argparse's own usage errors exit 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography.hazmat.primitives.serialization import Encoding

from bait_ca.ca import DEFAULT_VALIDITY, CertificateAuthority, ceremony, check_validity
from bait_ca.files import OutputError, check_output_dir, write_directory, write_new_file
from bait_ca.issued import Issued
from bait_ca.keys import CLI_KEY_TYPES, parse_key_type
from bait_ca.names import parse_host
from bait_ca.toy_ca import toy_files
from bait_ca.wallet import BitcoinKey


class Refusal(Exception):
    """A request the CA will not carry out; the message says why."""


def _moment(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 date: {text!r}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _validity(args: argparse.Namespace, now: datetime) -> tuple[datetime, datetime]:
    start: datetime = args.not_before or now
    end: datetime = args.not_after or start + timedelta(days=args.days)
    if args.days <= 0:
        raise Refusal("--days must be positive")
    try:
        check_validity(start, end)
    except ValueError as e:
        raise Refusal(str(e)) from None
    return start, end


def _host(text: str) -> str:
    try:
        parse_host(text)
    except ValueError as e:
        raise Refusal(str(e)) from None
    return text


def _ceremony(args: argparse.Namespace) -> None:
    out = Path(args.out)
    check_output_dir(out)
    start, end = _validity(args, datetime.now(UTC))
    result = ceremony(
        _host(args.host),
        now=start,
        not_before=start,
        not_after=end,
        key_type=parse_key_type(args.key_type),
        rsa_pss=args.rsa_pss,
    )
    # The anchor's key stays inside `result.authority`; only certificates and
    # the leaves' keys are written.
    files = {"anchor.pem": result.authority.certificate.public_bytes(Encoding.PEM)}
    for name, leaf in (("server", result.server), ("client", result.client), ("web", result.web)):
        files[f"{name}.pem"] = leaf.pem
        files[f"{name}.key"] = leaf.key_pem
    write_directory(out, files)
    print(f"anchor SHA-256 fingerprint: {result.fingerprint}")
    print(f"wrote {', '.join(files)} to {out}; the CA key is gone")


def _toy(args: argparse.Namespace) -> None:
    out = Path(args.out)
    write_directory(out, toy_files())
    print(f"wrote the toy CA to {out}: every key in it is public and protects nothing")


def _read(path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as e:
        raise Refusal(f"cannot read {path}: {e.strerror}") from None


def _issue(args: argparse.Namespace) -> None:
    out = Path(args.out)
    check_output_dir(out)
    name = _host(args.name)
    try:
        ca = Issued.from_pem(_read(args.ca_cert), _read(args.ca_key))
        authority = CertificateAuthority(ca.certificate, ca.private_key)
    except ValueError as e:
        raise Refusal(f"{args.ca_cert} / {args.ca_key}: {e}") from None
    start, end = _validity(args, datetime.now(UTC))
    leaf = authority.issue(
        args.role,
        name,
        hosts=(name,),
        key_type=parse_key_type(args.key_type),
        not_before=start,
        not_after=end,
        rsa_pss=args.rsa_pss,
    )
    write_directory(out, {f"{args.role}.pem": leaf.pem, f"{args.role}.key": leaf.key_pem})
    print(f"wrote {args.role}.pem and {args.role}.key to {out}")


def _wallet(args: argparse.Namespace) -> None:
    key = BitcoinKey.generate(testnet=args.testnet)
    write_new_file(Path(args.out), key.wif.encode("ascii"))
    print(f"wrote the secret (WIF) to {args.out}; publish these addresses:")
    print(f"p2pkh: {key.p2pkh_address}")
    print(f"p2wpkh: {key.p2wpkh_address}")


def _add_validity(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--days", type=int, default=DEFAULT_VALIDITY.days)
    parser.add_argument("--not-before", type=_moment, help="ISO 8601; default now")
    parser.add_argument("--not-after", type=_moment, help="ISO 8601; default not-before + days")


def _add_keys(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--key-type", choices=CLI_KEY_TYPES, default="p256")
    parser.add_argument("--rsa-pss", action="store_true", help="RSA keys sign with PSS")


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="python -m bait_ca", description=__doc__)
    commands = top.add_subparsers(dest="command", required=True)

    p = commands.add_parser("ceremony", help="mint an anchor whose key is never written")
    p.add_argument("--out", required=True, help="new or empty directory")
    p.add_argument("--host", default="localhost", help="DNS name or IP of the piñata")
    _add_validity(p)
    _add_keys(p)
    p.set_defaults(run=_ceremony)

    p = commands.add_parser("toy", help="rebuild the public toy CA from its seed")
    p.add_argument("--out", required=True, help="new or empty directory")
    p.set_defaults(run=_toy)

    p = commands.add_parser("issue", help="a certificate under a CA whose key you hold")
    p.add_argument("--ca-key", required=True)
    p.add_argument("--ca-cert", required=True)
    p.add_argument("--role", choices=("client", "server"), required=True)
    p.add_argument("--name", required=True, help="DNS name or IP address")
    p.add_argument("--out", required=True, help="new or empty directory")
    _add_validity(p)
    _add_keys(p)
    p.set_defaults(run=_issue)

    p = commands.add_parser("wallet", help="a bitcoin key to be the secret")
    p.add_argument("--out", required=True, help="new file for the WIF (mode 0600)")
    p.add_argument("--testnet", action="store_true")
    p.set_defaults(run=_wallet)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        args.run(args)
    except (Refusal, OutputError) as e:
        print(f"bait_ca: refused: {e}", file=sys.stderr)
        return 1
    return 0
