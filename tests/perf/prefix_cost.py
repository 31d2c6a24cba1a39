"""What longest-prefix routing costs a request: the pool board's arrange and send, per request.

    python tests/perf/prefix_cost.py [--requests N]

Agent traffic from gateway/sim/workload.py (prompts of 18 KB on average) through one pool of three
replicas, as the dispatcher drives it: arrange (canonical prompt, chunk names, a match against every
replica's picture, the pick), then the send (the picture's update, the prefix counters) and the
completion. Prints microseconds per request, with the prompt-hashing part apart. Asserts nothing.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from gateway.core.metrics import Metrics  # noqa: E402
from gateway.routing.pools import PoolBoard  # noqa: E402
from gateway.routing.prefix import prompt_bytes, prompt_chunks  # noqa: E402
from gateway.sim.workload import AgentWorkload  # noqa: E402
from tests.pools import three_replicas  # noqa: E402

def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--requests", type=int, default=5000)
    n = p.parse_args().requests
    table = three_replicas("{slots: 4, cache_tokens: 72000, spill: {margin_s: 0.1}}")
    board = PoolBoard(Metrics(), time.monotonic)
    work = AgentWorkload(seed=1)
    bodies = [work.next() for _ in range(n)]
    size = sum(len(prompt_bytes(b)) for b in bodies) / n
    started = time.perf_counter()
    for body in bodies:
        prompt_chunks(body)
    hashing = (time.perf_counter() - started) / n
    started = time.perf_counter()
    for body in bodies:
        arranged = board.arrange(table, (0, 1, 2, 3), body, time.monotonic(), [0.3, 0.3, 0.3, 0.3])
        sends = board.sends(table, arranged.chunks)
        sends.mark(table.deployments[min(arranged.order[0], 2)])
        sends.close()
    total = (time.perf_counter() - started) / n
    print(f"{n} requests, mean prompt {size / 1024:.1f} KB: {total * 1e6:.0f} µs per request "
          f"(arrange, send, done), of which {hashing * 1e6:.0f} µs the prompt's canonical text and chunk names")


if __name__ == "__main__":
    main()
