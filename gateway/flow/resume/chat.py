"""Continuing a chat stream that broke after bytes reached the client, on another deployment.

Two ways, chosen per target: *resume* sends the partial answer as a trailing assistant message (a
prefill) and relays the continuation; *restart* (for targets that refuse a prefill with a 400, as
newer Claude models do) sends the original request again and relays only what comes after the text
the client already has — provided the new answer begins with exactly that text. Pure, but for the
stream wrapper at the end.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import orjson

from gateway.core.deployment import Deployment
from gateway.providers.base import AttemptError, Call, Failure


class Diverged(AttemptError):
    """A restarted answer that does not begin with the text the client already has: no honest
    continuation exists (and no fault of the deployment's)."""

    def __init__(self) -> None:
        super().__init__(Failure.BROKEN, "the regenerated answer does not begin with the text already sent")


def continuation(call: Call, so_far: str) -> Call:
    """The same chat with the partial answer as an assistant prefix, for the next deployment."""
    body = dict(call.body)
    body["messages"] = [*call.body["messages"], {"role": "assistant", "content": so_far}]
    return Call(call.endpoint, body, True, call.request_id)


class PrefillBook:
    """Which deployments take an assistant prefill: the policy's model facts, then what was learnt
    from their 400s. Kept by deployment identity for as long as the process runs."""

    def __init__(self) -> None:
        self.refused: set[str] = set()

    def accepts(self, d: Deployment) -> bool:
        return d.key not in self.refused and not (d.facts is not None and d.facts.prefill is False)

    def learn_refusal(self, d: Deployment) -> None:
        self.refused.add(d.key)


class PrefixSkipper:
    """Drops a restarted chat stream's content up to `prefix` (the text the client already has) and
    passes on what follows. Raises Diverged when the new answer goes another way."""

    def __init__(self, prefix: str) -> None:
        self.left = prefix

    def feed(self, chunk: bytes) -> bytes:
        """What of `chunk` (whole SSE events) the client should get."""
        if not self.left:
            return chunk
        out: list[bytes] = []
        for event in chunk.split(b"\n\n"):
            if event.strip():
                kept = self._event(event)
                if kept is not None:
                    out.append(kept + b"\n\n")
        return b"".join(out)

    def _event(self, event: bytes) -> bytes | None:
        if not self.left:
            return event
        payload = event.split(b"data:", 1)[-1].strip()
        if payload == b"[DONE]":
            raise Diverged()  # it ended before it had said what the client already has
        try:
            data: Any = orjson.loads(payload)
        except orjson.JSONDecodeError:
            return None
        choices = data.get("choices") if isinstance(data, dict) else None
        if not choices:
            return None  # nothing the client has not had yet (a usage chunk comes only at the end)
        choice = choices[0]
        delta = choice.get("delta") or {}
        if delta.get("tool_calls") or choice.get("finish_reason"):
            raise Diverged()
        text = delta.get("content") or ""
        if self.left.startswith(text):
            self.left = self.left[len(text):]
            return None
        if not text.startswith(self.left):
            raise Diverged()
        rest = text[len(self.left):]
        self.left = ""
        data["choices"] = [{**choice, "delta": {**delta, "content": rest}}]
        return b"data: " + orjson.dumps(data)


async def fed_through(first: bytes, rest: AsyncIterator[bytes] | None,
                      feed: Callable[[bytes], bytes]) -> AsyncIterator[bytes]:
    """A continuation's stream, from its first event on, each chunk as `feed` makes it for the client."""
    out = feed(first)
    if out:
        yield out
    if rest is not None:
        async for chunk in rest:
            out = feed(chunk)
            if out:
                yield out


def after_prefix(first: bytes, rest: AsyncIterator[bytes] | None, prefix: str) -> AsyncIterator[bytes]:
    """A restarted chat stream with the client's `prefix` taken out."""
    return fed_through(first, rest, PrefixSkipper(prefix).feed)
