"""Failover must not be the slow path: the Anthropic route's capacity beside the OpenAI-wire fast path.

Run through `python tests/perf/bench.py --failover` (or this file directly). Two fake upstreams
share core 1 with the load generator (one speaking the OpenAI wire, one the Anthropic Messages
API); the gateway gets core 0. Prints numbers; asserts none.

- **Paths**: closed loop, 32 clients, non-stream then 20-chunk streams, one route per path:
  `kind: openai` (bytes passed through), `kind: anthropic` translated natively, and `kind:
  anthropic` forced through litellm (`via: litellm`). Requests/s, streams/s, the share shed with
  503 and the gateway's CPU per answered call.
- **Failover capacity**: open loop at half the fast path's saturation on a route [OpenAI-wire
  target, Anthropic target]; halfway through, the OpenAI-wire upstream is killed (SIGKILL: its
  port refuses from then on). Success rate, p50 / p99 and shed share before and after, once with
  the Anthropic target native and once through litellm.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench import CHAT, LOAD_CORE, STREAM, free_port, recloser  # noqa: E402
from loadgen import Pool, Result, build_request, closed_loop, open_loop, percentile  # noqa: E402
from procs import Proc, cpu_seconds  # noqa: E402

CLIENTS = 32
PATHS = ("openai", "anthropic", "anthropic via litellm")


def provider(path: str, openai_port: int, anthropic_port: int) -> str:
    """The policy's provider stanza for one path (a YAML flow mapping)."""
    if path == "openai":
        return f'{{kind: openai, base_url: "http://127.0.0.1:{openai_port}/v1", api_key: sk-bench-upstream}}'
    via = ", via: litellm" if path.endswith("litellm") else ""
    # claude-haiku-4-5 is in litellm's bundled price map, so both Anthropic paths meter alike.
    return (f'{{kind: anthropic, base_url: "http://127.0.0.1:{anthropic_port}", api_key: sk-ant-bench{via}, '
            f'models: {{claude-haiku-4-5: {{max_output_tokens: 1024}}}}}}')


def model(path: str) -> str:
    return "gpt-4o-mini" if path == "openai" else "claude-haiku-4-5"


def path_policy(path: str, openai_port: int, anthropic_port: int) -> str:
    return (f"version: 1\nproviders:\n  up: {provider(path, openai_port, anthropic_port)}\n"
            f"routes:\n  chat: {{targets: [{{provider: up, model: {model(path)}}}]}}\n")


def failover_policy(second: str, openai_port: int, anthropic_port: int) -> str:
    return (f"version: 1\nproviders:\n  primary: {provider('openai', openai_port, anthropic_port)}\n"
            f"  secondary: {provider(second, openai_port, anthropic_port)}\n"
            f"routes:\n  chat: {{targets: [{{provider: primary, model: gpt-4o-mini}}, "
            f"{{provider: secondary, model: {model(second)}}}]}}\n")


@dataclass
class PathMeasures:
    path: str
    requests_s: float = float("nan")
    streams_s: float = float("nan")
    shed: float = float("nan")             # share of non-stream requests answered 503
    stream_shed: float = float("nan")
    cpu_ms: float = float("nan")           # gateway CPU per answered call
    stream_cpu_ms: float = float("nan")
    failed: int = 0                        # answers neither 200 nor 503


@dataclass(frozen=True)
class Phase:
    """One side of the outage in the failover-capacity run."""

    sent: int
    ok: int
    shed: int
    p50_s: float
    p99_s: float

    @property
    def success(self) -> float:
        return self.ok / self.sent if self.sent else float("nan")


def phase(results: list[Result]) -> Phase:
    ok = [r.latency_s for r in results if r.status == 200]
    return Phase(len(results), len(ok), sum(1 for r in results if r.status == 503),
                 percentile(ok, 50), percentile(ok, 99))


def split_at(results: list[Result], rate: float, cut_s: float) -> tuple[list[Result], list[Result]]:
    """An open loop's results (in the order they were scheduled) before and after `cut_s`."""
    at = min(len(results), int(rate * cut_s))
    return results[:at], results[at:]


async def saturate(port: int, pid: int, body: dict[str, object], seconds: float) -> tuple[float, float, float, int]:
    """Closed loop: answers/s, shed share, CPU ms per answer, other failures."""
    pool = Pool("127.0.0.1", port)
    request = build_request("127.0.0.1", port, "/v1/chat/completions", body)
    await closed_loop(pool, request, 8, 1.0)  # warm: connections, caches, litellm's first call
    cpu = cpu_seconds(pid)
    started = time.perf_counter()
    results = await closed_loop(pool, request, CLIENTS, seconds)
    elapsed = time.perf_counter() - started
    used = cpu_seconds(pid) - cpu
    pool.close()
    ok = sum(1 for r in results if r.status == 200)
    shed = sum(1 for r in results if r.status == 503)
    return ok / elapsed, shed / max(1, len(results)), 1000 * used / max(1, ok), len(results) - ok - shed


def measure_path(path: str, ports: tuple[int, int], work: Path, port: int, seconds: float) -> PathMeasures:
    policy = work / f"path-{path.replace(' ', '-')}.yaml"
    policy.write_text(path_policy(path, *ports))
    proc = recloser(policy, port, work).start()
    m = PathMeasures(path)
    try:
        proc.wait_ready(f"http://127.0.0.1:{port}/readyz")
        m.requests_s, m.shed, m.cpu_ms, failed = asyncio.run(saturate(port, proc.pid, CHAT, seconds))
        m.streams_s, m.stream_shed, m.stream_cpu_ms, stream_failed = asyncio.run(saturate(port, proc.pid, STREAM, seconds))
        m.failed = failed + stream_failed
    finally:
        proc.stop()
    return m


def failover_run(second: str, rate: float, seconds: float, openai_upstream: Proc, ports: tuple[int, int],
                 work: Path, port: int) -> tuple[Phase, Phase]:
    """Open loop at `rate` for `seconds`; the OpenAI-wire upstream is killed halfway."""
    policy = work / f"failover-{second.replace(' ', '-')}.yaml"
    policy.write_text(failover_policy(second, *ports))
    proc = recloser(policy, port, work).start()
    try:
        proc.wait_ready(f"http://127.0.0.1:{port}/readyz")

        async def go() -> list[Result]:
            pool = Pool("127.0.0.1", port)
            request = build_request("127.0.0.1", port, "/v1/chat/completions", CHAT)
            await closed_loop(pool, request, 8, 1.0)
            loop = asyncio.get_running_loop()
            loop.call_later(seconds / 2, kill, openai_upstream)
            results = await open_loop(pool, request, rate, seconds)
            pool.close()
            return results

        before, after = split_at(asyncio.run(go()), rate, seconds / 2)
    finally:
        proc.stop()
    return phase(before), phase(after)


def kill(proc: Proc) -> None:
    """Hard down: no goodbye on open connections, nothing listening after."""
    if proc.popen is not None and proc.popen.poll() is None:
        os.killpg(proc.popen.pid, signal.SIGKILL)
        proc.popen.wait()


def fake_upstream(port: int, work: Path, name: str) -> Proc:
    return Proc(name, [sys.executable, str(HERE / "fake_upstream.py"), "--port", str(port)], LOAD_CORE,
                log=work / f"{name}.log")


def paths_table(rows: list[PathMeasures]) -> list[list[str]]:
    fast = rows[0]
    out = [["path", "requests/s", "streams/s", "shed (503) requests / streams", "CPU per call ms (req / stream)",
            "vs fast path (req / stream)"]]
    for m in rows:
        out.append([m.path, f"{m.requests_s:,.0f}", f"{m.streams_s:,.1f}",
                    f"{100 * m.shed:.0f} % / {100 * m.stream_shed:.0f} %", f"{m.cpu_ms:.2f} / {m.stream_cpu_ms:.2f}",
                    f"{100 * m.requests_s / fast.requests_s:.0f} % / {100 * m.streams_s / fast.streams_s:.0f} %"])
    return out


def failover_table(rate: float, runs: dict[str, tuple[Phase, Phase]]) -> list[list[str]]:
    out = [["second target", "phase", "sent", "success", "p50 / p99 ms", "shed (503)"]]
    for second, phases in runs.items():
        for label, p in zip(("before the outage", "after (OpenAI-wire target killed)"), phases, strict=True):
            out.append([second, label, f"{p.sent:,}", f"{100 * p.success:.2f} %",
                        f"{1000 * p.p50_s:.2f} / {1000 * p.p99_s:.2f}", f"{100 * p.shed / max(1, p.sent):.1f} %"])
    out.insert(0, [f"load: {rate:,.0f} req/s open loop", "", "", "", "", ""])
    return out


def run(work: Path, saturation_s: float, failover_s: float) -> list[list[list[str]]]:
    """Every measure of this module; returns its tables (rows of cells)."""
    ports = (free_port(), free_port())
    openai_up = fake_upstream(ports[0], work, "fake-openai").start()
    anthropic_up = fake_upstream(ports[1], work, "fake-anthropic").start()
    try:
        time.sleep(0.3)
        rows = [measure_path(p, ports, work, free_port(), saturation_s) for p in PATHS]
        rate = rows[0].requests_s / 2
        runs: dict[str, tuple[Phase, Phase]] = {}
        for second in PATHS[1:]:
            if openai_up.popen is None or openai_up.popen.poll() is not None:
                openai_up = fake_upstream(ports[0], work, "fake-openai").start()
                time.sleep(0.3)
            runs[second] = failover_run(second, rate, failover_s, openai_up, ports, work, free_port())
    finally:
        openai_up.stop()
        anthropic_up.stop()
    return [paths_table(rows), failover_table(rate, runs)]
