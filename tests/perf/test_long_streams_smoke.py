"""The long-streams benchmark's own pieces work: its upstream's chunks, its client's tally and a row.
No timing is asserted here; the numbers are the benchmark's to print."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from long_streams import HEADER, Run, open_streams, serve_upstream, sse_chunk  # noqa: E402
from tests.conftest import free_port  # noqa: E402


def test_each_upstream_chunk_is_a_200_byte_chat_event() -> None:
    assert {len(sse_chunk(i)) for i in (0, 7, 999, 1234)} == {200}
    assert sse_chunk(3).startswith(b"data: {") and sse_chunk(3).endswith(b"\n\n")


async def test_every_stream_completes_with_each_chunk_tallied_and_a_row_prints() -> None:
    port = free_port()
    server = asyncio.create_task(serve_upstream(port, chunks=3, interval=0.05))
    try:
        await asyncio.sleep(0.2)
        records, tally, began = await open_streams(port, 20, 0.1, 0.05, 3)
    finally:
        server.cancel()
    assert all(r.status == 200 and r.done and r.first_at is not None for r in records)
    assert tally.chunks >= 20 * 4     # three chunks and the last event of each stream, at least
    cells = Run("direct", 20, records, tally, (began, began + 10)).cells()
    assert len(cells) == len(HEADER) and cells[2] == "100.0 %"
