"""Thousands of long streams at once: what one gateway process holds, and what it costs per stream.

    python tests/perf/long_streams.py [--streams 5000] [--chunks 20] [--interval 1] [--ramp 5]
                                      [--workers 1,2] [--skip-direct] [--held] [--max-loop-lag-ms MS]
                                      [--write-docs]

A slow upstream (a raw asyncio protocol in a process of its own, core 1) answers every stream with a
200-byte chunk every `--interval` seconds, `--chunks` of them, then the usage chunk and `[DONE]`.
This process (core 1 too) opens `--streams` streams, spread evenly over `--ramp` seconds, each on
its own connection, first straight to the upstream, then through `recloser serve` (core 0, or both
cores with `--workers 2`) with the default policy limits. Prints, per run:

- completed: streams that got `[DONE]` after a 200;
- TTFT: from a stream's scheduled start to its first chunk (p50 / p99);
- chunk delay: how much later than the upstream's interval each chunk came after the one before it,
  counting only chunks that arrived while every stream was open (p50 / p99);
- RSS per stream: the gateway's resident memory once every stream it admitted has its first
  chunk, less its idle memory, per stream admitted;
- growth per chunk: its memory growth from then until the first stream ends, per chunk relayed;
- CPU per chunk: the gateway's user + system CPU over the run, per chunk relayed;
- collector pauses: full collections and pauses over 20 ms (`recloser_gc_pause_seconds`);
- breaker transitions and requests shed, from the gateway's /metrics.

`--held` adds N streams held through an outage (the route's `hold_s` as long as the streams, its
one target down): completed counts those held to the end of their hold and then answered with its
error event; CPU is per held request. `--max-loop-lag-ms 0` turns the loop-lag shedding off, to
see what the process holds when nothing is refused.

Asserts nothing: the numbers are printed, and the machine's load average with them. Everything stays
on 127.0.0.1 and stops by itself.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))

from long_streams_report import HEADER, Run, collector, metric_sum, scrape  # noqa: E402
from long_streams_wire import (Streamed, open_streams, ready_for_many_connections, serve_upstream,  # noqa: E402,F401
                               sse_chunk)  # (sse_chunk: the smoke test's)
from procs import Proc, cpu_seconds, status_kb  # noqa: E402
from report import machine, render, replace_block  # noqa: E402


def policy(upstream_port: int, hold_s: float = 0.0, max_loop_lag_ms: int | None = None,
           loop_lag_wait_ms: int | None = None, stream_loop_lag_wait_ms: int | None = None) -> str:
    """The default limits (none set): admission sized from descriptors, the loop-lag cap at 20 ms.
    With `hold_s`, the route holds what its target (then down) cannot answer."""
    hold = f"    hold_s: {hold_s:g}\n" if hold_s else ""
    set_limits = {k: v for k, v in (("max_loop_lag_ms", max_loop_lag_ms), ("loop_lag_wait_ms", loop_lag_wait_ms),
                                    ("stream_loop_lag_wait_ms", stream_loop_lag_wait_ms)) if v is not None}
    limits = f"limits: {{{', '.join(f'{k}: {v}' for k, v in set_limits.items())}}}\n" if set_limits else ""
    return (f"version: 1\n{limits}providers:\n  slow: {{kind: openai, base_url: \"http://127.0.0.1:{upstream_port}/v1\"}}\n"
            f"routes:\n  chat:\n{hold}    targets: [{{provider: slow, model: m}}]\n")


async def direct(port: int, args: argparse.Namespace) -> Run:
    records, tally, began = await open_streams(port, args.streams, args.ramp, args.interval, args.chunks)
    return Run("direct", args.streams, records, tally, (began + args.ramp, began + args.chunks * args.interval))


async def through_gateway(upstream_port: int, port: int, workers: int, args: argparse.Namespace, tmp: Path,
                          held: bool = False) -> Run:
    """Streams through `serve`; `held`: to an upstream that is down, each held for the streams' length."""
    hold_s = args.chunks * args.interval if held else 0.0
    (tmp / "policy.yaml").write_text(policy(free_port() if held else upstream_port, hold_s, args.max_loop_lag_ms,
                                                   args.loop_lag_wait_ms, args.stream_loop_lag_wait_ms))
    argv = [sys.executable, "-m", "gateway", "serve", "--policy", str(tmp / "policy.yaml"), "--port", str(port),
            "--watch-seconds", "0"]
    if workers > 1:
        argv += ["--workers", str(workers)]
    gw = Proc(f"gateway x{workers}", argv, "0" if workers == 1 else "0,1", log=tmp / f"gateway-{workers}.log",
              env={"PYTHONPATH": str(ROOT)})
    gw.start()
    try:
        gw.wait_ready(f"http://127.0.0.1:{port}/readyz")
        await asyncio.sleep(1.0)            # workers settle: collector frozen, connections pooled
        idle_kb, cpu0 = status_kb(gw.pid, "VmRSS"), cpu_seconds(gw.pid)
        before = scrape(port)
        loop = asyncio.get_running_loop()
        all_open: asyncio.Future[list[Streamed]] = loop.create_future()
        starting = time.perf_counter()
        running = asyncio.create_task(open_streams(port, args.streams, args.ramp, args.interval, args.chunks,
                                                   all_open))
        opened = await all_open
        # Until every stream admitted has its first chunk (bounded: half the streams' length).
        while time.perf_counter() < starting + args.chunks * args.interval / 2 and any(
                r.first_at is None and r.status in (0, 200) and not r.error for r in opened):
            await asyncio.sleep(0.1)
        await asyncio.sleep(min(1.0, args.interval))
        open_kb, open_at, open_cpu = status_kb(gw.pid, "VmRSS"), time.perf_counter(), cpu_seconds(gw.pid)
        opened_metrics = scrape(port)
        # Just before the first stream ends: every stream is still open, and has relayed more chunks.
        await asyncio.sleep(max(0.0, starting + args.chunks * args.interval - 0.5 * args.interval - time.perf_counter()))
        late_kb, late_at, late_cpu = status_kb(gw.pid, "VmRSS"), time.perf_counter(), cpu_seconds(gw.pid)
        late_metrics = scrape(port)
        records, tally, began = await running
        cpu = cpu_seconds(gw.pid) - cpu0
        after = scrape(port)
    finally:
        gw.stop()
    n = max(1, sum(1 for r in records if r.status == 200))   # the streams the gateway admitted
    chunks_between = n * (late_at - open_at) / args.interval
    full, long_pauses = collector(before, after)
    print(f"  collector: {metric_sum(after, 'recloser_gc_freezes_total', 'freeze'):.0f} freezes, "
          f"{metric_sum(after, 'recloser_gc_freezes_total', 'thaw'):.0f} thaws; "
          f"{metric_sum(after, 'recloser_gc_pause_seconds_count'):.0f} collections", flush=True)
    if held:
        n = max(1, sum(1 for r in records if r.status == 200))
    lag = "" if args.max_loop_lag_ms is None else f", max_loop_lag_ms {args.max_loop_lag_ms}"
    lag += "" if args.loop_lag_wait_ms is None else f", loop_lag_wait_ms {args.loop_lag_wait_ms}"
    lag += "" if args.stream_loop_lag_wait_ms is None else f", stream_loop_lag_wait_ms {args.stream_loop_lag_wait_ms}"
    return Run(f"{'held, ' if held else ''}gateway, {workers} worker{'s' if workers > 1 else ''}{lag}", args.streams,
               records, tally, (began + args.ramp, began + args.chunks * args.interval),
               rss_per_stream_kb=(open_kb - idle_kb) / n,
               growth_per_chunk_b=None if held else 1024 * (late_kb - open_kb) / max(1.0, chunks_between),
               cpu_per_chunk_us=1e6 * cpu / (n if held else max(1, tally.chunks)), held_s=hold_s,
               relay_us=None if held else 1e6 * (late_cpu - open_cpu) / max(1, sum(
                   1 for at, _ in tally.delays if open_at <= at <= late_at)),
               full_collections=int(full), long_pauses=int(long_pauses),
               long_pauses_open=None if held else int(collector(opened_metrics, late_metrics)[1]),
               transitions=int(metric_sum(after, "recloser_breaker_transitions_total")),
               shed=int(metric_sum(after, "recloser_shed_requests_total")))


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def run(args: argparse.Namespace) -> list[Run]:
    runs = []
    with contextlib.ExitStack() as stack:
        tmp = args.logs or stack.enter_context(tempfile.TemporaryDirectory(prefix="recloser-long-streams-"))
        upstream_port = free_port()
        upstream = Proc("slow upstream", [sys.executable, __file__, "--upstream", str(upstream_port),
                                          "--chunks", str(args.chunks), "--interval", str(args.interval)],
                        "1", log=Path(tmp) / "upstream.log")
        upstream.start()
        try:
            await wait_listening(upstream_port)
            if not args.skip_direct:
                runs.append(await direct(upstream_port, args))
                print(" | ".join(runs[-1].cells()), flush=True)
            for workers in args.workers:
                runs.append(await through_gateway(upstream_port, free_port(), workers, args, Path(tmp)))
                print(" | ".join(runs[-1].cells()), flush=True)
                print(f"  not completed: {runs[-1].why_not()}", flush=True)
            if args.held:
                runs.append(await through_gateway(upstream_port, free_port(), 1, args, Path(tmp), held=True))
                print(" | ".join(runs[-1].cells()), flush=True)
        finally:
            upstream.stop()
    return runs


async def wait_listening(port: int) -> None:
    async with asyncio.timeout(30):
        while True:
            with contextlib.suppress(OSError):
                _, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.close()
                return
            await asyncio.sleep(0.05)


def main(argv: list[str] | None = None) -> list[Run]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--streams", type=int, default=5000)
    parser.add_argument("--chunks", type=int, default=20)
    parser.add_argument("--interval", type=float, default=1.0)
    parser.add_argument("--ramp", type=float, default=5.0)
    parser.add_argument("--workers", default="1", help="comma-separated: gateway runs with this many workers")
    parser.add_argument("--skip-direct", action="store_true")
    parser.add_argument("--held", action="store_true", help="also N requests held through an outage (one worker)")
    parser.add_argument("--logs", help="keep the policy and the processes' logs in this folder")
    parser.add_argument("--max-loop-lag-ms", type=int, help="set limits.max_loop_lag_ms (0: no loop-lag shedding)")
    parser.add_argument("--loop-lag-wait-ms", type=int,
                        help="set limits.loop_lag_wait_ms (0: a newcomer the loop-lag cap refuses is shed at once)")
    parser.add_argument("--stream-loop-lag-wait-ms", type=int,
                        help="set limits.stream_loop_lag_wait_ms (0: a stream the loop-lag cap refuses is shed at once)")
    parser.add_argument("--write-docs", action="store_true")
    parser.add_argument("--block", help="with --write-docs: the docs block to write (default: named by the limits set)")
    parser.add_argument("--upstream", type=int, help=argparse.SUPPRESS)   # run as the slow upstream
    args = parser.parse_args(argv)
    ready_for_many_connections()
    if args.upstream:
        asyncio.run(serve_upstream(args.upstream, args.chunks, args.interval))
        return []
    args.workers = [int(w) for w in str(args.workers).split(",")]
    with contextlib.suppress(OSError):
        os.sched_setaffinity(0, {1 % (os.cpu_count() or 1)})
    load = os.getloadavg()
    print(f"{args.streams} streams of {args.chunks} chunks every {args.interval:g} s, opened over {args.ramp:g} s; "
          f"load average {load[0]:.1f}", flush=True)
    runs = asyncio.run(run(args))
    table = render([HEADER, *[r.cells() for r in runs]])
    print(table)
    if args.write_docs:
        stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
        block = "long-streams" if args.max_loop_lag_ms is None else f"long-streams-lag-{args.max_loop_lag_ms}"
        block += "" if args.loop_lag_wait_ms is None else f"-wait-{args.loop_lag_wait_ms}"
        block = args.block or block
        replace_block(ROOT / "docs" / "performance.md", block,
                      f"Measured {stamp}: {args.streams} streams of {args.chunks} chunks every {args.interval:g} s, "
                      f"opened over {args.ramp:g} s; load average {load[0]:.1f} at the start "
                      f"(a machine shared with other work). {machine()}\n\n{table}\n")
    return runs


if __name__ == "__main__":
    main()
