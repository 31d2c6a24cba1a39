"""The benchmark's own pieces work: percentiles, the table, /proc readings, the fake upstream, the load
generator. No timing is asserted here; the numbers are the benchmark's to print."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fake_upstream import serve  # noqa: E402
from loadgen import Pool, build_request, closed_loop, open_loop, percentile  # noqa: E402
from procs import cpu_seconds, open_fds, status_kb  # noqa: E402

from bench import render  # noqa: E402
from tests.conftest import free_port  # noqa: E402


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert (percentile(values, 50), percentile(values, 99), percentile(values, 100)) == (50.0, 99.0, 100.0)
    assert percentile([], 50) != percentile([], 50)  # NaN for nothing measured


def test_render_pads_a_markdown_table() -> None:
    table = render([["measure", "a"], ["x", "1.00"], ["longer name", "2"]]).splitlines()
    assert table[0] == "| measure     | a    |" and table[1] == "| ----------- | ---- |"
    assert len({len(line) for line in table}) == 1


def test_proc_readings_of_this_process() -> None:
    pid = os.getpid()
    assert cpu_seconds(pid) > 0 and status_kb(pid, "VmRSS") > 1000 and open_fds(pid) >= 3


async def test_the_fake_upstream_answers_whole_and_streamed_through_the_load_generator() -> None:
    port = free_port()
    listening = asyncio.Event()
    server = asyncio.create_task(serve(port, listening))
    await listening.wait()
    try:
        pool = Pool("127.0.0.1", port)
        chat = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
        [whole] = await open_loop(pool, build_request("127.0.0.1", port, "/v1/chat/completions", chat), 10, 0.1)
        assert whole.status == 200
        streams = await closed_loop(pool, build_request("127.0.0.1", port, "/v1/chat/completions",
                                                        {**chat, "stream": True}), 2, 0.2)
        assert streams and all(r.status == 200 and r.ttft_s is not None for r in streams)
        pool.close()
    finally:
        server.cancel()


def test_the_fake_upstream_stream_is_twenty_chunks_and_done() -> None:
    from fake_upstream import STREAM, STREAM_USAGE

    events = [e for e in STREAM.split(b"\r\n\r\n", 1)[1].split(b"\n\n") if e.startswith(b"data: {")]
    contents = [orjson.loads(e[6:])["choices"][0]["delta"].get("content") for e in events]
    assert contents.count("hello ") == 20 and b"data: [DONE]" in STREAM
    assert b'"usage"' in STREAM_USAGE and b'"usage"' not in STREAM
