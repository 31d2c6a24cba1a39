"""The `recloser` command: serve, check, simulate, import-litellm, demo, drill, canary, spend."""

from __future__ import annotations

import argparse
import ipaddress
import os
import sys
from pathlib import Path

from gateway.core.logs import FORMATS, LEVELS
from gateway.core.logs import configure as configure_logging
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
    from gateway.serving.serve import serve

    loaded = _load_or_exit(Path(args.policy) if args.policy else default_policy_path())
    if loaded.document.auth is None and not _is_loopback(args.host):
        print(f"recloser: {loaded.source} has no auth section, so the gateway accepts any key and serves "
              f"loopback only; add auth.keys to serve on {args.host}", file=sys.stderr)
        return 2
    watch_s = args.watch_seconds if args.watch_seconds > 0 else None
    if args.metrics_port is not None and not _is_loopback(args.metrics_host) and loaded.document.auth is None:
        print(f"recloser: {loaded.source} has no auth section; /metrics stays on loopback", file=sys.stderr)
        return 2
    if args.workers > 1 and not args.worker:
        from gateway.serving.workers import Listeners, supervise

        return supervise(loaded.source, Listeners(args.host, args.port, args.metrics_host, args.metrics_port),
                         args.workers, loaded.document.limits.shutdown_grace_s,
                         extra=["--watch-seconds", str(args.watch_seconds), "--log-level", args.log_level,
                                "--log-format", args.log_format])
    return serve(loaded, args.host, args.port, reuse_port=args.worker, open_ok=_is_loopback(args.host),
                 watch_policy_s=watch_s, supervised=args.worker, metrics_host=args.metrics_host,
                 metrics_port=args.metrics_port)


def cmd_check(args: argparse.Namespace) -> int:
    from gateway.commands.advice import unwise

    for file in args.files:
        try:
            loaded = load_policy(file, checks=(unpriced_targets, unwise))
        except PolicyError as exc:
            print(f"{exc}", file=sys.stderr)
            return 1
        for warning in loaded.warnings:
            print(f"warning: {warning}")
        doc = loaded.document
        print(f"{file}: ok ({len(doc.providers)} providers, {len(doc.routes)} routes)")
    return 0


def cmd_simulate(args: argparse.Namespace) -> int:
    from gateway.commands.simulate import report, simulate, unknown_names

    loaded = _load_or_exit(Path(args.policy) if args.policy else default_policy_path())
    down = frozenset(p for p in args.down.split(",") if p)
    slow = frozenset(p for p in (args.slow or "").split(",") if p)
    unknown = unknown_names(loaded.document, down | slow)
    if unknown:
        print(f"recloser: {loaded.source} has no provider {', '.join(unknown)} "
              f"(known: {', '.join(sorted(loaded.document.providers))})", file=sys.stderr)
        return 2
    print(report(simulate(loaded.document, down, slow), down, slow))
    return 0


def cmd_import_litellm(args: argparse.Namespace) -> int:
    from gateway.commands.litellm_import import import_config, load_config, render

    try:
        config = load_config(Path(args.config).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:  # YAML errors are ValueErrors too
        print(f"recloser: {args.config}: {exc}", file=sys.stderr)
        return 2
    imported = import_config(config, args.config)
    for warning in imported.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    text = render(imported, args.config)
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from gateway.commands.demo import run_demo

    return run_demo(_load_or_exit(Path(args.policy) if args.policy else default_policy_path()))


def cmd_drill(args: argparse.Namespace) -> int:
    if args.agents:
        from gateway.commands.agent_drill import run_agent_drill

        return run_agent_drill(Path(args.clients) if args.clients else None, args.sessions,
                               args.phase_seconds or 15.0, args.outage_seconds)
    from gateway.commands.drill_plan import choose_settings
    from gateway.commands.drill_runner import run_drill

    settings = choose_settings(args.full, args.rate, args.phase_seconds)
    return run_drill(settings, chart=Path(args.chart) if args.chart else None)


def cmd_canary(args: argparse.Namespace) -> int:
    from gateway.commands.canary_cli import run_canary

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
    s.add_argument("--log-level", choices=LEVELS, default=os.environ.get("RECLOSER_LOG_LEVEL", "warning").lower(),
                   help="info logs one line per request (default: warning, or $RECLOSER_LOG_LEVEL)")
    s.add_argument("--log-format", choices=FORMATS, default=os.environ.get("RECLOSER_LOG_FORMAT", "text"),
                   help="json: one JSON object per line (default: text, or $RECLOSER_LOG_FORMAT)")
    s.add_argument("--metrics-port", type=int, help="serve /metrics on this port only, not on the API port")
    s.add_argument("--metrics-host", default="127.0.0.1", help="address of the metrics listener (default loopback)")
    s.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)  # a supervised worker
    s.set_defaults(func=cmd_serve)

    c = sub.add_parser("check", help="validate policy files without serving")
    c.add_argument("files", nargs="+")
    c.set_defaults(func=cmd_check)

    m = sub.add_parser("simulate", help="dry run: where traffic goes if providers go down or slow (no network)")
    m.add_argument("--policy", help=f"routing policy file (default: {DEFAULT_POLICY})")
    m.add_argument("--down", required=True, help="providers that are down, comma-separated; PROVIDER@HOST:PORT "
                   "for one endpoint of a pool (a sim pool's: PROVIDER@1 … PROVIDER@N)")
    m.add_argument("--slow", help="providers that are browning out (slow first tokens), comma-separated")
    m.set_defaults(func=cmd_simulate)

    i = sub.add_parser("import-litellm", help="print a policy equivalent to a LiteLLM proxy config")
    i.add_argument("config", help="the LiteLLM proxy's config.yaml")
    i.add_argument("-o", "--output", help="write the policy here instead of printing it")
    i.set_defaults(func=cmd_import_litellm)

    d = sub.add_parser("demo", help="run the gateway on simulated providers and show failover")
    d.add_argument("--policy", help=f"routing policy file (default: {DEFAULT_POLICY})")
    d.set_defaults(func=cmd_demo)
    r = sub.add_parser("drill", help="rehearse a provider brownout on loopback, breakers on and off")
    r.add_argument("--rate", type=float, help="streams per second (default 20; 30 with --full)")
    r.add_argument("--phase-seconds", type=float, help="length of each phase (default 4; 6 with --full)")
    r.add_argument("--full", action="store_true",
                   help="the long drill: 6 s phases, each run alone, one after another (about 2.5 min)")
    r.add_argument("--chart", metavar="FILE.png|svg",
                   help="draw success, latency and traffic share per phase, breakers on against off (needs matplotlib)")
    r.add_argument("--agents", action="store_true",
                   help="released Claude Code and Codex sessions through an incident: their subscription's auth "
                        "refused, every frontier target down, then the local pool too, then recovery (needs both CLIs)")
    r.add_argument("--clients", metavar="DIR", help="--agents: the folder holding the `claude` and `codex` launchers")
    r.add_argument("--sessions", type=int, default=2, help="--agents: sessions of each CLI (default 2)")
    r.add_argument("--outage-seconds", type=float, default=30.0,
                   help="--agents: how long nothing answers, longer than the clients' own retries (default 30)")
    r.set_defaults(func=cmd_drill)

    q = sub.add_parser("canary", help="run the quality canaries once against every deployment and print a table")
    q.add_argument("--policy", help=f"routing policy file (default: {DEFAULT_POLICY})")
    q.add_argument("--deployment", metavar="PROVIDER/MODEL", help="only this deployment")
    q.set_defaults(func=cmd_canary)

    sub.add_parser("spend", help="totals of cost and tokens from the spend ledger (see: recloser spend -h)")
    return p


def main(argv: list[str] | None = None) -> int:
    configure_logging(os.environ.get("RECLOSER_LOG_LEVEL", "warning"), os.environ.get("RECLOSER_LOG_FORMAT", "text"))
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["spend"]:  # its own parser: `recloser spend --ledger FILE [--by …] [--json]`
        return cmd_spend(argv[1:])
    args = parser().parse_args(argv)
    if args.command == "serve":
        configure_logging(args.log_level, args.log_format)
    return int(args.func(args))
