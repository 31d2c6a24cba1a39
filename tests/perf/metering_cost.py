"""What metering adds to one request: the meter's work after a request ends, timed in-process.

    python tests/perf/metering_cost.py

Times `Meter.finish` for a non-stream answer and a 20-chunk stream (usage read from the answer, cost
from the price book, counters and histograms, a budget, and a ledger record queued), and the budget
check made before a request. Prints microseconds per call; asserts nothing.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parents[1]))

from fake_upstream import STREAM_USAGE, WHOLE  # noqa: E402

from gateway.request_log import AttemptRecord, RequestLog  # noqa: E402
from gateway.auth import Caller  # noqa: E402
from gateway.metering.budgets import BudgetBook  # noqa: E402
from gateway.metering.ledger import LedgerWriter  # noqa: E402
from gateway.metering.meter import Meter  # noqa: E402
from gateway.metering.prices import PriceBook  # noqa: E402
from gateway.metrics import Metrics  # noqa: E402
from gateway.policy.load import parse_policy  # noqa: E402
from gateway.providers.base import Call  # noqa: E402
from gateway.routing.table import build_routing, resolve_upstreams  # noqa: E402

POLICY = """
version: 1
providers:
  up: {kind: openai, base_url: "http://127.0.0.1:1/v1", models: {gpt-4o-mini: {input_usd_per_mtok: 0.15, output_usd_per_mtok: 0.6}}}
routes:
  chat: {targets: [{provider: up, model: gpt-4o-mini}]}
auth:
  keys: [{id: web, sha256: "%s", team: search, app: web}]
budgets:
  - {name: search-daily, team: search, period: day, limit_usd: 1000000, action: reject}
""" % ("0" * 64)


def main(n: int = 20_000) -> None:
    loaded = parse_policy(POLICY, "bench")
    doc = loaded.document
    routing = build_routing(doc, resolve_upstreams(doc, {}))
    route = routing.routes["chat"]
    d = route.deployments[0]
    caller = Caller("web", "search", "web")
    whole_body = WHOLE.split(b"\r\n\r\n", 1)[1]
    stream_events = STREAM_USAGE.split(b"\r\n\r\n", 1)[1].split(b"\r\n", 1)[1].rsplit(b"\r\n0\r\n", 1)[0]
    chunks = [e + b"\n\n" for e in stream_events.split(b"\n\n") if e]

    def log(stream: bool) -> RequestLog:
        body = {"model": "chat", "messages": [{"role": "user", "content": "hello there"}], "stream": stream}
        entry = RequestLog(route, Call("chat", body, stream, "rid"), caller, 0.0, 600.0)
        entry.attempts.append(AttemptRecord(d, 0.0, ended=0.002, ttft_s=0.002))
        entry.answered_by = d
        entry.body, entry.relayed = (b"", list(chunks)) if stream else (whole_body, [])
        return entry

    async def timed() -> list[str]:
        out = []
        with tempfile.TemporaryDirectory() as tmp:
            from gateway.policy.metering import LedgerSettings

            for label, ledger in (("no ledger", None),
                                  ("with ledger", LedgerWriter(LedgerSettings(path=f"{tmp}/ledger.jsonl")))):
                if ledger is not None:
                    await ledger.start()
                meter = Meter(PriceBook(doc), BudgetBook(doc.budgets), Metrics(), ledger)
                for stream in (False, True):
                    logs = [log(stream) for _ in range(n)]
                    started = time.perf_counter()
                    for entry in logs:
                        meter.finish(entry, 200, 0.01)
                    per_call = (time.perf_counter() - started) / n * 1e6
                    out.append(f"Meter.finish, {'20-chunk stream' if stream else 'non-stream'}, {label}: "
                               f"{per_call:.1f} µs")
                    if ledger is not None:
                        await ledger.flush()
                started = time.perf_counter()
                for _ in range(n):
                    meter.admit(caller)
                out.append(f"budget check before a request ({label}): "
                           f"{(time.perf_counter() - started) / n * 1e6:.1f} µs")
                if ledger is not None:
                    await ledger.close()
        return out

    for line in asyncio.run(timed()):
        print(line)


if __name__ == "__main__":
    main()
