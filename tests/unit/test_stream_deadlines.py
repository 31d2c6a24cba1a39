"""Open streams' idle and total bounds on one timer: a stream that reads nothing for its idle bound, or
reads past its total, gets a TimeoutError where it reads; one that reads on is only looked at again."""

from __future__ import annotations

import asyncio
from unittest import mock

import aiohttp
import pytest

from gateway.providers.stream_deadlines import BUCKET_S, StreamDeadlines


def reader() -> aiohttp.StreamReader:
    return aiohttp.StreamReader(mock.Mock(_reading_paused=False), 2**16, loop=asyncio.get_running_loop())


async def test_a_stream_that_reads_nothing_for_its_idle_bound_times_out_where_it_reads() -> None:
    deadlines, content = StreamDeadlines(), reader()
    deadlines.follow(content, idle_s=1.0, ends_at=100.0, now=0.0)
    deadlines.check(0.9)
    assert content.exception() is None
    deadlines.check(1.0 + BUCKET_S)
    with pytest.raises(TimeoutError):
        await content.readany()


async def test_a_stream_that_reads_on_is_moved_to_its_next_due_time_not_timed_out() -> None:
    deadlines, content = StreamDeadlines(), reader()
    followed = deadlines.follow(content, idle_s=1.0, ends_at=100.0, now=0.0)
    for second in range(1, 10):
        followed.last_read = second - 0.5       # the reader read half a second ago
        deadlines.check(float(second))
    assert content.exception() is None
    assert len(deadlines) == 1


async def test_a_stream_that_reads_on_past_its_total_bound_times_out() -> None:
    deadlines, content = StreamDeadlines(), reader()
    followed = deadlines.follow(content, idle_s=1.0, ends_at=3.0, now=0.0)
    for tenth in range(1, 40):
        followed.last_read = tenth / 10
        deadlines.check(tenth / 10)
    assert isinstance(content.exception(), TimeoutError)


async def test_a_stream_that_ended_is_never_touched_again() -> None:
    deadlines, content = StreamDeadlines(), reader()
    followed = deadlines.follow(content, idle_s=1.0, ends_at=100.0, now=0.0)
    followed.drop()
    deadlines.check(50.0)
    assert content.exception() is None
    assert len(deadlines) == 0 and followed.content is None


async def test_the_one_timer_wakes_a_stalled_reader_on_the_loops_clock() -> None:
    deadlines, content = StreamDeadlines(), reader()
    deadlines.follow(content, idle_s=0.05, ends_at=asyncio.get_running_loop().time() + 60)
    async with asyncio.timeout(5):   # a bound on the test, not the behaviour: the timer fires after ~0.1 s
        with pytest.raises(TimeoutError, match="within its bound"):
            await content.readany()
