"""Streams coming and going for minutes above the collector-freeze level: does memory stay flat?

    python tests/perf/stream_soak.py [--concurrent 1200] [--minutes 3] [--chunks 12] [--interval 0.5]
                                     [--abort-share 0.1] [--every 10] [--ramp 5]

With more requests in flight than `limits.collector_freeze_in_flight` (1,000 by default), what
survives a collection is frozen out of the collector until the load falls under half that level. An
object frozen while alive that later becomes cyclic garbage waits for that thaw, so a load that never
falls is where a leak would show. This keeps `--concurrent` streams open through one `recloser serve`
worker (core 0) for `--minutes`: each stream gets `--chunks` chunks every `--interval` seconds from
the long-streams benchmark's slow upstream and is replaced by a new one as it ends; `--abort-share`
of them are dropped by their client after two chunks (an agent cancelling), which leaves the gateway
cancelled tasks and exceptions, the usual makers of cycles. Every `--every` seconds it prints the
gateway's RSS, streams completed, freezes and thaws, collections and pauses over 20 ms; at the end,
RSS growth per 1,000 streams after the first minute (a flat line is near 0).

Asserts nothing: the numbers are printed. Everything stays on 127.0.0.1 and stops by itself.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))

from long_streams import free_port, policy, wait_listening  # noqa: E402
from long_streams_report import metric_sum, scrape  # noqa: E402
from long_streams_wire import Streamed, StreamClient, Tally, ready_for_many_connections, stream_request  # noqa: E402
from procs import Proc, status_kb  # noqa: E402


class DroppingClient(StreamClient):
    """A client that hangs up after `after` chunks, as an agent cancelling its turn does."""

    def __init__(self, *args: object, after: int) -> None:
        super().__init__(*args)  # type: ignore[arg-type]
        self.after, self.seen = after, 0

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self.seen += data.count(b"data: {")
        if self.seen >= self.after and self.transport is not None and not self.transport.is_closing():
            self.record.error = "dropped"
            self.transport.abort()


@dataclass
class Counts:
    completed: int = 0
    dropped: int = 0
    failed: int = 0
    why: Counter[str] = field(default_factory=Counter)    # of the failed: status or error

    def fail(self, why: str) -> None:
        self.failed += 1
        self.why[why] += 1


async def keep_streaming(port: int, request: bytes, after_s: float, until: float, interval: float, drop: bool,
                         tally: Tally, counts: Counts) -> None:
    """One of the concurrent slots: from `after_s` on, a stream, then the next, until `until`."""
    loop = asyncio.get_running_loop()
    await asyncio.sleep(after_s)
    while time.monotonic() < until:
        record = Streamed(time.perf_counter())
        finished: asyncio.Future[None] = loop.create_future()
        try:
            if drop:
                await loop.create_connection(lambda: DroppingClient(record, request, tally, interval, finished,
                                                                    after=2), "127.0.0.1", port)
            else:
                await loop.create_connection(lambda: StreamClient(record, request, tally, interval, finished),
                                             "127.0.0.1", port)
            await finished
        except OSError as exc:
            counts.fail(exc.strerror or type(exc).__name__)
            await asyncio.sleep(interval)
            continue
        if record.error == "dropped":
            counts.dropped += 1
        elif record.done:
            counts.completed += 1
        else:
            counts.fail(record.error or f"status {record.status}")
            await asyncio.sleep(interval)   # a refused stream: no hot loop of refusals


async def soak(args: argparse.Namespace, tmp: Path) -> None:
    upstream_port, port = free_port(), free_port()
    upstream = Proc("slow upstream", [sys.executable, str(HERE / "long_streams.py"), "--upstream", str(upstream_port),
                                      "--chunks", str(args.chunks), "--interval", str(args.interval)],
                    "1", log=tmp / "upstream.log")
    (tmp / "policy.yaml").write_text(policy(upstream_port))
    gw = Proc("gateway", [sys.executable, "-m", "gateway", "serve", "--policy", str(tmp / "policy.yaml"),
                          "--port", str(port), "--watch-seconds", "0"], "0", log=tmp / "gateway.log",
              env={"PYTHONPATH": str(ROOT)})
    upstream.start()
    gw.start()
    try:
        await wait_listening(upstream_port)
        gw.wait_ready(f"http://127.0.0.1:{port}/readyz")
        await asyncio.sleep(1.0)
        idle_kb = status_kb(gw.pid, "VmRSS")
        print(f"idle RSS {idle_kb / 1024:.1f} MB; {args.concurrent} streams at once for {args.minutes:g} min, "
              f"{args.chunks} chunks every {args.interval:g} s, {args.abort_share:.0%} dropped by their client",
              flush=True)
        began = time.monotonic()
        until = began + 60 * args.minutes
        request, tally, counts = stream_request(port), Tally(), Counts()
        slots = [asyncio.create_task(keep_streaming(port, request, args.ramp * i / args.concurrent, until,
                                                    args.interval, dropping(i, args.abort_share), tally, counts))
                 for i in range(args.concurrent)]
        samples: list[tuple[float, int, int]] = []     # (seconds in, streams ended, RSS kB)
        while time.monotonic() < until:
            await asyncio.sleep(args.every)
            text = scrape(port)
            rss = status_kb(gw.pid, "VmRSS")
            ended = counts.completed + counts.dropped
            samples.append((time.monotonic() - began, ended, rss))
            print(f"{samples[-1][0]:6.0f} s  RSS {rss / 1024:7.1f} MB  completed {counts.completed:7d}  "
                  f"dropped {counts.dropped:6d}  failed {counts.failed:5d}  "
                  f"freezes {metric_sum(text, 'recloser_gc_freezes_total', 'freeze'):5.0f}  "
                  f"thaws {metric_sum(text, 'recloser_gc_freezes_total', 'thaw'):3.0f}  "
                  f"collections {metric_sum(text, 'recloser_gc_pause_seconds_count'):6.0f}  "
                  f"over 20 ms {pauses_over(text, 0.02):4.0f}", flush=True)
        async with asyncio.timeout(args.chunks * args.interval + 30):
            await asyncio.gather(*slots, return_exceptions=True)
        await asyncio.sleep(2 * args.every)    # the load is gone: the freeze thaws
        rss = status_kb(gw.pid, "VmRSS")
        text = scrape(port)
        print("pauses over 20 ms by generation (young, middle, full): " + ", ".join(
            f"{pauses_over(text, 0.02, g):.0f} of {collections(text, g):.0f}"
            for g in range(3)), flush=True)
        print(f"after the load: RSS {rss / 1024:.1f} MB, thaws "
              f"{metric_sum(text, 'recloser_gc_freezes_total', 'thaw'):.0f}; failed: {dict(counts.why) or 'none'}",
              flush=True)
        later = [s for s in samples if s[0] >= 60]
        if len(later) >= 2:
            (_, e0, r0), (_, e1, r1) = later[0], later[-1]
            print(f"RSS growth after the first minute: {(r1 - r0) / 1024:+.1f} MB over {e1 - e0} streams "
                  f"({1000 * (r1 - r0) / max(1, e1 - e0):+.1f} kB per 1,000 streams)", flush=True)
    finally:
        gw.stop()
        upstream.stop()


def dropping(slot: int, share: float) -> bool:
    """`share` of the slots, spread evenly over them, drop their streams."""
    return int((slot + 1) * share) > int(slot * share)


def collections(text: str, generation: int) -> float:
    return metric_sum(text, "recloser_gc_pause_seconds_count", f'generation="{generation}"')


def pauses_over(text: str, seconds: float, generation: int | None = None) -> float:
    """Collections longer than `seconds` (of one generation, or all): the count less those in buckets up to it."""
    of = "" if generation is None else f'generation="{generation}"'
    total = metric_sum(text, "recloser_gc_pause_seconds_count", of)
    within = sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                 if line.startswith("recloser_gc_pause_seconds_bucket") and f'le="{seconds}"' in line and of in line)
    return total - within


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--concurrent", type=int, default=1200)
    parser.add_argument("--minutes", type=float, default=3.0)
    parser.add_argument("--chunks", type=int, default=12)
    parser.add_argument("--interval", type=float, default=0.5)
    parser.add_argument("--abort-share", type=float, default=0.1)
    parser.add_argument("--every", type=float, default=10.0)
    parser.add_argument("--ramp", type=float, default=5.0, help="the slots start evenly over this long")
    args = parser.parse_args(argv)
    ready_for_many_connections()
    with contextlib.suppress(OSError):
        os.sched_setaffinity(0, {1 % (os.cpu_count() or 1)})
    with tempfile.TemporaryDirectory(prefix="recloser-stream-soak-") as tmp:
        asyncio.run(soak(args, Path(tmp)))


if __name__ == "__main__":
    main()
