"""A body's reader with small queues in place of aiohttp's deques reads as aiohttp's own does: the
same bytes, the same chunk boundaries, whatever was queued before the swap."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable

from aiohttp.base_protocol import BaseProtocol
from aiohttp.streams import EMPTY_PAYLOAD, StreamReader

from gateway.core.small_queue import SmallQueue, lighten

Script = Callable[[StreamReader], Awaitable[list[object]]]


def reader() -> StreamReader:
    loop = asyncio.get_running_loop()
    return StreamReader(BaseProtocol(loop), 2 ** 16, loop=loop)


def chunked(r: StreamReader, *chunks: bytes) -> None:
    for chunk in chunks:
        r.begin_http_chunk_receiving()
        r.feed_data(chunk)
        r.end_http_chunk_receiving()


async def side_by_side(script: Script, before: Callable[[StreamReader], None] = lambda r: None) -> list[object]:
    """What `script` reads from aiohttp's reader and from a lightened one (after `before` fed both)."""
    plain, light = reader(), reader()
    before(plain)
    before(light)
    lighten(light)
    assert type(light._buffer) is SmallQueue and type(plain._buffer) is deque
    got = await script(plain)
    assert await script(light) == got
    return got


async def test_bytes_queued_before_the_swap_and_after_read_alike() -> None:
    async def script(r: StreamReader) -> list[object]:
        r.feed_data(b"second\nthird ")
        out: list[object] = [await r.readline()]
        r.feed_data(b"fourth")
        out.append(await r.readany())
        r.feed_data(b"fifth sixth")
        out.append(await r.readexactly(5))
        r.feed_eof()
        out += [await r.read(), r.at_eof()]
        return out

    got = await side_by_side(script, lambda r: r.feed_data(b"first "))
    assert got == [b"first second\n", b"third fourth", b"fifth", b" sixth", True]


async def test_a_chunked_bodys_boundaries_read_alike() -> None:
    async def script(r: StreamReader) -> list[object]:
        chunked(r, b"ab", b"cde", b"f")
        r.feed_eof()
        return [await r.readchunk() for _ in range(4)]

    got = await side_by_side(script)
    assert got[:3] == [(b"ab", True), (b"cde", True), (b"f", True)]


async def test_chunk_boundaries_made_before_the_swap_move_over() -> None:
    async def script(r: StreamReader) -> list[object]:
        chunked(r, b"two")
        r.feed_eof()
        return [await r.readchunk() for _ in range(2)]

    got = await side_by_side(script, lambda r: chunked(r, b"one"))
    assert got == [(b"one", True), (b"two", True)]


async def test_pieces_read_as_they_come_read_alike() -> None:
    async def script(r: StreamReader) -> list[object]:
        out: list[object] = []
        for i in range(50):
            r.feed_data(b"%03d" % i)
            if i % 3 == 0:
                out.append(await r.readany())
        r.feed_eof()
        out.append(await r.read())
        return out

    got = await side_by_side(script)
    assert b"".join(got) == b"".join(b"%03d" % i for i in range(50))  # type: ignore[arg-type]


def test_the_shared_empty_body_is_left_alone() -> None:
    kind = type(getattr(EMPTY_PAYLOAD, "_buffer", None))
    lighten(EMPTY_PAYLOAD)
    assert type(getattr(EMPTY_PAYLOAD, "_buffer", None)) is kind


def test_a_small_queue_pops_and_pushes_at_its_head() -> None:
    q = SmallQueue([1, 2])
    q.appendleft(0)
    q.append(3)
    assert [q.popleft() for _ in range(4)] == [0, 1, 2, 3] and not q
