"""Chaos scenarios: route [A, B], first_token_s 1, idle_s 2, base_ejection_s 3, a fresh gateway each."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

import openai
import pytest

from gateway.serving.embedded import EmbeddedGateway
from tests.conftest import GatewayFactory

T = TypeVar("T")


def chaos_policy(mid_stream: str = "error", b_first_token_s: float = 0.0, a_first_token_s: float = 0.0,
                 breaker: str = "", route: str = "", a_sim: str = "", b_sim: str = "", top: str = "",
                 b_provider: str = "", a_idle_s: float = 2) -> str:
    """The chaos route; the string arguments add YAML flow-mapping entries (`key: value, …`) or single lines
    (`top`, `route`, `b_provider`); `mid_stream=""` leaves the route's default."""
    return f"""
    version: 1
    breaker: {{base_ejection_s: 3{", " + breaker if breaker else ""}}}
    providers:
      A:
        kind: sim
        timeouts: {{connect_s: 1, first_token_s: 1, idle_s: {a_idle_s}, total_s: 10}}
        sim: {{reply_tokens: 12, first_token_delay_s: {a_first_token_s}{", " + a_sim if a_sim else ""}}}
      B:
        kind: sim
        timeouts: {{connect_s: 1, first_token_s: 1, idle_s: 2, total_s: 10}}
        sim: {{reply_tokens: 12, first_token_delay_s: {b_first_token_s}{", " + b_sim if b_sim else ""}}}
        {b_provider}
    {top}
    routes:
      chat:
        {"mid_stream: " + mid_stream if mid_stream else ""}
        {route}
        targets:
          - {{provider: A, model: a-model}}
          - {{provider: B, model: b-model}}
    """


@pytest.fixture
def chaos(start_gateway: GatewayFactory) -> Callable[..., EmbeddedGateway]:
    def start(**kw: object) -> EmbeddedGateway:
        return start_gateway(chaos_policy(**kw))  # type: ignore[arg-type]
    return start


def client(gw: EmbeddedGateway) -> openai.AsyncOpenAI:
    # No retries in the SDK: what the client sees is the gateway's doing alone.
    return openai.AsyncOpenAI(base_url=gw.base_url, api_key="k", max_retries=0, timeout=20)


@dataclass
class Result:
    ok: bool
    provider: str | None = None
    error: BaseException | None = None
    seconds: float = 0.0
    first_content_s: float | None = None
    text: str = ""


async def open_loop(n: int, rate_per_s: float, request: Callable[[int], Awaitable[T]]) -> list[T]:
    """Start `n` requests at a fixed rate, whatever the answers do (open loop), and gather them all."""
    tasks = []
    for i in range(n):
        tasks.append(asyncio.create_task(request(i)))
        await asyncio.sleep(1 / rate_per_s)
    return list(await asyncio.gather(*tasks))


HELLO = [{"role": "user", "content": "hello"}]


async def chat(c: openai.AsyncOpenAI) -> Result:
    started = time.perf_counter()
    try:
        raw = await c.chat.completions.with_raw_response.create(model="chat", messages=HELLO)  # type: ignore[arg-type]
        answer = raw.parse()
        return Result(True, raw.headers.get("x-recloser-provider"), seconds=time.perf_counter() - started,
                      text=answer.choices[0].message.content or "")
    except openai.APIError as exc:
        return Result(False, error=exc, seconds=time.perf_counter() - started)


async def stream(c: openai.AsyncOpenAI) -> Result:
    started = time.perf_counter()
    first: float | None = None
    pieces: list[str] = []
    try:
        raw = await c.chat.completions.with_raw_response.create(model="chat", messages=HELLO, stream=True)  # type: ignore[arg-type]
        async for chunk in raw.parse():
            if chunk.choices and chunk.choices[0].delta.content:
                first = first if first is not None else time.perf_counter() - started
                pieces.append(chunk.choices[0].delta.content)
        return Result(True, raw.headers.get("x-recloser-provider"), seconds=time.perf_counter() - started,
                      first_content_s=first, text="".join(pieces))
    except openai.APIError as exc:
        return Result(False, error=exc, seconds=time.perf_counter() - started, text="".join(pieces))
