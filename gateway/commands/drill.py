"""`recloser drill`: a brownout rehearsal on loopback, with breakers on and then off, side by side.

Simulated providers and the gateway run in this process; open-loop streaming traffic goes through a
script of phases (healthy → primary 429 storm → primary first tokens 20× slower → primary hard down,
a black hole that accepts and never answers → recovery → quality brownout, the primary answering
fast, with status 200 and wrong → garbage answers, fluent Thai to English questions, with no canaries),
and each phase is summed up: client success rate, latency and time
to first token, where the traffic went, and the breaker states at its end.

The quality brownout runs on fresh gateways (a healthy warm-up, then the brownout), so that what the
earlier phases left behind does not colour it, three ways: breakers that see quality (canaries on),
breakers that see only errors and latency ("blind": on, no canaries), and no breakers at all. The
blind and breakerless runs then go on to the garbage answers, which the checks on live answers see
without any canary.

Last, two fresh gateways with breakers on, one with active probes and slow start and one without,
go through a long outage (the primary answering 503 for three phases, its ejection growing with
every failed real-traffic probe) and its recovery: how soon the recovered primary has its traffic back.

This module measures one run (a gateway, its sims and the traffic through a script of phases); which runs
make a drill and how their rows are printed is `drill_plan`, running them side by side is `drill_runner`.
"""

from __future__ import annotations

import asyncio
import textwrap
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import aiohttp

from gateway.serving.embedded import EmbeddedGateway
from gateway.policy.load import parse_policy

PRIMARY_TTFT_S = 0.04


CANARIES = "canaries: {interval_s: 1, jitter: 0.2, timeout_s: 2}"


BACK_SHARE = 0.9   # the primary "has its traffic back" once it serves this share of what follows


def drill_policy(breakers: bool, canaries: bool = False, active_probes: bool = True) -> str:
    return textwrap.dedent(f"""
    version: 1
    breaker: {{enabled: {str(breakers).lower()}, base_ejection_s: 4, max_ejection_s: 20, consecutive_failures: 5,
              active_probes: {str(active_probes).lower()}, probe_interval_s: 1,
              slow_start_s: {2 if active_probes else 0}}}
    {CANARIES if canaries and breakers else ""}
    providers:
      primary:
        kind: sim
        sim: {{first_token_delay_s: {PRIMARY_TTFT_S}, chunk_delay_s: 0.002, reply_tokens: 16}}
        timeouts: {{connect_s: 0.5, first_token_s: 2, idle_s: 2, total_s: 20}}
      secondary:
        kind: sim
        sim: {{first_token_delay_s: 0.06, chunk_delay_s: 0.002, reply_tokens: 16}}
        timeouts: {{connect_s: 0.5, first_token_s: 2, idle_s: 2, total_s: 20}}
      local-gpu:
        kind: sim
        sim: {{first_token_delay_s: 0.08, chunk_delay_s: 0.002, reply_tokens: 16}}
        timeouts: {{connect_s: 0.5, first_token_s: 2, idle_s: 2, total_s: 20}}
    routes:
      chat:
        timeout_s: 10
        targets:
          - {{provider: primary, model: frontier-large}}
          - {{provider: secondary, model: frontier-small}}
          - {{provider: local-gpu, model: llama-3.1-8b-instruct}}
    """)


@dataclass(frozen=True)
class Phase:
    name: str
    fault: dict[str, object]
    length: float = 1.0    # in phases


BROWNOUT_PHASES = (
    Phase("healthy", {}),
    Phase("429 storm", {"status": 429, "retry_after_s": 10, "error_rate": 0.9}),
    Phase("ttft 20x slower", {"first_token_delay_s": PRIMARY_TTFT_S * 20}),
    Phase("hard down", {"hang": True}),       # a black hole: accepts, never answers
    Phase("recovery", {}),
)
QUALITY = Phase("quality brownout", {"dumb": True})   # fast, status 200, fluent and wrong
GARBAGE = Phase("garbage answers", {"broken": "wrong_script"})   # fast, status 200, fluent Thai to English questions
PHASES = BROWNOUT_PHASES + (QUALITY,)
LONG_OUTAGE = (Phase("long outage", {"status": 503}, length=3), Phase("recovery", {}, length=2))


@dataclass
class Sample:
    ok: bool
    seconds: float
    ttft_s: float | None
    provider: str
    at: float = 0.0        # when it was sent, seconds into its phase


@dataclass
class PhaseReport:
    name: str
    samples: list[Sample] = field(default_factory=list)
    states: dict[str, str] = field(default_factory=dict)
    primary_requests: int = 0    # what reached the primary during the phase (probes included)

    def success_rate(self) -> float:
        return sum(s.ok for s in self.samples) / max(1, len(self.samples))

    def percentile(self, values: list[float], p: float) -> float:
        if not values:
            return float("nan")
        ordered = sorted(values)
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]

    def latency(self, p: float) -> float:
        return self.percentile([s.seconds for s in self.samples if s.ok], p)

    def ttft(self, p: float) -> float:
        return self.percentile([s.ttft_s for s in self.samples if s.ok and s.ttft_s is not None], p)

    def shares(self) -> str:
        counts = Counter(s.provider for s in self.samples if s.ok)
        total = max(1, sum(counts.values()))
        return " ".join(f"{p[:3]}:{100 * n / total:.0f}%" for p, n in sorted(counts.items()))

    def primary_back_after(self) -> float | None:
        """Seconds into the phase from which the primary served at least BACK_SHARE of the requests."""
        for i, sample in enumerate(self.samples):
            rest = self.samples[i:]
            if sum(s.ok and s.provider == "primary" for s in rest) >= BACK_SHARE * len(rest):
                return sample.at
        return None


async def one_stream(session: aiohttp.ClientSession, url: str, at: float) -> Sample:
    started = time.perf_counter()
    ttft: float | None = None
    body = {"model": "chat", "stream": True, "messages": [{"role": "user", "content": "drill"}]}
    try:
        async with session.post(url, json=body) as resp:
            provider = resp.headers.get("x-recloser-provider", "-")
            if resp.status != 200:
                await resp.read()
                return Sample(False, time.perf_counter() - started, None, provider, at)
            done = False
            async for line in resp.content:
                if ttft is None and line.startswith(b"data: {") and b'"content":"' in line \
                        and b'"content":""' not in line:
                    ttft = time.perf_counter() - started
                if line.startswith(b"data: {\"error\""):
                    return Sample(False, time.perf_counter() - started, ttft, provider, at)
                if line.startswith(b"data: [DONE]"):
                    done = True
            return Sample(done, time.perf_counter() - started, ttft, provider, at)
    except (aiohttp.ClientError, asyncio.TimeoutError):
        return Sample(False, time.perf_counter() - started, ttft, "-", at)


PhaseEvent = Callable[[int, PhaseReport | None], None]
"""Told a phase's index when it starts (None) and again with its report when it ends."""


def ignore(index: int, report: PhaseReport | None) -> None:
    pass


async def run_phases(gw: EmbeddedGateway, rate_per_s: float, phase_s: float,
                     phases: tuple[Phase, ...] = PHASES, on_phase: PhaseEvent = ignore) -> list[PhaseReport]:
    from gateway.sim import Fault

    url = gw.base_url + "/chat/completions"
    reports = []
    timeout = aiohttp.ClientTimeout(total=15)
    async with aiohttp.ClientSession(timeout=timeout, connector=aiohttp.TCPConnector(limit=0)) as session:
        for index, phase in enumerate(phases):
            on_phase(index, None)
            await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(
                gw.sim("primary").set_fault(Fault(**phase.fault)), gw.loop))  # type: ignore[arg-type]
            report = PhaseReport(phase.name)
            before = gw.sim("primary").request_count()
            tasks = []
            started = time.perf_counter()
            n = int(rate_per_s * phase_s * phase.length)
            for i in range(n):  # open loop: requests leave on schedule, whatever the answers do
                tasks.append(asyncio.create_task(one_stream(session, url, time.perf_counter() - started)))
                delay = started + (i + 1) / rate_per_s - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
            report.samples = list(await asyncio.gather(*tasks))
            report.primary_requests = gw.sim("primary").request_count() - before
            report.states = {row["provider"]: row["state"] for row in gw.context.board.report(
                list(gw.context.routing.routes.values()))}
            reports.append(report)
            on_phase(index, report)
    return reports


def run_drill_once(breakers: bool, rate_per_s: float, phase_s: float, canaries: bool = False,
                   phases: tuple[Phase, ...] = BROWNOUT_PHASES, active_probes: bool = True,
                   on_phase: PhaseEvent = ignore, ready: Callable[[], None] = lambda: None) -> list[PhaseReport]:
    """One run on a gateway and sims of its own; `ready` is called once they listen, before any traffic."""
    label = "on" if breakers and canaries else "on, no canaries" if breakers else "off"
    policy = parse_policy(drill_policy(breakers, canaries, active_probes), f"<drill, breakers {label}>")
    with EmbeddedGateway(policy) as gw:
        ready()
        return asyncio.run(run_phases(gw, rate_per_s, phase_s, phases, on_phase))


def run_quality_phase(breakers: bool, canaries: bool, rate_per_s: float, phase_s: float,
                      phase: Phase = QUALITY) -> PhaseReport:
    """The quality brownout (or `phase`) on a fresh gateway, after a healthy warm-up in which canaries learn
    a baseline."""
    return run_drill_once(breakers, rate_per_s, phase_s, canaries, phases=(BROWNOUT_PHASES[0], phase))[-1]
