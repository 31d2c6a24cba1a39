"""What metering adds to one request: the meter's work after a request ends, timed in-process.

    python tests/perf/metering_cost.py

Times `Meter.finish` for a non-stream answer and a 20-chunk stream (usage read from the answer, cost
from the price book, counters and histograms, a budget, and a ledger record queued), and the budget
check made before a request; then the attempt journal's share: the start record each upstream attempt
queues (`Meter.attempt_started`), per request with and without it, and how long a queued start takes
to reach the file while the writer keeps up with 200 requests/s. Prints microseconds; asserts nothing.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parents[1]))

from fake_upstream import STREAM_USAGE, WHOLE  # noqa: E402

from gateway.metering.journal import journal_path  # noqa: E402
from gateway.routing.request_log import AttemptRecord, RequestLog  # noqa: E402
from gateway.core.auth import Caller  # noqa: E402
from gateway.metering.budgets import BudgetBook  # noqa: E402
from gateway.metering.ledger import LedgerWriter  # noqa: E402
from gateway.metering.meter import Meter  # noqa: E402
from gateway.metering.prices import PriceBook  # noqa: E402
from gateway.core.metrics import Metrics  # noqa: E402
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
        entry.body = b"" if stream else whole_body
        for chunk in chunks if stream else ():
            entry.transcript.add(chunk)
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
            out.extend(await journal_cost(Path(tmp)))
        return out

    async def journal_cost(tmp: Path) -> list[str]:
        """The start record, timed alone and as a share of a metered stream, and its way to the file."""
        from gateway.policy.metering import LedgerSettings

        ledger = LedgerWriter(LedgerSettings(path=str(tmp / "journal-bench.jsonl")))
        await ledger.start()
        meter = Meter(PriceBook(doc), BudgetBook(doc.budgets), Metrics(), ledger)
        out = []
        for journal in (False, True):
            logs = [log(True) for _ in range(n)]
            started = time.perf_counter()
            for entry in logs:
                if journal:
                    meter.attempt_started(entry, entry.attempts[0], entry.call)
                meter.finish(entry, 200, 0.01)
            per_call = (time.perf_counter() - started) / n * 1e6
            out.append(f"metered 20-chunk stream, with ledger, {'with' if journal else 'without'} the start record: "
                       f"{per_call:.1f} µs")
            await ledger.flush()
        logs = [log(True) for _ in range(n)]
        started = time.perf_counter()
        for entry in logs:
            meter.attempt_started(entry, entry.attempts[0], entry.call)
        out.append(f"Meter.attempt_started alone: {(time.perf_counter() - started) / n * 1e6:.1f} µs")
        await ledger.flush()
        # From queueing a start to its line being in the file, one start every 5 ms (200 requests/s,
        # each also writing its request record), as the event loop sees it.
        journal_file = journal_path(ledger.path, os.getpid())
        delays = []
        for entry in logs[:400]:
            size = journal_file.stat().st_size
            queued = time.perf_counter()
            meter.attempt_started(entry, entry.attempts[0], entry.call)
            meter.finish(entry, 200, 0.01)
            while journal_file.stat().st_size == size:   # bounded: the writer is running
                await asyncio.sleep(0)
            delays.append(time.perf_counter() - queued)
            await asyncio.sleep(max(0.0, 0.005 - (time.perf_counter() - queued)))
        delays.sort()
        out.append(f"start record queued → in the file, at 200 requests/s: p50 {delays[len(delays) // 2] * 1e3:.2f} ms, "
                   f"p99 {delays[int(len(delays) * 0.99)] * 1e3:.2f} ms, max {delays[-1] * 1e3:.2f} ms")
        await ledger.close()
        return out

    for line in asyncio.run(timed()):
        print(line)


if __name__ == "__main__":
    main()
