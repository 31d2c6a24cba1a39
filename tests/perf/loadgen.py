"""Open-loop load on loopback: requests leave on schedule whatever the answers do.

A raw asyncio HTTP/1.1 client (pre-built request bytes, minimal response parsing) so the generator
is several times faster than the gateway it measures. Each result has the status, the latency, and
for streams the time to the first content chunk.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import orjson


@dataclass(slots=True)
class Result:
    status: int
    latency_s: float
    ttft_s: float | None


# The key every request carries; LiteLLM's proxy is started with it as its master key.
BENCH_KEY = "sk-bench-5f0c2a9e8d7b4c61a3e2f9d8c7b6a5e4"


def build_request(host: str, port: int, path: str, body: dict[str, object]) -> bytes:
    data = orjson.dumps(body)
    return (f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
            f"Authorization: Bearer {BENCH_KEY}\r\nContent-Length: {len(data)}\r\n\r\n").encode() + data


class _Conn(asyncio.Protocol):
    def __init__(self, pool: Pool) -> None:
        self.pool = pool
        self.transport: asyncio.Transport | None = None
        self.buffer = b""
        self.waiter: asyncio.Future[Result] | None = None
        self.started = 0.0
        self.first: float | None = None
        self.status = 0
        self.head_end = -1
        self.length: int | None = None
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def send(self, request: bytes, since: float | None = None) -> asyncio.Future[Result]:
        assert self.transport is not None
        self.waiter = asyncio.get_running_loop().create_future()
        self.buffer, self.first, self.head_end, self.length = b"", None, -1, None
        self.started = time.perf_counter() if since is None else since
        self.transport.write(request)
        return self.waiter

    def data_received(self, data: bytes) -> None:
        now = time.perf_counter()
        self.buffer += data
        if self.head_end < 0:
            self.head_end = self.buffer.find(b"\r\n\r\n")
            if self.head_end < 0:
                return
            head = self.buffer[:self.head_end].lower()
            self.status = int(head[9:12])
            at = head.find(b"content-length:")
            if at >= 0:
                self.length = int(head[at + 15:head.find(b"\r\n", at) if head.find(b"\r\n", at) > 0 else None])
        if self.first is None and b'"content":"h' in self.buffer:
            self.first = now
        body = len(self.buffer) - self.head_end - 4
        done = body >= self.length if self.length is not None else self.buffer.endswith(b"\r\n0\r\n\r\n")
        if done and self.waiter is not None and not self.waiter.done():
            ttft = None if self.first is None else self.first - self.started
            self.waiter.set_result(Result(self.status, now - self.started, ttft))
            self.pool.idle.append(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(Result(0, time.perf_counter() - self.started, None))


class Pool:
    """Keep-alive connections: an idle one when there is one, a new one when not."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.idle: list[_Conn] = []
        self.opened = 0

    async def request(self, data: bytes, since: float | None = None) -> Result:
        """One request; its latency counts from `since` (an open loop's due time) when given."""
        conn = None
        while self.idle:
            candidate = self.idle.pop()
            if not candidate.closed:
                conn = candidate
                break
        if conn is None:
            loop = asyncio.get_running_loop()
            started = time.perf_counter() if since is None else since
            try:
                _, conn = await loop.create_connection(lambda: _Conn(self), self.host, self.port)
            except OSError:
                return Result(0, time.perf_counter() - started, None)
            self.opened += 1
        return await conn.send(data, since)

    def close(self) -> None:
        for conn in self.idle:
            if conn.transport is not None:
                conn.transport.close()
        self.idle.clear()


async def open_loop(pool: Pool, request: bytes, rate_per_s: float, seconds: float) -> list[Result]:
    """`rate_per_s × seconds` requests, each leaving at its scheduled time.

    Latency counts from the moment each request is issued, before a connection is found or opened:
    waiting for a connection is waiting the client would see. (Counting from the schedule itself
    would add the generator's own timer overshoot, ~1-2 ms here, to every number.)
    """
    n = max(1, int(rate_per_s * seconds))
    tasks: list[asyncio.Task[Result]] = []
    start = time.perf_counter()
    for i in range(n):
        due = start + i / rate_per_s
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.ensure_future(pool.request(request, time.perf_counter())))
    return list(await asyncio.gather(*tasks))


async def closed_loop(pool: Pool, request: bytes, connections: int, seconds: float) -> list[Result]:
    """`connections` clients, each sending its next request as soon as the last was answered."""
    results: list[Result] = []
    end = time.perf_counter() + seconds

    async def client() -> None:
        while time.perf_counter() < end:
            results.append(await pool.request(request))

    await asyncio.gather(*(client() for _ in range(connections)))
    return results


def percentile(values: list[float], p: float) -> float:
    """The nearest-rank percentile (p in 0..100); NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), int(-(-p * len(ordered) // 100))))
    return ordered[rank - 1]
