"""`python -m unikernel build|run|launch|policy`: the unikernel's command line."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from unikernel import manifest as mf


def _launch(args: argparse.Namespace) -> int:
    from pinata.appliance.settings import ConfigError
    from unikernel import launcher, sandbox

    layers = sandbox.LAYERS if args.layers is None else frozenset(args.layers.split(","))
    if not layers <= sandbox.LAYERS:
        print(f"unikernel: unknown layer in {args.layers!r}", file=sys.stderr)
        return 2
    try:
        m = mf.load(Path(args.manifest))
    except mf.ManifestError as e:
        print(f"unikernel: {e}", file=sys.stderr)
        return 2
    software = Path(args.software) if args.software else None
    try:
        return launcher.launch(m, software_path=software, probe_attempts=args.probe,
                               layers=layers)
    except (mf.ManifestError, ValueError, sandbox.WeakerThanPromised,
            launcher.PreloadError) as e:
        # Refused before the fork: an unreadable boot file, an unknown probe attempt.
        print(f"unikernel: {e}", file=sys.stderr)
        return 2
    except ConfigError as e:
        # A credential the appliance's own checks refuse (say, a key not the leaf's).
        print(f"unikernel: boot: {e}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace) -> int:
    from unikernel import image

    try:
        return image.run(Path(args.image), Path(args.manifest) if args.manifest else None)
    except image.ImageError as e:
        print(f"unikernel: {e}", file=sys.stderr)
        return 2


def _build(args: argparse.Namespace) -> int:
    from unikernel import image

    cache = Path(args.cache).expanduser() if args.cache else image.WHEEL_CACHE
    built = image.build(args.kind, Path(args.out), cache=cache, source=Path(args.source))
    print(f"{built.sha256}  {built.path}")
    print(f"{built.size} bytes", file=sys.stderr)
    return 0


def _policy(args: argparse.Namespace) -> int:
    from unikernel import seccomp

    arch = seccomp.host_arch()
    rules = seccomp.policy(arch, (1, 2, 3), (4,))
    program = seccomp.compile_filter(arch, rules)
    for rule in rules:
        checks = "; ".join(
            f"arg{c.index}{' high' if c.high else ''}"
            f"{'' if c.mask == 0xFFFFFFFF else f' & {c.mask:#x}'}"
            f" {'in' if c.allow else 'not in'} {sorted(c.values)}"
            for c in rule.checks
        )
        verdict = "to the tender" if rule.tender else "allowed"
        print(f"{rule.syscall:14} {verdict:13} {checks or '-'}\n{'':14} {rule.reason}")
    names = {rule.syscall for rule in rules}
    print(f"{len(names)} system calls, {len(program) // 8} BPF instructions ({arch.name})")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m unikernel", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("build", help="build the toy or real image: one reproducible tarball")
    p.add_argument("kind", choices=("toy", "real"))
    p.add_argument("--out", required=True, help="directory for the tarball")
    p.add_argument("--cache", help="wheel cache (default ~/.cache/pinata-unikernel)")
    p.add_argument("--source", default=str(Path(__file__).resolve().parent.parent),
                   help="the checkout whose packages go in (default: this one)")
    p.set_defaults(func=_build)

    p = sub.add_parser("run", help="unpack an image (or use an unpacked one) and launch it")
    p.add_argument("image", help="the .tar.gz, or a directory it was unpacked into")
    p.add_argument("--manifest", help="default: the image's own manifest.toml")
    p.set_defaults(func=_run)

    p = sub.add_parser("launch", help="launch from this environment (what `run` does inside)")
    p.add_argument("--manifest", required=True)
    p.add_argument("--software", help="the image's software.json")
    p.add_argument("--probe", action="append", default=[], help="probe attempt (repeatable)")
    p.add_argument("--layers", help="for tests: the layers to apply (default all: "
                   "seccomp,landlock,landlock-net,identity)")
    p.set_defaults(func=_launch)

    p = sub.add_parser("policy", help="print the system-call allowlist")
    p.set_defaults(func=_policy)

    args = parser.parse_args(argv)
    status: int = args.func(args)
    return status


if __name__ == "__main__":
    sys.exit(main())
