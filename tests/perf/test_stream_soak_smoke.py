"""The soak's own pieces work: its slots keep streaming until their end, the dropping ones hang up
after two chunks, and the counts say which was which. No timing is asserted here."""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from long_streams_wire import serve_upstream, stream_request  # noqa: E402
from stream_soak import Counts, Tally, dropping, keep_streaming  # noqa: E402
from tests.conftest import free_port  # noqa: E402


def test_a_tenth_of_the_slots_spread_over_them_drop_their_streams() -> None:
    drops = [dropping(i, 0.1) for i in range(100)]
    assert sum(drops) == 10 and sum(drops[:50]) == 5


async def test_slots_stream_one_stream_after_another_and_dropped_ones_are_counted_apart() -> None:
    port = free_port()
    server = asyncio.create_task(serve_upstream(port, chunks=4, interval=0.05))
    try:
        await asyncio.sleep(0.2)
        counts, tally, until = Counts(), Tally(), time.monotonic() + 1.0
        await asyncio.gather(*(keep_streaming(port, stream_request(port), 0.0, until, 0.05, drop, tally, counts)
                               for drop in (False, False, True)))
    finally:
        server.cancel()
    assert counts.failed == 0, counts.why
    assert counts.completed >= 4          # two slots, a stream of ~0.25 s each, for a second
    assert counts.dropped > counts.completed / 2   # the dropping slot's streams end after two chunks
