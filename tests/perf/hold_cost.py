"""What held requests cost the process: N requests held on one route (half of them streams), then
the shared timer's tick (expiry, keepalives due for every stream, the pace) and the memory per held
request. The line and its waiters only, no sockets: the cost a held stream's socket adds is the
long-streams benchmark's. Prints numbers; never asserts one.

    python tests/perf/hold_cost.py [--held N]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import sys
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from gateway.core.deployment import Deployment  # noqa: E402
from gateway.core.metrics import Metrics  # noqa: E402
from gateway.flow.holding import KEEPALIVE_S, HoldLine, Wake  # noqa: E402
from gateway.policy.schema import Breaker, Route, Target, Timeouts  # noqa: E402
from gateway.routing.breaker import Outcome  # noqa: E402
from gateway.routing.health import HealthBoard  # noqa: E402
from gateway.routing.table import RouteTable  # noqa: E402


async def measure(n: int) -> None:
    cfg = Breaker(consecutive_failures=1)
    d = Deployment(provider="p", model="m", kind="openai", base_url="http://127.0.0.1:1/v1", timeouts=Timeouts())
    now = [100.0]
    metrics = Metrics()
    board = HealthBoard([d], metrics, lambda: now[0], cfg)
    route = RouteTable(name="chat", deployments=(d,), weights=(1,), priorities=(0,),
                       config=Route(targets=[Target(provider="p", model="m")]), breaker=cfg)
    board.track([d], [route])
    board.record(d, Outcome(ok=False, at=now[0], reason="connect"), cfg)
    line = HoldLine(board, metrics, lambda: now[0], max_held=2 * n + 1)
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    probe = [line.enter(route, 1, now[0] + 3600, stream=True) for _ in range(n)]
    per_held = (tracemalloc.get_traced_memory()[0] - before) / n
    tracemalloc.stop()
    for h in probe:
        line.leave(h)
    started = time.perf_counter()
    held = [line.enter(route, 1, now[0] + 3600, stream=i % 2 == 0) for i in range(n)]
    enter_s = time.perf_counter() - started
    # Each held request's handler waits on its future (in the gateway, the handler's own task).
    waiters = [asyncio.ensure_future(line.wait(h)) for h in held]
    await asyncio.sleep(0)
    quiet, pings = [], []
    for _ in range(5):
        now[0] += 1
        started = time.perf_counter()
        line.tick(now[0])
        quiet.append(time.perf_counter() - started)
    for _ in range(3):
        now[0] += KEEPALIVE_S
        started = time.perf_counter()
        line.tick(now[0])
        pings.append(time.perf_counter() - started)
        await asyncio.sleep(0)      # the woken waiters run (and would write their keepalive) …
        waiters = [w if not w.done() else asyncio.ensure_future(line.wait(h)) for w, h in zip(waiters, held)]
        await asyncio.sleep(0)      # … and wait again
    for w in waiters:
        w.cancel()
    await asyncio.gather(*waiters, return_exceptions=True)
    print(f"held requests                 {n:>10,}  (half streams)")
    print(f"entering the line             {1e6 * enter_s / n:>10.2f} µs a request")
    print(f"memory per held request       {per_held:>10.0f} B   (its place in the line; tracemalloc)")
    print(f"tick, nothing due             {1e3 * statistics.median(quiet):>10.2f} ms  median of 5 (once a second "
          f"while anything is held)")
    print(f"tick, keepalives due          {1e3 * statistics.median(pings):>10.2f} ms  median of 3 ({n // 2:,} "
          f"streams woken to write one)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--held", type=int, default=10_000)
    asyncio.run(measure(parser.parse_args().held))


if __name__ == "__main__":
    main()
