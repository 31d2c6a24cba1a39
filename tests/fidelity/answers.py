"""An OpenAI chat answer reduced to what two translations must agree on, from a whole body or a stream."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from gateway.core.deployment import Deployment
from gateway.providers.base import AttemptError, Call, UpstreamClient


@dataclass(frozen=True)
class ToolCall:
    name: str
    arguments: Any               # parsed JSON; the raw text when it does not parse


@dataclass(frozen=True)
class Answer:
    """What the client gets: content, tool calls, finish reason, usage; or the failed attempt."""

    content: str | None = None
    tool_calls: tuple[ToolCall, ...] = ()
    finish: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cached_tokens: int | None = None
    status: int | None = None            # a failed attempt's HTTP status
    retry_after_s: float | None = None
    failure: str | None = None           # a failed attempt's kind: status, broken, …
    failed_mid_stream: bool = False      # the attempt failed after its first chunk was handed over
    chunks: int = field(default=0, compare=False)


def _usage(usage: Any) -> dict[str, Any]:
    if not isinstance(usage, dict):
        return {}
    details = usage.get("prompt_tokens_details") or {}
    return {"prompt_tokens": usage.get("prompt_tokens"), "completion_tokens": usage.get("completion_tokens"),
            "cached_tokens": details.get("cached_tokens") or 0}


def _parsed(arguments: str) -> Any:
    try:
        return orjson.loads(arguments) if arguments else {}
    except orjson.JSONDecodeError:
        return arguments


def from_body(raw: bytes) -> Answer:
    body = orjson.loads(raw)
    assert body["object"] == "chat.completion", body
    choice = body["choices"][0]
    message = choice["message"]
    assert message["role"] == "assistant"
    calls = tuple(ToolCall(c["function"]["name"], _parsed(c["function"]["arguments"]))
                  for c in message.get("tool_calls") or ())
    assert all(c.get("id") and c.get("type") == "function" for c in message.get("tool_calls") or ())
    return Answer(content=message.get("content") or None, tool_calls=calls, finish=choice["finish_reason"],
                  **_usage(body.get("usage")))


def from_stream(chunks: list[bytes], failed: AttemptError | None = None) -> Answer:
    text: list[str] = []
    calls: dict[int, dict[str, Any]] = {}
    finish = None
    usage: dict[str, Any] = {}
    events = 0
    for line in b"".join(chunks).splitlines():
        if not line.startswith(b"data:"):
            continue
        payload = line[5:].strip()
        if payload == b"[DONE]" or not payload:
            continue
        event = orjson.loads(payload)
        events += 1
        assert event["object"] == "chat.completion.chunk", event
        usage = _usage(event.get("usage")) or usage
        for choice in event.get("choices") or ():
            delta = choice.get("delta") or {}
            if delta.get("content"):
                text.append(delta["content"])
            for tc in delta.get("tool_calls") or ():
                slot = calls.setdefault(tc["index"], {"id": None, "name": "", "arguments": ""})
                slot["id"] = slot["id"] or tc.get("id")
                fn = tc.get("function") or {}
                slot["name"] += fn.get("name") or ""
                slot["arguments"] += fn.get("arguments") or ""
            finish = choice.get("finish_reason") or finish
    assert sorted(calls) == list(range(len(calls))), f"tool call indexes must count from 0: {sorted(calls)}"
    assert all(c["id"] for c in calls.values()), "every streamed tool call needs its id"
    tool_calls = tuple(ToolCall(c["name"], _parsed(c["arguments"])) for _, c in sorted(calls.items()))
    if failed is not None:
        return Answer(content="".join(text) or None, tool_calls=tool_calls, failure=failed.failure.value,
                      status=failed.status, failed_mid_stream=True, chunks=events)
    return Answer(content="".join(text) or None, tool_calls=tool_calls, finish=finish, chunks=events, **usage)


def from_error(err: AttemptError) -> Answer:
    return Answer(status=err.status, retry_after_s=err.retry_after_s, failure=err.failure.value)


async def answer(client: UpstreamClient, deployment: Deployment, body: dict[str, Any]) -> Answer:
    """One provider-level attempt, reduced; a stream is read to its end."""
    stream = bool(body.get("stream"))
    call = Call(endpoint="chat", body=dict(body), stream=stream, request_id="req-fidelity")
    try:
        reply = await client.open(deployment, call, budget_s=30.0)
    except AttemptError as err:
        return from_error(err)
    if not stream:
        return from_body(reply.body)
    chunks = [reply.first]
    try:
        assert reply.rest is not None
        async for chunk in reply.rest:
            chunks.append(chunk)
    except AttemptError as err:
        return from_stream(chunks, failed=err)
    finally:
        await reply.release()
    return from_stream(chunks)
