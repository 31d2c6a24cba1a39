"""`recloser demo`: the official openai SDK through the gateway, before and after the primary fails.

Everything runs on loopback against simulated providers; it needs no keys and no network.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from gateway.serving.embedded import EmbeddedGateway
from gateway.policy.load import LoadedPolicy

if TYPE_CHECKING:
    from openai.types.chat import ChatCompletionMessageParam

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


@dataclass
class Row:
    phase: str
    call: str
    provider: str
    latency_ms: float
    status: str


def _calls(client: object, chat_route: str, embed_route: str) -> list[tuple[str, Callable[[], tuple[str, str]]]]:
    """Each call returns (the provider that answered, a short status)."""
    from openai import OpenAI

    assert isinstance(client, OpenAI)
    messages: list[ChatCompletionMessageParam] = [{"role": "user", "content": "Say hello from the gateway."}]

    def chat() -> tuple[str, str]:
        raw = client.chat.completions.with_raw_response.create(model=chat_route, messages=messages)
        answer = raw.parse()
        return raw.headers["x-recloser-provider"], f"ok: {len(answer.choices[0].message.content or '')} chars"

    def stream() -> tuple[str, str]:
        raw = client.chat.completions.with_raw_response.create(model=chat_route, messages=messages, stream=True)
        pieces = [c.choices[0].delta.content or "" for c in raw.parse() if c.choices]
        return raw.headers["x-recloser-provider"], f"ok: {sum(1 for p in pieces if p)} chunks"

    def tool_call() -> tuple[str, str]:
        raw = client.chat.completions.with_raw_response.create(
            model=chat_route, tools=[WEATHER_TOOL],  # type: ignore[list-item]
            messages=[{"role": "user", "content": "What's the weather in Paris?"}])
        calls = [c for c in raw.parse().choices[0].message.tool_calls or [] if c.type == "function"]
        return raw.headers["x-recloser-provider"], f"ok: {calls[0].function.name}()" if calls else "no tool call"

    def embedding() -> tuple[str, str]:
        raw = client.embeddings.with_raw_response.create(model=embed_route, input=["recloser"])
        return raw.headers["x-recloser-provider"], f"ok: {len(raw.parse().data[0].embedding)} dims"

    return [("chat", chat), ("chat stream", stream), ("tool call", tool_call), ("embedding", embedding)]


def _run_phase(phase: str, calls: list[tuple[str, Callable[[], tuple[str, str]]]]) -> list[Row]:
    rows = []
    for name, call in calls:
        started = time.perf_counter()
        try:
            provider, status = call()
        except Exception as exc:  # the table shows the failure; the exit code says it
            provider, status = "-", f"FAILED: {type(exc).__name__}"
        rows.append(Row(phase, name, provider, (time.perf_counter() - started) * 1000, status))
    return rows


def format_table(rows: list[Row]) -> str:
    header = f"{'phase':<18} {'call':<12} {'answered by':<12} {'latency':>9}  status"
    lines = [header, "-" * len(header)]
    for r in rows:
        lines.append(f"{r.phase:<18} {r.call:<12} {r.provider:<12} {r.latency_ms:>7.1f}ms  {r.status}")
    return "\n".join(lines)


def run_demo(policy: LoadedPolicy, chat_route: str = "chat", embed_route: str = "embed") -> int:
    from openai import OpenAI

    from gateway.sim import Fault

    with EmbeddedGateway(policy) as gw:
        primary = gw.context.routing.routes[chat_route].deployments[0].provider
        print(f"recloser demo: gateway on {gw.base_url}, policy {policy.source}")
        client = OpenAI(base_url=gw.base_url, api_key="demo-key", max_retries=0)
        calls = _calls(client, chat_route, embed_route)
        rows = _run_phase("all healthy", calls)
        gw.set_fault(primary, Fault(refuse=True))
        rows += _run_phase(f"{primary} down", calls)
        client.close()
    print(format_table(rows))
    failed = [r for r in rows if not r.status.startswith("ok")]
    print(f"\n{len(rows) - len(failed)} of {len(rows)} calls answered", "(every one)" if not failed else "")
    return 1 if failed else 0
