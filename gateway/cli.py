"""The `recloser` command: serve, check, demo, drill, canary, spend."""

from __future__ import annotations

import argparse
import ipaddress
import logging
import os
import sys
from pathlib import Path

from gateway.metering.prices import unpriced_targets
from gateway.policy.load import LoadedPolicy, PolicyError, load_policy

DEFAULT_POLICY = "policies/default.yaml"


def default_policy_path() -> Path:
    """RECLOSER_POLICY, else policies/default.yaml here, else the copy shipped inside the package.

    `gateway/policies` is a link to the top-level `policies/` folder, so a source checkout and a built
    wheel read the same file.
    """
    env = os.environ.get("RECLOSER_POLICY")
    if env:
        return Path(env)
    here = Path(DEFAULT_POLICY)
    if here.exists():
        return here
    return Path(__file__).resolve().parent / DEFAULT_POLICY


def _load_or_exit(path: Path) -> LoadedPolicy:
    try:
        loaded = load_policy(path, checks=(unpriced_targets,))
    except PolicyError as exc:
        print(f"recloser: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    for warning in loaded.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    return loaded


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def cmd_serve(args: argparse.Namespace) -> int:
    from gateway.serve import serve

    loaded = _load_or_exit(Path(args.policy) if args.policy else default_policy_path())
    if loaded.document.auth is None and not _is_loopback(args.host):
        print(f"recloser: {loaded.source} has no auth section, so the gateway accepts any key and serves "
              f"loopback only; add auth.keys to serve on {args.host}", file=sys.stderr)
        return 2
    watch_s = args.watch_seconds if args.watch_seconds > 0 else None
    if args.workers > 1 and not args.worker:
        from gateway.workers import supervise

        return supervise(loaded.source, args.host, args.port, args.workers,
                         extra=["--watch-seconds", str(args.watch_seconds)])
    return serve(loaded, args.host, args.port, reuse_port=args.worker, open_ok=_is_loopback(args.host),
                 watch_policy_s=watch_s, supervised=args.worker)


def cmd_check(args: argparse.Namespace) -> int:
    for file in args.files:
        try:
            loaded = load_policy(file, checks=(unpriced_targets,))
        except PolicyError as exc:
            print(f"{exc}", file=sys.stderr)
            return 1
        for warning in loaded.warnings:
            print(f"warning: {warning}")
        doc = loaded.document
        print(f"{file}: ok ({len(doc.providers)} providers, {len(doc.routes)} routes)")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from gateway.demo import run_demo

    return run_demo(_load_or_exit(Path(args.policy) if args.policy else default_policy_path()))


def cmd_drill(args: argparse.Namespace) -> int:
    from gateway.drill import run_drill

    return run_drill(rate_per_s=args.rate, phase_s=args.phase_seconds)


def cmd_canary(args: argparse.Namespace) -> int:
    from gateway.quality.cli import run_canary

    return run_canary(_load_or_exit(Path(args.policy) if args.policy else default_policy_path()), args.deployment)


def cmd_spend(argv: list[str]) -> int:
    from gateway.metering.spend import main as spend

    return spend(argv)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="recloser", description="An OpenAI-compatible gateway that rides out "
                                "provider brownouts.")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("serve", help="serve the OpenAI-compatible API")
    s.add_argument("--policy", help=f"routing policy file (default: {DEFAULT_POLICY})")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=8080)
    s.add_argument("--workers", type=int, default=1, help="processes sharing the port (default 1)")
    s.add_argument("--watch-seconds", type=float, default=1.0,
                   help="how often the policy file is checked for changes (0: only SIGHUP and POST /admin/reload)")
    s.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)  # a supervised worker
    s.set_defaults(func=cmd_serve)

    c = sub.add_parser("check", help="validate policy files without serving")
    c.add_argument("files", nargs="+")
    c.set_defaults(func=cmd_check)

    d = sub.add_parser("demo", help="run the gateway on simulated providers and show failover")
    d.add_argument("--policy", help=f"routing policy file (default: {DEFAULT_POLICY})")
    d.set_defaults(func=cmd_demo)
    r = sub.add_parser("drill", help="rehearse a provider brownout on loopback, breakers on and off")
    r.add_argument("--rate", type=float, default=30.0, help="streams per second (default 30)")
    r.add_argument("--phase-seconds", type=float, default=6.0, help="length of each phase (default 6)")
    r.set_defaults(func=cmd_drill)

    q = sub.add_parser("canary", help="run the quality canaries once against every deployment and print a table")
    q.add_argument("--policy", help=f"routing policy file (default: {DEFAULT_POLICY})")
    q.add_argument("--deployment", metavar="PROVIDER/MODEL", help="only this deployment")
    q.set_defaults(func=cmd_canary)

    sub.add_parser("spend", help="totals of cost and tokens from the spend ledger (see: recloser spend -h)")
    return p


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=os.environ.get("RECLOSER_LOG_LEVEL", "WARNING"),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["spend"]:  # its own parser: `recloser spend --ledger FILE [--by …] [--json]`
        return cmd_spend(argv[1:])
    args = parser().parse_args(argv)
    return int(args.func(args))
