"""The long-streams benchmark's two ends: a slow upstream (a raw asyncio protocol, a timer callback per
chunk, no task per stream) and a client that opens N streams and tallies each chunk's arrival. Both
are raw protocols so that their CPU, on the core they share, stays small beside the gateway's."""

from __future__ import annotations

import asyncio
import contextlib
import re
import resource
import time
from dataclasses import dataclass, field

import orjson

CHUNK_BYTES = 200


def ready_for_many_connections() -> None:
    """This process may hold as many sockets as it is allowed (soft limit raised to the hard one), on
    uvloop where it installs: thousands of connections at a small cost of its own."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    with contextlib.suppress(ImportError):
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


# --- the slow upstream -----------------------------------------------------------------------------

def sse_chunk(index: int) -> bytes:
    """One 200-byte chat chunk (its SSE event), padded in its id."""
    event = b'data: {"id":"chatcmpl-%s","object":"chat.completion.chunk","created":0,"model":"m",' \
            b'"choices":[{"index":0,"delta":{"content":"tok%03d "},"finish_reason":null}]}\n\n'
    pad = CHUNK_BYTES - len(event % (b"", index % 1000))
    return event % (b"x" * pad, index % 1000)


def _chunked(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


TAIL = (b'data: {"id":"chatcmpl-x","object":"chat.completion.chunk","created":0,"model":"m",'
        b'"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\n')
USAGE = (b'data: {"id":"chatcmpl-x","object":"chat.completion.chunk","created":0,"model":"m","choices":[],'
         b'"usage":{"prompt_tokens":10,"completion_tokens":20,"total_tokens":30}}\n\n')
HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"


class SlowStream(asyncio.Protocol):
    """One upstream connection: each request is answered with a chunk every interval (timer callbacks,
    no task per stream)."""

    def __init__(self, chunks: int, interval: float) -> None:
        self.chunks, self.interval = chunks, interval
        self.buffer = b""
        self.transport: asyncio.Transport | None = None
        self.loop = asyncio.get_running_loop()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's transports are not asyncio's classes

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return
        length = re.search(rb"(?i)content-length:\s*(\d+)", self.buffer[:end])
        size = int(length.group(1)) if length else 0
        if len(self.buffer) < end + 4 + size:
            return
        body, self.buffer = self.buffer[end + 4:end + 4 + size], self.buffer[end + 4 + size:]
        assert self.transport is not None
        self.transport.write(HEAD + _chunked(sse_chunk(0)))
        self.loop.call_later(self.interval, self._next, 1, b"include_usage" in body)

    def _next(self, index: int, usage: bool) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        if index < self.chunks:
            self.transport.write(_chunked(sse_chunk(index)))
            self.loop.call_later(self.interval, self._next, index + 1, usage)
            return
        self.transport.write(_chunked(TAIL + (USAGE if usage else b"") + b"data: [DONE]\n\n") + b"0\r\n\r\n")

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None


async def serve_upstream(port: int, chunks: int, interval: float) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: SlowStream(chunks, interval), "127.0.0.1", port, backlog=8192)
    async with server:
        await server.serve_forever()


# --- the client ---------------------------------------------------------------------------------

@dataclass
class Streamed:
    scheduled: float
    status: int = 0
    first_at: float | None = None
    done: bool = False                 # `[DONE]` came
    ended_at: float | None = None      # the answer's last byte (a chunked body's end) came
    error: str = ""


@dataclass
class Tally:
    """Chunk arrivals over all streams: (arrival, delay beyond the interval)."""
    delays: list[tuple[float, float]] = field(default_factory=list)
    chunks: int = 0


class StreamClient(asyncio.Protocol):
    def __init__(self, record: Streamed, request: bytes, tally: Tally, interval: float,
                 finished: asyncio.Future[None]) -> None:
        self.record, self.request, self.tally, self.interval = record, request, tally, interval
        self.finished = finished
        self.head = b""
        self.last_at: float | None = None
        self.carry = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's transports are not asyncio's classes
        self.transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        now = time.perf_counter()
        if self.record.status == 0:
            self.head += data
            end = self.head.find(b"\r\n\r\n")
            if end < 0:
                return
            self.record.status = int(self.head[9:12])
            data, self.head = self.head[end + 4:], b""
            if self.record.status != 200:
                self._finish()
                return
        seen = self.carry + data
        events = seen.count(b"data: {")
        if events:
            self.tally.chunks += events
            if self.record.first_at is None:
                self.record.first_at = now
            elif self.last_at is not None:
                self.tally.delays.append((now, now - self.last_at - self.interval))
            self.last_at = now
        if b"[DONE]" in seen:
            self.record.done = True
        if self.record.done or seen.endswith(b"\r\n0\r\n\r\n"):   # a held stream ends with an error event
            self.record.ended_at = now
            self._finish()
        self.carry = seen[-8:]

    def _finish(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if exc is not None and not self.record.error:
            self.record.error = type(exc).__name__
        if not self.finished.done():
            self.finished.set_result(None)


def stream_request(port: int) -> bytes:
    body = orjson.dumps({"model": "chat", "stream": True, "messages": [{"role": "user", "content": "go on"}]})
    return (b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nContent-Type: application/json\r\n"
            b"Authorization: Bearer bench\r\nContent-Length: %d\r\n\r\n%s" % (port, len(body), body))


async def one_stream(port: int, request: bytes, record: Streamed, tally: Tally, interval: float) -> None:
    loop = asyncio.get_running_loop()
    finished: asyncio.Future[None] = loop.create_future()
    try:
        await loop.create_connection(lambda: StreamClient(record, request, tally, interval, finished),
                                     "127.0.0.1", port)
    except OSError as exc:
        record.error = exc.strerror or type(exc).__name__
        return
    await finished


async def open_streams(port: int, n: int, ramp_s: float, interval: float, chunks: int,
                       on_all_open: asyncio.Future[list[Streamed]] | None = None
                       ) -> tuple[list[Streamed], Tally, float]:
    """Opens `n` streams evenly over `ramp_s`; returns their records, the chunk tally and when it began."""
    request, tally = stream_request(port), Tally()
    began = time.perf_counter()
    records = [Streamed(began + ramp_s * i / n) for i in range(n)]
    tasks = []
    for record in records:
        delay = record.scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one_stream(port, request, record, tally, interval)))
    if on_all_open is not None and not on_all_open.done():
        on_all_open.set_result(records)
    async with asyncio.timeout(ramp_s + chunks * interval + 60):
        await asyncio.gather(*tasks, return_exceptions=True)
    return records, tally, began
