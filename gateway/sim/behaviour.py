"""What both wires share: the request log, key checks, and playing a fault out on a response."""

from __future__ import annotations

import asyncio
import math
import os
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any

import orjson
from aiohttp import web
from aiohttp.typedefs import Middleware

from gateway.sim.faults import Broken, Fault, fails_now
from gateway.sim.gpu import GpuConfig
from gateway.sim.gpu_engine import GpuEngine


@dataclass(frozen=True)
class SimConfig:
    name: str
    wire: str = "openai"                  # "openai", "azure" or "anthropic"
    api_key: str | None = field(default=None, repr=False)
    reply_tokens: int = 20
    embedding_dim: int = 8
    models: tuple[str, ...] = ()
    seed: int = 0
    first_token_delay_s: float = 0.0      # healthy baseline latencies; a fault's own replace them
    chunk_delay_s: float = 0.0
    reply_word: str | None = None         # the reply's first word (default: the name); equal words, equal replies
    prefill: bool = True                  # False: a chat ending in an assistant message is refused with a 400
    dumb: bool = False                    # answers fast and fluently, but wrong (see gateway.sim.answers)
    agent: bool = False                   # calls a shell or Read tool only when asked to (see gateway.sim.agent)
    client_credentials: bool = False      # wants each caller's own credential instead of a key of its own
    gpu: GpuConfig | None = None          # a GPU server's batch, queue and prefix cache (see gateway.sim.gpu)
    speed: float = 1.0                    # every healthy delay divided by this (0.5: a replica half as fast)
    # Answers broken this way (gateway.sim.faults.Broken) from `broken_after_s` after start, for
    # `broken_for_s` (None: from then on): a brownout on a schedule.
    broken: Broken | None = None
    broken_after_s: float = 0.0
    broken_for_s: float | None = None


@dataclass(frozen=True)
class ReceivedRequest:
    path: str
    headers: dict[str, str]
    body: Any
    at: float


class SimState:
    """The mutable side of one simulated upstream: its fault, its log, its counters."""

    def __init__(self, config: SimConfig) -> None:
        self.config = config
        self.fault = Fault()
        self.rng = random.Random(config.seed)
        self.requests: list[ReceivedRequest] = []
        # Ids (msg_, toolu_, call_, rs_, resp_ …) count on from a random start: two simulators in one
        # conversation must not mint the same ids, as two real providers never do (a client such as
        # Claude Code merges turns by message id).
        self.counter = int.from_bytes(os.urandom(4), "big") % 10**9
        self.failed = 0                   # requests failed under the current fault
        self.models_seen: list[str] = []
        self.on_stop: list[asyncio.Event] = []
        self.clients_gone: list[float] = []   # monotonic times a stream found its caller gone
        self.client_gone = asyncio.Event()
        self.prompt_cache: set[str] = set()   # prompt prefixes written to the (Anthropic) prompt cache
        self.stored_responses: set[str] = set()   # Responses ids a later previous_response_id may name
        self.started = time.monotonic()
        gpu = config.gpu
        if gpu is not None and config.speed != 1.0:
            gpu = replace(gpu, speed=gpu.speed * config.speed)
        self.gpu = GpuEngine(gpu) if gpu is not None else None

    def next_id(self) -> int:
        self.counter += 1
        return self.counter

    @property
    def first_word(self) -> str:
        return self.config.reply_word or self.config.name

    @property
    def dumb(self) -> bool:
        return self.config.dumb if self.fault.dumb is None else self.fault.dumb

    @property
    def broken(self) -> Broken | None:
        """How answers are broken now: the fault's way, else the schedule's while it runs."""
        if self.fault.broken is not None:
            return self.fault.broken
        cfg = self.config
        if cfg.broken is None:
            return None
        since = time.monotonic() - self.started - cfg.broken_after_s
        return cfg.broken if since >= 0 and (cfg.broken_for_s is None or since < cfg.broken_for_s) else None

    def first_delay(self) -> float:
        if (self.dumb or self.broken) and not self.fault.first_token_delay_s:
            return 0.0   # a dumb model is a fast one: nothing a latency breaker would notice
        return self.fault.first_token_delay_s or self.config.first_token_delay_s / self.config.speed

    def chunk_delay(self) -> float:
        return self.fault.chunk_delay_s or self.config.chunk_delay_s / self.config.speed


async def read_request(request: web.Request, state: SimState) -> tuple[Any, bytes | None]:
    """Logs the request; returns its parsed body, or None with the raw bytes when it is not JSON."""
    raw = await request.read()
    try:
        body = orjson.loads(raw) if raw else None
    except orjson.JSONDecodeError:
        body = None
    state.requests.append(ReceivedRequest(request.path, dict(request.headers), body, time.monotonic()))
    if isinstance(body, dict) and isinstance(body.get("model"), str) and body["model"] not in state.models_seen:
        state.models_seen.append(body["model"])
    return body, raw


async def wait_forever(state: SimState) -> None:
    """Hang until the client goes away (the handler is cancelled) or the server stops."""
    stop = asyncio.Event()
    state.on_stop.append(stop)
    try:
        await stop.wait()
    finally:
        state.on_stop.remove(stop)


def retry_after_header(fault: Fault) -> dict[str, str]:
    if fault.retry_after_s is None:
        return {}
    return {"Retry-After": str(max(0, math.ceil(fault.retry_after_s)))}


async def scripted_failure(state: SimState, error: Callable[[int, dict[str, str]], web.Response],
                           credential: str | None = None) -> web.Response | None:
    """Plays the part of a fault that comes before any answer: hang, delay, error status."""
    fault = state.fault
    if fault.hang:
        await wait_forever(state)
    if fails_now(fault, state.rng, state.failed, credential):
        assert fault.status is not None
        state.failed += 1
        return error(fault.status, {**retry_after_header(fault), **usage_limit_headers(fault, time.time())})
    return None


def usage_limit_headers(fault: Fault, wall_now: float) -> dict[str, str]:
    """A subscription's usage limit as Anthropic answers it: rejected, when it resets, and retry-after."""
    if fault.usage_limit_reset_s is None or fault.status != 429:
        return {}
    wait = max(0, math.ceil(fault.usage_limit_reset_s))
    return {"anthropic-ratelimit-unified-status": "rejected",
            "anthropic-ratelimit-unified-reset": str(math.ceil(wall_now) + wait), "Retry-After": str(wait)}


def ends_with_prefill(body: dict[str, Any]) -> bool:
    messages = body.get("messages")
    return isinstance(messages, list) and bool(messages) and isinstance(messages[-1], dict) \
        and messages[-1].get("role") == "assistant"


class StreamEnded(Exception):
    """The scripted clean end of a stream's body before its answer was finished (perhaps by an error event)."""

    def __init__(self, response: web.StreamResponse) -> None:
        super().__init__("stream ended early by a scripted fault")
        self.response = response


@web.middleware
async def ended_streams(request: web.Request, handler: Any) -> web.StreamResponse:
    """Lets a handler's StreamWriter end the stream from deep inside it, and notes a caller that hung up."""
    try:
        return await handler(request)  # type: ignore[no-any-return]
    except StreamEnded as ended:
        return ended.response
    except ConnectionError:
        state = request.app[SIM]
        state.clients_gone.append(time.monotonic())
        state.client_gone.set()
        raise


class StreamWriter:
    """Writes SSE events, one write each, honouring chunk delays, cuts, stalls and error events.

    `error_event` is the whole SSE event this wire uses to report a failure inside a 200 stream.
    """

    def __init__(self, request: web.Request, resp: web.StreamResponse, state: SimState, error_event: bytes) -> None:
        self.request = request
        self.resp = resp
        self.state = state
        self.error_event = error_event
        self.content_chunks = 0
        # Awaited between content chunks instead of the chunk delay: a GPU server's decode step.
        self.pace: Callable[[], Awaitable[None]] | None = None

    async def event(self, payload: bytes, content: bool = False, name: str | None = None) -> None:
        fault = self.state.fault
        if content:
            if fault.cut_after_chunks is not None and self.content_chunks >= fault.cut_after_chunks:
                transport = self.request.transport
                if transport is not None:
                    transport.abort()  # a broken connection, not a clean end
                raise asyncio.CancelledError
            if fault.end_early_after_chunks is not None and self.content_chunks >= fault.end_early_after_chunks:
                await self.resp.write_eof()
                raise StreamEnded(self.resp)
            if fault.stall_after_chunks is not None and self.content_chunks >= fault.stall_after_chunks:
                await wait_forever(self.state)
            if fault.error_event_after_chunks is not None and self.content_chunks >= fault.error_event_after_chunks:
                await self.resp.write(self.error_event)
                await self.resp.write_eof()
                raise StreamEnded(self.resp)
            if self.content_chunks and self.pace is not None and not fault.chunk_delay_s:
                await self.pace()
            elif self.content_chunks and self.state.chunk_delay():
                await asyncio.sleep(self.state.chunk_delay())
            self.content_chunks += 1
        head = b"event: " + name.encode() + b"\n" if name else b""
        await self.resp.write(head + b"data: " + payload + b"\n\n")


def sse_response() -> web.StreamResponse:
    return web.StreamResponse(status=200, headers={"Content-Type": "text/event-stream; charset=utf-8",
                                                   "Cache-Control": "no-cache"})


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(status=status, body=orjson.dumps(data), content_type="application/json", headers=headers)


SIM: web.AppKey[SimState] = web.AppKey("sim", SimState)


ErrorAnswer = Callable[..., web.Response]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def odd_input_is_400(error: ErrorAnswer) -> Middleware:
    """A real provider answers a body it cannot make sense of with a 400, never a crash: so does the sim."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except (TypeError, ValueError, AttributeError, KeyError, IndexError) as exc:
            return error(400, message=f"The request body could not be used ({type(exc).__name__}).")

    return middleware
