"""Hot reload: a policy file rewritten under traffic moves answers within seconds without a client
error; a bad file is refused with its line while the old policy serves; SIGHUP, the admin endpoint
and every worker of `--workers 2` reload too."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from gateway.serving.embedded import EmbeddedGateway
from gateway.sim import Fault
from tests.conftest import GatewayFactory, free_port

ROOT = Path(__file__).resolve().parents[2]
ADMIN_KEY, APP_KEY = "sk-ops-admin-key", "sk-app-key"
HELLO = {"messages": [{"role": "user", "content": "hi"}]}


def policy(to: str, extra: str = "", first_token_delay_s: float = 0.0, auth: bool = True) -> str:
    keys = f"""
auth:
  keys:
    - {{id: ops, sha256: {hashlib.sha256(ADMIN_KEY.encode()).hexdigest()}, team: platform, app: ops, admin: true}}
    - {{id: app, sha256: {hashlib.sha256(APP_KEY.encode()).hexdigest()}, team: search, app: web}}
""" if auth else ""
    return f"""version: 1
{keys}
providers:
  a: {{kind: sim, sim: {{first_token_delay_s: {first_token_delay_s}}}}}
  b: {{kind: sim}}
breaker: {{consecutive_failures: 2, base_ejection_s: 60}}
routes:
  chat:
    targets:
{to}
{extra}"""


TO_A = "      - {provider: a, model: m}"
TO_B = "      - {provider: b, model: m}"
TO_A_THEN_B = TO_A + "\n" + TO_B
BAD = "      - provider: b\n        model: m\n        wieght: 3"      # an unknown key, on a line of its own


def source(gw: EmbeddedGateway) -> Path:
    return Path(gw.context.policy.source)


def bad_line(text: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if "wieght" in line)


def admin_reload(gw: EmbeddedGateway, key: str = ADMIN_KEY) -> httpx.Response:
    return httpx.post(gw.url + "/admin/reload", headers={"Authorization": f"Bearer {key}"}, timeout=30)


def chat(url: str, key: str = APP_KEY) -> httpx.Response:
    return httpx.post(url + "/v1/chat/completions", json={"model": "chat", **HELLO},
                      headers={"Authorization": f"Bearer {key}"}, timeout=10)


async def paced_traffic(url: str, rate: float, seconds: float, at_s: float, action: object) -> list[tuple[float, int, str]]:
    """`rate` requests a second for `seconds`, each (sent at, status, provider); `action()` runs at `at_s`."""
    loop = asyncio.get_running_loop()
    async with httpx.AsyncClient(timeout=10, headers={"Authorization": f"Bearer {APP_KEY}"}) as client:
        async def one(sent: float) -> tuple[float, int, str]:
            r = await client.post(url + "/v1/chat/completions", json={"model": "chat", **HELLO})
            return sent, r.status_code, r.headers.get("x-recloser-provider", "")

        start, tasks, acted = loop.time(), [], False
        for i in range(int(rate * seconds)):
            due = i / rate
            await asyncio.sleep(max(0.0, start + due - loop.time()))
            if not acted and due >= at_s:
                action()  # type: ignore[operator]
                acted = True
            tasks.append(asyncio.create_task(one(loop.time() - start)))
        return list(await asyncio.gather(*tasks))


async def test_rewriting_the_file_under_20_requests_a_second_moves_answers_within_3_s_without_an_error(
        start_gateway: GatewayFactory) -> None:
    gw = start_gateway(policy(TO_A))
    switch_at = 1.0
    results = await paced_traffic(gw.url, rate=20, seconds=5.5, at_s=switch_at,
                                  action=lambda: source(gw).write_text(policy(TO_B)))
    assert [r for r in results if r[1] != 200] == [], "no client sees an error during the switch"
    assert {p for sent, _, p in results if sent < switch_at} == {"a"}
    first_b = min(sent for sent, _, p in results if p == "b")
    assert first_b - switch_at < 3.0
    assert {p for sent, _, p in results if sent >= first_b} == {"b"}, "once moved, answers stay on b"
    assert {p for sent, _, p in results if sent >= switch_at + 3.0} == {"b"}


def test_a_bad_file_is_refused_with_its_line_and_the_previous_policy_keeps_answering(
        start_gateway: GatewayFactory, caplog: pytest.LogCaptureFixture) -> None:
    gw = start_gateway(policy(TO_B))
    before = gw.context.policy.sha256
    text = policy(BAD)
    source(gw).write_text(text)
    with caplog.at_level(logging.ERROR, logger="recloser.reload"):
        r = admin_reload(gw)
    assert r.status_code == 422
    error = r.json()["error"]
    assert error["code"] == "invalid_policy"
    assert f"{source(gw)}:{bad_line(text)}: routes.chat.targets[0]: unknown key 'wieght'" in error["message"]
    assert f"{source(gw)}:{bad_line(text)}:" in caplog.text
    assert gw.context.policy.sha256 == before
    answered = chat(gw.url)
    assert answered.status_code == 200 and answered.headers["x-recloser-provider"] == "b"
    metrics = httpx.get(gw.url + "/metrics").text
    assert re.search(r'recloser_policy_reloads_total\{result="error"\} [1-9]', metrics)
    assert f'recloser_policy_info{{sha256="{before}"}} 1.0' in metrics


def test_the_admin_endpoint_reloads_for_an_admin_key_only_and_reports_what_serves(
        start_gateway: GatewayFactory) -> None:
    gw = start_gateway(policy(TO_A))
    source(gw).write_text(policy(TO_B))
    refused = admin_reload(gw, APP_KEY)
    assert refused.status_code == 403
    assert chat(gw.url).headers["x-recloser-provider"] == "a"
    r = admin_reload(gw)
    assert r.status_code == 200, r.text
    new_sha = hashlib.sha256(policy(TO_B).encode()).hexdigest()
    assert r.json()["status"] == "reloaded" and r.json()["sha256"] == new_sha
    assert chat(gw.url).headers["x-recloser-provider"] == "b"
    assert admin_reload(gw).json()["status"] == "unchanged"
    metrics = httpx.get(gw.url + "/metrics").text
    assert f'recloser_policy_info{{sha256="{new_sha}"}} 1.0' in metrics
    assert 'recloser_policy_reloads_total{result="ok"} 1.0' in metrics


async def test_a_request_in_flight_finishes_on_the_policy_it_started_with(start_gateway: GatewayFactory) -> None:
    gw = start_gateway(policy(TO_A, first_token_delay_s=1.0))
    async with httpx.AsyncClient(timeout=10, headers={"Authorization": f"Bearer {APP_KEY}"}) as client:
        slow = asyncio.create_task(client.post(gw.base_url + "/chat/completions", json={"model": "chat", **HELLO}))
        while gw.context.admission.in_flight < 1:        # admitted and waiting on a's first token
            await asyncio.sleep(0.01)
        source(gw).write_text(policy(TO_B, first_token_delay_s=1.0))
        assert (await asyncio.to_thread(admin_reload, gw)).status_code == 200
        now = await client.post(gw.base_url + "/chat/completions", json={"model": "chat", **HELLO})
        started_before = await slow
    assert now.headers["x-recloser-provider"] == "b"
    assert started_before.status_code == 200 and started_before.headers["x-recloser-provider"] == "a"


def test_an_ejected_deployment_that_the_new_policy_keeps_stays_ejected(start_gateway: GatewayFactory) -> None:
    gw = start_gateway(policy(TO_A_THEN_B))
    gw.set_fault("a", Fault(status=500))
    for _ in range(3):
        assert chat(gw.url).headers["x-recloser-provider"] == "b"
    states = {row["provider"]: row["state"] for row in gw.context.board.report([])}
    assert states["a"] == "ejected"
    source(gw).write_text(policy(TO_A_THEN_B, extra="  other:\n    targets: [{provider: a, model: m}]\n"))
    assert admin_reload(gw).json()["status"] == "reloaded"
    rows = httpx.get(gw.url + "/admin/deployments", headers={"Authorization": f"Bearer {ADMIN_KEY}"}).json()["data"]
    assert {r["provider"]: r["state"] for r in rows}["a"] == "ejected"
    a_calls = gw.sim("a").request_count()
    assert chat(gw.url).headers["x-recloser-provider"] == "b"
    assert gw.sim("a").request_count() == a_calls, "the new policy does not send traffic to an ejected target"


def test_a_policy_without_keys_is_refused_where_the_gateway_needs_them(start_gateway: GatewayFactory) -> None:
    gw = start_gateway(policy(TO_A))
    gw.context.reloader.open_ok = False  # type: ignore[union-attr]   as when serving beyond loopback
    source(gw).write_text(policy(TO_B, auth=False))
    r = admin_reload(gw)
    assert r.status_code == 422 and "no auth section" in r.json()["error"]["message"]
    assert chat(gw.url).headers["x-recloser-provider"] == "a"


# --workers 2: SIGHUP to the supervisor and POST /admin/reload to any one worker reach both.

def readiness(url: str) -> dict[int, str]:
    """pid → sha256 of the policy it serves, asked on fresh connections so both workers answer."""
    seen: dict[int, str] = {}
    for _ in range(40):
        try:
            with httpx.Client() as c:
                body = c.get(url + "/readyz", timeout=5).json()
        except httpx.TransportError:
            continue
        if body.get("status") == "ready":
            seen[body["pid"]] = body["sha256"]
    return seen


def wait_for_both(url: str, sha: str, timeout_s: float = 30.0) -> dict[int, str]:
    deadline = time.monotonic() + timeout_s
    latest: dict[int, str] = {}
    while time.monotonic() < deadline:
        latest.update(readiness(url))
        if len(latest) >= 2 and all(v == sha for v in latest.values()):
            return latest
        time.sleep(0.1)
    raise AssertionError(f"workers never all served {sha[:12]}: {latest}")


@pytest.fixture
def two_workers(tmp_path: Path) -> Iterator[tuple[str, Path, subprocess.Popen[bytes]]]:
    path = tmp_path / "policy.yaml"
    path.write_text(policy(TO_A, auth=False))
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "gateway", "serve", "--policy", str(path), "--port", str(port),
                             "--workers", "2", "--watch-seconds", "0"], cwd=ROOT,
                            env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        yield f"http://127.0.0.1:{port}", path, proc
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)


def test_with_two_workers_sighup_and_the_admin_endpoint_switch_both(
        two_workers: tuple[str, Path, subprocess.Popen[bytes]]) -> None:
    url, path, supervisor = two_workers
    wait_for_both(url, hashlib.sha256(path.read_bytes()).hexdigest())

    path.write_text(policy(TO_B, auth=False))
    supervisor.send_signal(signal.SIGHUP)
    wait_for_both(url, hashlib.sha256(path.read_bytes()).hexdigest())
    for _ in range(6):
        with httpx.Client() as c:
            assert c.post(url + "/v1/chat/completions", json={"model": "chat", **HELLO}).headers[
                "x-recloser-provider"] == "b"

    path.write_text(policy(TO_A, auth=False))
    assert httpx.post(url + "/admin/reload", timeout=30).json()["status"] == "reloaded"
    pids = wait_for_both(url, hashlib.sha256(path.read_bytes()).hexdigest())
    assert len(pids) == 2
    assert supervisor.poll() is None, "a reload never restarts the supervisor or its workers"


def test_a_reload_keeps_the_ledger_writer_and_the_upstream_clients(start_gateway: GatewayFactory,
                                                                     tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.jsonl"
    with_ledger = f"metering: {{ledger: {{path: '{ledger}'}}}}\n"
    gw = start_gateway(policy(TO_A, extra=with_ledger))
    writer, attempts = gw.context.meter.ledger, gw.context.dispatcher.attempts
    assert chat(gw.url).headers["x-recloser-provider"] == "a"
    source(gw).write_text(policy(TO_B, extra=with_ledger))
    assert admin_reload(gw).json()["status"] == "reloaded"
    assert chat(gw.url).headers["x-recloser-provider"] == "b"
    # The same attempts object holds the same clients, and with them the one pooled upstream session.
    assert gw.context.meter.ledger is writer and gw.context.dispatcher.attempts is attempts
    gw.run(gw.context.meter.drain())
    providers = [json.loads(line)["provider"] for line in ledger.read_text().splitlines()]
    assert providers == ["a", "b"], "one ledger, written on by both policies"
