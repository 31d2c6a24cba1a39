"""The gateway's own overhead, measured side by side with LiteLLM's proxy, on this machine.

    python tests/perf/bench.py [--litellm] [--tracing] [--quick] [--workers-check] [--soak-minutes N]
                               [--answer-checks-off] [--failover] [--failover-only] [--write-docs]

A fast fake upstream and the load generator share core 1; each gateway in turn gets core 0 to
itself (`taskset`). A traced gateway's span-export process would inherit that pin; it is let run on
any core instead, as nothing pins it in a deployment (`--export-pinned` keeps it on core 0). "direct" is the load generator straight to the fake upstream: what a gateway
adds is its latency minus direct's at the same rate. Prints one table; never asserts a number.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))

from loadgen import BENCH_KEY, Pool, Result, build_request, closed_loop, open_loop, percentile  # noqa: E402
from procs import Proc, connections_to, cpu_seconds, family, open_fds, status_kb  # noqa: E402
from bench_report import Measures, ms, table, write_docs, write_failover_docs  # noqa: E402
from report import machine, render  # noqa: E402

GATEWAY_CORE, LOAD_CORE = "0", "1"
CHAT = {"model": "chat", "messages": [{"role": "user", "content": "hello there"}]}
STREAM = {**CHAT, "stream": True}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


STARTS = 3
SETTLE_S = 3.0


@dataclass
class Durations:
    latency_s: float = 15.0
    saturation_s: float = 10.0
    overload_s: float = 8.0
    failover_s: float = 20.0          # the outage comes halfway

    @classmethod
    def quick(cls) -> Durations:
        return cls(latency_s=3.0, saturation_s=3.0, overload_s=3.0, failover_s=4.0)


def bench_policy(upstream_port: int, answer_checks: bool = True) -> str:
    return f"""version: 1
{"" if answer_checks else "answer_checks: {enabled: false}"}
providers:
  upstream:
    kind: openai
    base_url: http://127.0.0.1:{upstream_port}/v1
    api_key: sk-bench-upstream
    models: {{gpt-4o-mini: {{input_usd_per_mtok: 0.15, output_usd_per_mtok: 0.60}}}}
routes:
  chat: {{targets: [{{provider: upstream, model: gpt-4o-mini}}]}}
"""


def litellm_config(upstream_port: int) -> str:
    return f"""model_list:
  - model_name: chat
    litellm_params:
      model: openai/gpt-4o-mini
      api_base: http://127.0.0.1:{upstream_port}/v1
      api_key: sk-bench-upstream
litellm_settings:
  telemetry: false
"""


# The release the published comparison was measured against; RECLOSER_BENCH_LITELLM picks another.
LITELLM_VERSION = os.environ.get("RECLOSER_BENCH_LITELLM", "1.106.2")


def litellm_venv() -> Path:
    """LiteLLM's proxy in a virtualenv of its own, outside the repo (made once, then reused)."""
    venv = Path(os.environ.get("RECLOSER_BENCH_CACHE", Path.home() / ".cache" / "recloser-bench")) / "litellm"
    if not (venv / "bin" / "litellm").exists():
        print(f"installing litellm[proxy] into {venv} (once) …", flush=True)
        os.system(f"{sys.executable} -m venv {venv} && {venv}/bin/pip install -q 'litellm[proxy]=={LITELLM_VERSION}' >/dev/null")
    return venv


async def measure(m: Measures, host: str, port: int, pid: int | None, d: Durations, chat_path: str) -> None:
    chat = build_request(host, port, chat_path, CHAT)
    stream = build_request(host, port, chat_path, STREAM)
    pool = Pool(host, port)
    await closed_loop(pool, chat, 8, 1.0)                       # warm up: connections, caches
    for rate in (100, 200):
        results = await open_loop(pool, chat, rate, d.latency_s)
        ok = [r.latency_s for r in results if r.status == 200]
        m.errors += len(results) - len(ok)
        m.latency[rate] = (percentile(ok, 50), percentile(ok, 99))
    results = await open_loop(pool, stream, 100, d.latency_s)
    m.ttft_p50 = percentile([r.ttft_s for r in results if r.status == 200 and r.ttft_s is not None], 50)
    for body, attr in ((chat, "saturation"), (stream, "streams")):
        cpu = cpu_seconds(pid) if pid else 0.0
        started = time.perf_counter()
        results = await closed_loop(pool, body, 64, d.saturation_s)
        elapsed = time.perf_counter() - started
        done = sum(1 for r in results if r.status == 200)
        setattr(m, attr, done / elapsed)
        if pid:
            cpu_ms = 1000 * (cpu_seconds(pid) - cpu) / max(1, done)
            setattr(m, "cpu_ms" if attr == "saturation" else "stream_cpu_ms", cpu_ms)
    if pid:
        m.peak_rss_mb = status_kb(pid, "VmHWM") / 1024
        offered = 2 * m.saturation
        results = await open_loop(pool, chat, offered, d.overload_s)
        admitted = [r.latency_s for r in results if r.status == 200]
        shed = [r.latency_s for r in results if r.status == 503]
        m.overload = (offered, percentile(admitted, 99), len(shed) / max(1, len(results)), percentile(shed, 99))
    pool.close()


def unpin_children(pid: int) -> None:
    """The gateway's child processes (a traced gateway's span export) may run on any core: `taskset`
    pinned the gateway, and a child inherits the pin, which no deployment would give it."""
    for child in family(pid)[1:]:
        os.sched_setaffinity(child, range(os.cpu_count() or 1))


def run_gateway(name: str, proc: Proc, ready_url: str, port: int, d: Durations, chat_path: str,
                unpin: bool = False) -> Measures:
    m = Measures(name)
    starts = []
    for _ in range(STARTS - 1):     # the first start pays for cold caches: report the median of three
        proc.start()
        try:
            starts.append(proc.wait_ready(ready_url))
        finally:
            proc.stop()
    proc.start()
    try:
        starts.append(proc.wait_ready(ready_url))
        m.start_s = statistics.median(starts)
        time.sleep(1.0)  # let start-up garbage settle before reading idle memory
        if unpin:
            unpin_children(proc.pid)
        m.idle_rss_mb = status_kb(proc.pid, "VmRSS") / 1024
        m.children_idle_rss_mb = sum(status_kb(child, "VmRSS") for child in family(proc.pid)[1:]) / 1024
        asyncio.run(measure(m, "127.0.0.1", port, proc.pid, d, chat_path))
    finally:
        proc.stop()
    return m


def recloser(policy: Path, port: int, logs: Path, workers: int = 1, cores: str = GATEWAY_CORE,
             env: dict[str, str] | None = None) -> Proc:
    argv = [sys.executable, "-m", "gateway", "serve", "--policy", str(policy), "--port", str(port)]
    if workers > 1:
        argv += ["--workers", str(workers)]
    return Proc("recloser", argv, cores, env={"PYTHONPATH": str(ROOT), **(env or {})},
                log=logs / f"recloser-{workers}{'-traced' if env else ''}.log")


def saturation_only(proc: Proc, port: int, seconds: float) -> float:
    async def go() -> float:
        pool = Pool("127.0.0.1", port)
        request = build_request("127.0.0.1", port, "/v1/chat/completions", CHAT)
        await closed_loop(pool, request, 8, 1.0)
        started = time.perf_counter()
        results = await closed_loop(pool, request, 128, seconds)
        pool.close()
        return sum(1 for r in results if r.status == 200) / (time.perf_counter() - started)

    proc.start()
    try:
        proc.wait_ready(f"http://127.0.0.1:{port}/readyz")
        time.sleep(0.5)
        return asyncio.run(go())
    finally:
        proc.stop()


def soak(policy_dir: Path, upstream_port: int, logs: Path, minutes: float) -> str:
    """200 req/s for `minutes`: a flaky first target (failovers), streams, a ledger; RSS and fds before/after."""
    from gateway.sim import Fault  # noqa: F401  (the sim's control endpoint takes the same fields)

    flaky_port, port = free_port(), free_port()
    flaky = Proc("flaky", [sys.executable, "-m", "gateway.sim", "--port", str(flaky_port), "--name", "flaky"],
                 LOAD_CORE, env={"PYTHONPATH": str(ROOT)}, log=logs / "flaky.log").start()
    policy = policy_dir / "soak.yaml"
    policy.write_text(f"""version: 1
providers:
  flaky: {{kind: openai, base_url: "http://127.0.0.1:{flaky_port}/v1"}}
  upstream: {{kind: openai, base_url: "http://127.0.0.1:{upstream_port}/v1", models: {{gpt-4o-mini: {{input_usd_per_mtok: 0.15, output_usd_per_mtok: 0.6}}}}}}
routes:
  chat: {{targets: [{{provider: flaky, model: m}}, {{provider: upstream, model: gpt-4o-mini}}]}}
metering: {{ledger: {{path: "{policy_dir / 'soak-ledger.jsonl'}"}}}}
""")
    gw = recloser(policy, port, logs)
    try:
        flaky.wait_ready(f"http://127.0.0.1:{flaky_port}/_sim/stats")
        import urllib.request

        urllib.request.urlopen(urllib.request.Request(  # noqa: S310 (loopback)
            f"http://127.0.0.1:{flaky_port}/_sim/fault", data=b'{"status": 503, "error_rate": 0.1}', method="POST"))
        gw.start()
        gw.wait_ready(f"http://127.0.0.1:{port}/readyz")

        async def load(seconds: float) -> list[Result]:
            pool = Pool("127.0.0.1", port)
            chat = build_request("127.0.0.1", port, "/v1/chat/completions", CHAT)
            stream = build_request("127.0.0.1", port, "/v1/chat/completions", STREAM)
            a, b = await asyncio.gather(open_loop(pool, chat, 100, seconds), open_loop(pool, stream, 100, seconds))
            pool.close()
            return a + b

        asyncio.run(load(30))  # warm: caches, pools, the breaker's first verdicts
        # Read both ends the same way: clients gone, the gateway given time to see them close.
        time.sleep(SETTLE_S)
        upstreams = {flaky_port, upstream_port}
        rss0, fds0, kept0 = status_kb(gw.pid, "VmRSS"), open_fds(gw.pid), connections_to(gw.pid, upstreams)
        results = asyncio.run(load(minutes * 60))
        time.sleep(SETTLE_S)
        rss1, fds1, kept1 = status_kb(gw.pid, "VmRSS"), open_fds(gw.pid), connections_to(gw.pid, upstreams)
    finally:
        gw.stop()
        flaky.stop()
    failed = sum(1 for r in results if r.status != 200)
    return (f"soak {minutes:g} min at 200 req/s (half streams, 10 % 503 on the first target, ledger on): "
            f"{len(results)} requests, {failed} failed; RSS {rss0 / 1024:.1f} → {rss1 / 1024:.1f} MB "
            f"({100 * (rss1 - rss0) / rss0:+.1f} %), open descriptors {fds0} → {fds1}, of which idle keep-alive "
            f"connections to the upstreams {kept0} → {kept1} (the pool keeps them 60 s)")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--litellm", action="store_true", help="measure LiteLLM's proxy too (installs it once)")
    p.add_argument("--tracing", action="store_true",
                   help="measure Recloser with traces on too: every request's spans sent over OTLP/HTTP to the "
                        "fake upstream, standing in for a collector")
    p.add_argument("--export-pinned", action="store_true",
                   help="with --tracing: leave the span-export process on the gateway's core, as taskset left it")
    p.add_argument("--quick", action="store_true", help="short runs, to try the bench out")
    p.add_argument("--answer-checks-off", action="store_true",
                   help="measure the gateway with answer_checks off too, beside it (what the checks cost)")
    p.add_argument("--workers-check", action="store_true", help="saturation of --workers 2 against 1")
    p.add_argument("--soak-minutes", type=float, default=0.0, help="a soak run of this length (documented: 10)")
    p.add_argument("--write-docs", action="store_true", help="write the table into docs/performance.md")
    p.add_argument("--failover", action="store_true",
                   help="also the Anthropic paths beside the fast path, and the failover-capacity run")
    p.add_argument("--failover-only", action="store_true", help="only the Anthropic paths and the failover run")
    args = p.parse_args()
    d = Durations.quick() if args.quick else Durations()
    os.sched_setaffinity(0, {int(LOAD_CORE)})
    work = Path(tempfile.mkdtemp(prefix="recloser-bench-"))
    upstream_port = free_port()
    upstream = Proc("fake upstream", [sys.executable, str(HERE / "fake_upstream.py"), "--port", str(upstream_port)],
                    LOAD_CORE, log=work / "upstream.log")
    notes: list[str] = []
    if args.failover_only:
        return failover(work, d, args.write_docs)
    try:
        upstream.start()
        time.sleep(0.3)
        direct = Measures("direct")
        asyncio.run(measure(direct, "127.0.0.1", upstream_port, None, d, "/v1/chat/completions"))
        policy = work / "bench.yaml"
        policy.write_text(bench_policy(upstream_port))
        port = free_port()
        gateways = [run_gateway("Recloser", recloser(policy, port, work), f"http://127.0.0.1:{port}/readyz",
                                port, d, "/v1/chat/completions")]
        if args.tracing:
            tport = free_port()
            traced = recloser(policy, tport, work, env={
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": f"http://127.0.0.1:{upstream_port}/v1/traces"})
            gateways.append(run_gateway("Recloser, traced", traced, f"http://127.0.0.1:{tport}/readyz", tport, d,
                                        "/v1/chat/completions", unpin=not args.export_pinned))
            m = gateways[-1]
            notes.append(f"traced: CPU and RSS count the gateway and its span-export process, which ran "
                         f"{'on the gateway’s core 0' if args.export_pinned else 'on any core (not pinned)'}; "
                         f"the export process's idle RSS: {m.children_idle_rss_mb:.0f} MB of "
                         f"{m.idle_rss_mb:.0f}")
        if args.answer_checks_off:   # the same gateway without the checks on live answers, side by side
            unchecked = work / "bench-unchecked.yaml"
            unchecked.write_text(bench_policy(upstream_port, answer_checks=False))
            port = free_port()
            gateways.append(run_gateway("Recloser, answer checks off", recloser(unchecked, port, work),
                                        f"http://127.0.0.1:{port}/readyz", port, d, "/v1/chat/completions"))
        if args.litellm:
            venv = litellm_venv()
            config = work / "litellm.yaml"
            config.write_text(litellm_config(upstream_port))
            lport = free_port()
            proc = Proc("litellm", [str(venv / "bin" / "litellm"), "--config", str(config), "--port", str(lport),
                                    "--num_workers", "1"], GATEWAY_CORE,
                        env={"LITELLM_LOCAL_MODEL_COST_MAP": "True", "LITELLM_TELEMETRY": "False",
                             "LITELLM_LOG": "ERROR", "LITELLM_MASTER_KEY": BENCH_KEY}, log=work / "litellm.log")
            gateways.append(run_gateway(f"LiteLLM {_venv_version(venv)}", proc,
                                        f"http://127.0.0.1:{lport}/health/readiness", lport, d,
                                        "/v1/chat/completions"))
        print(f"\n{table(direct, gateways)}\n", flush=True)   # early, in case a later run fails
        if args.workers_check:
            os.sched_setaffinity(0, {0, 1})
            port1 = free_port()
            one = saturation_only(recloser(policy, port1, work, 1, "0,1"), port1, d.saturation_s)
            port2 = free_port()
            two = saturation_only(recloser(policy, port2, work, 2, "0,1"), port2, d.saturation_s)
            notes.append(f"--workers 2 on both cores: {two:,.0f} req/s against {one:,.0f} with one worker "
                         f"({two / one:.2f}x); the load generator and the fake upstream share those cores")
        if args.soak_minutes:
            notes.append(soak(work, upstream_port, work, args.soak_minutes))
    finally:
        upstream.stop()
    report = table(direct, gateways)
    facts = machine()
    print(f"\n{facts}\n\n{report}\n")
    print(f"direct (load generator → fake upstream): p50/p99 at 100 rps {ms(direct.latency[100][0])}/"
          f"{ms(direct.latency[100][1])} ms; closed-loop ceiling {direct.saturation:,.0f} req/s, "
          f"{direct.streams:,.0f} streams/s")
    for note in notes:
        print(note)
    if args.write_docs:
        write_docs(report, facts, direct, notes, " ".join(sys.argv[1:]))
    return failover(work, d, args.write_docs) if args.failover else 0


def failover(work: Path, d: Durations, write: bool) -> int:
    """The Anthropic paths beside the fast path, and the failover-capacity run (tests/perf/failover_bench.py)."""
    import failover_bench

    tables = [render(t) for t in failover_bench.run(work, d.saturation_s, d.failover_s)]
    facts = machine()
    print(f"\n{facts}\n\n" + "\n\n".join(tables) + "\n", flush=True)
    if write:
        write_failover_docs(tables, facts, " ".join(sys.argv[1:]))
    return 0


def _venv_version(venv: Path) -> str:
    found = list((venv / "lib").glob("python*/site-packages/litellm-*.dist-info"))
    return found[0].name.removesuffix(".dist-info").split("-", 1)[1] if found else ""


if __name__ == "__main__":
    raise SystemExit(main())
