"""Replicas that agree: two or three real gateway processes sharing a real redis-server."""

from __future__ import annotations

import asyncio
import hashlib
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import openai
import pytest

from tests.conftest import write_policy
from tests.redis_server import RedisServer
from tests.replicas import GatewayProcess, SimProcess

HELLO = [{"role": "user", "content": "hello"}]
KEY = "sk-team-key-0f1e2d3c4b5a"
ADMIN_KEY = "sk-admin-key-9a8b7c6d5e4f"
ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}


def policy(redis: RedisServer, a: SimProcess, b: SimProcess, extra: str = "", timeout_ms: int = 1000) -> str:
    """Sharing tests use a roomy Redis timeout: on a busy machine one slow answer would send a replica
    to local state for a moment (where it probes and judges alone), which the failure tests
    (timeout_ms 50) are about, not these. A loaded 2-core machine stalls a loop past 250 ms."""
    return f"""
version: 1
state: {{redis_url: "{redis.url}", timeout_ms: {timeout_ms}}}
auth:
  keys:
    - {{id: team-key, sha256: {hashlib.sha256(KEY.encode()).hexdigest()}, team: search, app: web}}
    - {{id: admin-key, sha256: {hashlib.sha256(ADMIN_KEY.encode()).hexdigest()}, team: ops, app: admin, admin: true}}
providers:
  A:
    kind: openai
    base_url: {a.url}/v1
    api_key: sk-a
    models: {{a-model: {{input_usd_per_mtok: 1000, output_usd_per_mtok: 1000}}}}
  B:
    kind: openai
    base_url: {b.url}/v1
    api_key: sk-b
    models: {{b-model: {{input_usd_per_mtok: 1000, output_usd_per_mtok: 1000}}}}
routes:
  chat:
    targets:
      - {{provider: A, model: a-model}}
      - {{provider: B, model: b-model}}
{extra}
"""


@pytest.fixture
def sims() -> Iterator[tuple[SimProcess, SimProcess]]:
    a, b = SimProcess("A"), SimProcess("B")
    try:
        yield a.wait(), b.wait()
    finally:
        a.stop()
        b.stop()


Start = Callable[[str, int], list[GatewayProcess]]


@pytest.fixture
def gateways(tmp_path: Path) -> Iterator[Start]:
    """Starts `n` gateway processes on one policy; all are stopped after the test."""
    started: list[GatewayProcess] = []

    def start(text: str, n: int) -> list[GatewayProcess]:
        path = write_policy(tmp_path, text, name=f"policy-{len(started)}.yaml")
        procs = [GatewayProcess(path) for _ in range(n)]
        started.extend(procs)
        return [p.wait() for p in procs]

    yield start
    for p in started:
        p.stop()


def client(gw: GatewayProcess, key: str = KEY) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.base_url, api_key=key, max_retries=0, timeout=20)


def eject_a_through(gw: GatewayProcess) -> None:
    """While A answers 500s, sends requests through `gw` until it reports A ejected (at most 20)."""
    c = client(gw)
    for _ in range(20):
        c.chat.completions.create(model="chat", messages=HELLO)  # type: ignore[arg-type]
        if gw.state_of("A", ADMIN) == "ejected":
            return


def states_of_a(gws: list[GatewayProcess], settle_on: str, within_s: float) -> list[str]:
    """A's state on every gateway, once all report `settle_on` or `within_s` has passed."""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline and any(gw.state_of("A", ADMIN) != settle_on for gw in gws):
        time.sleep(0.02)
    return [gw.state_of("A", ADMIN) for gw in gws]


class FirstEjection:
    """Watches a gateway's /admin/deployments and notes when it first reports `provider` ejected."""

    def __init__(self, gw: GatewayProcess, provider: str) -> None:
        self.at: float | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, args=(gw, provider), daemon=True)
        self._thread.start()

    def _watch(self, gw: GatewayProcess, provider: str) -> None:
        while not self._stop.is_set() and self.at is None:
            if gw.state_of(provider, ADMIN) == "ejected":
                self.at = time.monotonic()
            self._stop.wait(0.02)

    def wait(self, timeout_s: float) -> float | None:
        self._thread.join(timeout_s)
        self._stop.set()
        self._thread.join()
        return self.at


def test_an_ejection_on_one_gateway_is_seen_on_the_other_within_a_second(
        redis_server: RedisServer, sims: tuple[SimProcess, SimProcess], gateways: Start) -> None:
    a, b = sims
    gw1, gw2 = gateways(policy(redis_server, a, b), 2)
    a.set_fault(status=500)
    seen1, seen2 = FirstEjection(gw1, "A"), FirstEjection(gw2, "A")
    c1 = client(gw1)
    for _ in range(60):
        assert c1.chat.completions.create(model="chat", messages=HELLO).choices  # type: ignore[arg-type]
    ejected_on_1 = seen1.wait(5)
    assert ejected_on_1 is not None
    ejected_on_2 = seen2.wait(max(0.0, ejected_on_1 + 2 - time.monotonic()))
    assert ejected_on_2 is not None, "gateway 2 never reported A ejected"
    assert ejected_on_2 - ejected_on_1 <= 1.0

    before = a.requests()
    c2 = client(gw2)
    for _ in range(20):
        raw = c2.chat.completions.with_raw_response.create(model="chat", messages=HELLO)  # type: ignore[arg-type]
        assert raw.http_response.status_code == 200
    assert a.requests() - before <= 2


def test_a_budget_spent_through_one_gateway_is_refused_on_the_other(
        redis_server: RedisServer, sims: tuple[SimProcess, SimProcess], gateways: Start) -> None:
    a, b = sims
    budgets = """
budgets:
  - {name: search-daily, team: search, period: day, limit_usd: 0.01, action: reject}
"""
    gw1, gw2 = gateways(policy(redis_server, a, b, budgets), 2)
    # One answer costs about (9 + 8 tokens) x $1000 per million: more than the whole budget.
    assert client(gw1).chat.completions.create(model="chat", messages=HELLO).choices  # type: ignore[arg-type]
    deadline = time.monotonic() + 3
    spent: float | None = None
    while time.monotonic() < deadline:  # until gateway 2 has heard of it (it never served this team)
        spent = gw2.metric('recloser_budget_spent_usd{budget="search-daily"}')
        if spent is not None and spent >= 0.01:
            break
        time.sleep(0.05)
    assert spent is not None and spent >= 0.01
    with pytest.raises(openai.RateLimitError) as refused:
        client(gw2).chat.completions.create(model="chat", messages=HELLO)  # type: ignore[arg-type]
    assert refused.value.code == "budget_exceeded"
    assert "search-daily" in refused.value.message


def test_rpm_on_a_key_holds_across_two_gateways(
        redis_server: RedisServer, sims: tuple[SimProcess, SimProcess], gateways: Start) -> None:
    a, b = sims
    limits = """
rate_limits:
  - {name: team-key-rpm, key: team-key, rpm: 60}
"""
    gws = gateways(policy(redis_server, a, b, limits), 2)
    clients = [client(gw) for gw in gws]
    admitted = [0, 0]
    refusals: list[openai.RateLimitError] = []
    for i in range(100):
        try:
            raw = clients[i % 2].chat.completions.with_raw_response.create(model="chat", messages=HELLO)  # type: ignore[arg-type]
        except openai.RateLimitError as exc:
            refusals.append(exc)
            continue
        admitted[i % 2] += 1
        assert raw.headers["x-ratelimit-limit-requests"] == "60"
        assert int(raw.headers["x-ratelimit-remaining-requests"]) >= 0
    assert 55 <= sum(admitted) <= 62
    assert min(admitted) > 0, "both gateways admit from the one shared window"
    assert len(refusals) == 100 - sum(admitted)
    for exc in refusals:
        assert exc.status_code == 429
        assert exc.code == "rate_limit_exceeded" and exc.type == "requests"
        assert 1 <= int(exc.response.headers["retry-after"]) <= 60
        assert exc.response.headers["x-ratelimit-remaining-requests"] == "0"
        assert exc.response.headers["x-ratelimit-reset-requests"].endswith("s")


def test_killing_redis_under_load_costs_no_client_an_error_and_sharing_resumes_when_it_returns(
        redis_server: RedisServer, sims: tuple[SimProcess, SimProcess], gateways: Start) -> None:
    a, b = sims
    # Loop-lag admission off: on a loaded machine it sheds (503) for the gateway's own CPU, which is
    # not what this test is about (test_load_shedding is); what Redis going away costs clients is.
    limits = """
limits: {max_loop_lag_ms: 0}
rate_limits:
  - {name: roomy, team: search, rpm: 100000, tpm: 100000000}
"""
    gws = gateways(policy(redis_server, a, b, limits, timeout_ms=50), 2)

    async def load() -> tuple[list[str], list[int]]:
        errors: list[str] = []
        ready: list[int] = []
        clients = [openai.AsyncOpenAI(base_url=gw.base_url, api_key=KEY, max_retries=0, timeout=20) for gw in gws]

        async def one(c: openai.AsyncOpenAI) -> None:
            try:
                await c.chat.completions.create(model="chat", messages=HELLO)  # type: ignore[arg-type]
            except openai.APIError as exc:
                errors.append(repr(exc))

        async def watch_readiness(stop: asyncio.Event) -> None:
            async with httpx.AsyncClient() as h:
                while not stop.is_set():
                    for gw in gws:
                        ready.append((await h.get(gw.url + "/readyz")).status_code)
                    await asyncio.sleep(0.1)

        stop = asyncio.Event()
        watcher = asyncio.create_task(watch_readiness(stop))
        tasks = []
        for tick in range(100):          # 5 s at 20 requests/s on each gateway
            if tick == 20:
                redis_server.kill()
            tasks += [asyncio.create_task(one(c)) for c in clients]
            await asyncio.sleep(0.05)
        await asyncio.gather(*tasks)
        stop.set()
        await watcher
        for c in clients:
            await c.close()
        return errors, ready

    errors, ready = asyncio.run(load())
    assert errors == []
    assert ready and set(ready) == {200}
    assert [gw.metric("recloser_state_backend_up") for gw in gws] == [0.0, 0.0]

    redis_server.start()            # empty, on the same port
    restarted = time.monotonic()
    a.set_fault(status=500)
    seen = FirstEjection(gws[1], "A")
    eject_a_through(gws[0])
    at = seen.wait(max(0.0, restarted + 5 - time.monotonic()))
    assert at is not None and at - restarted <= 5.0
    assert [gw.metric("recloser_state_backend_up") for gw in gws] == [1.0, 1.0]
    logs = [gw.stop() for gw in gws]
    for text in logs:   # said once per outage (a loaded machine may add a flap), not once per request
        assert 1 <= text.count("unreachable") <= 3, text


def test_a_redis_that_never_answers_adds_at_most_its_timeout(
        redis_server: RedisServer, sims: tuple[SimProcess, SimProcess], gateways: Start) -> None:
    a, b = sims
    limits = """
rate_limits:
  - {name: roomy, team: search, rpm: 100000}
"""
    gw, = gateways(policy(redis_server, a, b, limits, timeout_ms=50), 1)
    c = client(gw)

    def latencies(n: int) -> list[float]:
        out = []
        for _ in range(n):
            started = time.perf_counter()
            raw = c.chat.completions.with_raw_response.create(model="chat", messages=HELLO)  # type: ignore[arg-type]
            out.append(time.perf_counter() - started)
            assert raw.http_response.status_code == 200
        return out

    healthy = latencies(20)
    redis_server.pause()
    stopped = latencies(20)
    timeout_s = 0.05
    assert statistics.median(stopped) - statistics.median(healthy) < timeout_s
    # The first request after the stop waits for the timeout once; a busy machine adds its own noise to both.
    assert max(stopped) < max(healthy) + timeout_s + 0.1
    assert gw.metric("recloser_state_backend_up") == 0.0


def test_a_recovering_provider_gets_a_few_probes_in_total_not_a_few_per_replica(
        redis_server: RedisServer, sims: tuple[SimProcess, SimProcess], gateways: Start) -> None:
    a, b = sims
    breaker = """
breaker: {base_ejection_s: 2, probe_requests: 3, synthetic_probe_s: 0.1}
"""
    gws = gateways(policy(redis_server, a, b, breaker), 3)
    a.set_fault(status=500)
    eject_a_through(gws[0])
    assert states_of_a(gws, "ejected", within_s=2) == ["ejected"] * 3
    a.set_fault()              # healthy again; no client traffic from here on: A sees only probes
    before = a.requests()
    assert states_of_a(gws, "healthy", within_s=10) == ["healthy"] * 3
    # One replica holds the claim and needs 3 successes; alone, each of the three would have sent 3.
    assert a.requests() - before <= 4


def test_two_gateways_retry_within_one_shared_retry_budget(
        redis_server: RedisServer, sims: tuple[SimProcess, SimProcess], gateways: Start) -> None:
    a, b = sims
    # No share of requests, at least 1 retry a second: 10 in the 10 s window, for both gateways together;
    # a breaker that never trips, so A stays worth a retry.
    text = policy(redis_server, a, b).replace(
        "  chat:\n    targets:",
        "  chat:\n    breaker: {consecutive_failures: 1000, min_requests: 100000}\n    retry: {budget_percent: 0, budget_min_per_s: 1, backoff_s: 0}\n"
        "    targets:")
    gws = gateways(text, 2)
    a.set_fault(status=503)              # a blip worth retrying on the same deployment, every time
    clients = [client(gw) for gw in gws]
    started = time.monotonic()
    for i in range(40):                  # 8 s at 5 requests/s, alternating
        assert clients[i % 2].chat.completions.create(model="chat", messages=HELLO).choices  # type: ignore[arg-type]
        time.sleep(max(0.0, started + (i + 1) * 0.2 - time.monotonic()))
    retries = [gw.metric('recloser_retries_total{model="a-model",provider="A",reason="server_error",route="chat"}')
               or 0.0 for gw in gws]
    # Alone, each would have retried 8 or more times (1 a second over 8 s); together they share the 1 a second.
    assert sum(retries) <= 14, retries
    assert min(retries) > 0


def test_an_ejected_provider_is_probed_by_one_replica_and_its_recovery_reaches_all(
        redis_server: RedisServer, sims: tuple[SimProcess, SimProcess], gateways: Start) -> None:
    a, b = sims
    breaker = """
breaker: {base_ejection_s: 60, probe_interval_s: 0.5, probe_requests: 2, synthetic_probe_s: 0.2}
"""
    gws = gateways(policy(redis_server, a, b, breaker), 3)
    a.set_fault(status=500)
    eject_a_through(gws[0])
    assert states_of_a(gws, "ejected", within_s=2) == ["ejected"] * 3
    before, started = a.requests(), time.monotonic()
    time.sleep(3.0)                      # no client traffic: A sees only the probes of its ejection
    probes = a.requests() - before
    # One replica probes every 0.5 s (jittered): about 6 in 3 s; each of the three alone would send 18.
    assert 1 <= probes <= 9, probes
    a.set_fault()
    recovered_by = time.monotonic() + 5
    while time.monotonic() < recovered_by and any(gw.state_of("A", ADMIN) != "healthy" for gw in gws):
        time.sleep(0.05)
    assert [gw.state_of("A", ADMIN) for gw in gws] == ["healthy"] * 3, "long before the 60 s ejection ran out"
    assert time.monotonic() - started < 60


def test_a_replica_that_reloaded_its_policy_still_shares(
        redis_server: RedisServer, sims: tuple[SimProcess, SimProcess], gateways: Start) -> None:
    a, b = sims
    text = policy(redis_server, a, b)
    gw1, = gateways(text, 1)
    gw2, = gateways(text, 1)
    gw2.policy.write_text(text.replace("  chat:\n", "  chat:\n    description: reloaded\n"))
    reloaded = httpx.post(gw2.url + "/admin/reload", headers=ADMIN, timeout=30)
    assert reloaded.status_code == 200 and reloaded.json()["status"] == "reloaded", reloaded.text
    a.set_fault(status=500)
    seen = FirstEjection(gw2, "A")
    eject_a_through(gw1)
    ejected_on_1 = time.monotonic()
    at = seen.wait(2.0)
    assert at is not None and at - ejected_on_1 <= 1.0
