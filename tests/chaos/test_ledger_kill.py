"""`kill -9` under load: every upstream call ends up in the ledger, completed or interrupted.

The gateway runs as a real process (`python -m gateway serve`) in front of a simulated upstream that
runs here, in the test, so it outlives the kill and counts the calls it was sent: the ground truth.
Streams arrive open loop at 100/s, each a second long, and the gateway is SIGKILLed with about a
hundred of them in flight. Restarted on the same ledger, it must have charged each one.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp

from gateway.metering import journal
from gateway.metering.ledger import ledger_files, read_ledger
from gateway.metering.record import parse_ts
from gateway.sim.behaviour import SimConfig
from gateway.sim.server import SimServer
from tests.conftest import free_port, write_policy

ROOT = Path(__file__).resolve().parents[2]
RATE_PER_S = 100
LOAD_S = 2.5
# The writer's promise (gateway/metering/ledger.py): a start is in the file within one batch. Calls the
# upstream received more than this before the kill must be in the journal; later ones may be.
GUARANTEE_S = 0.1


def policy(upstream: str, ledger: Path) -> str:
    return f"""
    version: 1
    providers:
      up:
        kind: openai
        base_url: "{upstream}"
        models: {{m: {{input_usd_per_mtok: 1, output_usd_per_mtok: 2, max_output_tokens: 500}}}}
    routes:
      chat: {{targets: [{{provider: up, model: m}}]}}
    metering:
      ledger: {{path: "{ledger}"}}
    """


async def start_gateway(policy_file: Path, port: int) -> asyncio.subprocess.Process:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway", "serve", "--policy", str(policy_file), "--port", str(port), cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 60
    async with aiohttp.ClientSession() as http:
        # Another process's start-up cannot be awaited: ask until it is ready (bounded).
        while time.monotonic() < deadline and proc.returncode is None:
            try:
                async with http.get(f"http://127.0.0.1:{port}/readyz") as r:
                    if r.status == 200:
                        return proc
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise AssertionError(f"the gateway never became ready (exit {proc.returncode})")


async def stream(http: aiohttp.ClientSession, port: int, i: int) -> None:
    body = {"model": "chat", "stream": True, "messages": [{"role": "user", "content": f"call {i}"}]}
    try:
        async with http.post(f"http://127.0.0.1:{port}/v1/chat/completions", json=body,
                             headers={"X-Request-Id": f"chaos-{i:05d}"}) as r:
            async for _ in r.content.iter_any():
                pass
    except (aiohttp.ClientError, asyncio.TimeoutError):
        pass   # the kill cut it


async def spend(ledger: Path) -> list[dict[str, Any]]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway", "spend", "--ledger", str(ledger), "--by", "team", "--json", cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=asyncio.subprocess.PIPE)
    out, _ = await proc.communicate()
    assert proc.returncode == 0
    return json.loads(out)  # type: ignore[no-any-return]


async def test_every_upstream_call_in_flight_at_a_kill_is_charged_as_interrupted_after_the_restart(
        tmp_path: Path) -> None:
    sim = SimServer(SimConfig(name="up", reply_tokens=20, chunk_delay_s=0.05))   # a stream lasts ~1 s
    await sim.start()
    ledger = tmp_path / "spend" / "ledger.jsonl"
    policy_file = write_policy(tmp_path, policy(sim.base_url, ledger))
    port = free_port()
    gateway = await start_gateway(policy_file, port)
    second: asyncio.subprocess.Process | None = None
    try:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0),
                                         timeout=aiohttp.ClientTimeout(total=30)) as http:
            clients = []
            for i in range(int(RATE_PER_S * LOAD_S)):
                clients.append(asyncio.create_task(stream(http, port, i)))
                await asyncio.sleep(1 / RATE_PER_S)
            killed_at, killed_wall = time.monotonic(), time.time()
            os.killpg(gateway.pid, signal.SIGKILL)
            await gateway.wait()
            await asyncio.gather(*clients)
        received = {request_id(r.headers): r.at for r in sim.requests if r.path.endswith("/chat/completions")}
        [(dead_pid, dead_journal)] = journal.journals(ledger)
        assert dead_pid == gateway.pid
        starts = {line["request_id"]: line for line in read_ledger([dead_journal]) if line["kind"] == "started"}
        before_restart = list(read_ledger(ledger_files(ledger)))

        # Ground truth: the upstream's calls were journalled as started, and nothing else was.
        surely = {rid for rid, at in received.items() if at < killed_at - GUARANTEE_S}
        assert surely <= set(starts), sorted(surely - set(starts))[:5]
        phantoms = set(starts) - set(received)
        assert all(json_ts(starts[rid]) > killed_wall - GUARANTEE_S for rid in phantoms), phantoms

        second = await start_gateway(policy_file, port)   # the same ledger: recovery at start-up
        lines = list(read_ledger(ledger_files(ledger)))
        completed = {line["request_id"] for line in before_restart if line["kind"] == "request"}
        interrupted = {line["request_id"]: line for line in lines if line.get("outcome") == "interrupted"}
        print(f"upstream calls {len(received)}, started {len(starts)}, completed {len(completed)}, "
              f"interrupted {len(interrupted)}")
        assert len(completed) > 20 and len(interrupted) > 20, (len(completed), len(interrupted))
        assert set(starts) == completed | set(interrupted) and not completed & set(interrupted)
        assert len(starts) == len(completed) + len(interrupted)
        assert set(received) - set(starts) <= {rid for rid, at in received.items() if at >= killed_at - GUARANTEE_S}
        assert not dead_journal.exists()
        for rid, line in interrupted.items():
            assert (line["usage_source"], line["output_tokens"], line["cost_usd"]) == \
                ("interrupted", 500, starts[rid]["worst_cost_usd"])

        [team, total] = await spend(ledger)
        assert Decimal(total["cost_usd"]) == sum(Decimal(line["cost_usd"]) for line in lines)
        assert Decimal(total["cost_usd"]) > sum(Decimal(line["cost_usd"]) for line in interrupted.values()) > 0
        assert total["requests"] == len(completed) + len(interrupted)
    finally:
        for proc in (gateway, second):
            if proc is not None and proc.returncode is None:
                os.killpg(proc.pid, signal.SIGKILL)
                await proc.wait()
        await sim.stop()


def json_ts(line: dict[str, Any]) -> float:
    return parse_ts(line["ts"])


def request_id(headers: dict[str, str]) -> str:
    return next(v for k, v in headers.items() if k.lower() == "x-request-id")
