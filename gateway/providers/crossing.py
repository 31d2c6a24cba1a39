"""Every inbound API on every wire: a Responses or Messages request passes through to a target that
speaks it (only `model` rewritten), and crosses through chat to one that does not.

Sits between the attempt loop and the upstream clients, so retries, failover, hedging and breakers
never know which wire a deployment speaks: an attempt's reply is always in the client's own API.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import replace
from collections.abc import AsyncIterator, Callable
from typing import Any

import orjson

from gateway.providers.base import AttemptError, Call, Failure, Reply, UpstreamClient, unfit
from gateway.core.deployment import Deployment
from gateway.wires import features, messages_chat, responses_chat, responses_events, responses_tools
from gateway.wires.events import json_events, split_events
from gateway.wires.refused import Refused


def expanded(call: Call, d: Deployment) -> Call:
    """A Responses call for `d`: `previous_response_id` kept when `d`'s provider wrote that response,
    else replaced by the chain's items, without the reasoning and the item ids only its origin knows."""
    prior = call.prior
    if prior is None or prior.origin == d.provider:
        return call
    body = dict(call.body)
    body.pop("previous_response_id", None)
    given = body.get("input")
    current = [{"role": "user", "content": given}] if isinstance(given, str) else list(given or ())
    # Item ids are the origin's too: another provider would look them up and not find them.
    body["input"] = [{k: v for k, v in item.items() if k != "id"} for item in prior.items
                     if item.get("type") != "reasoning"] + current
    return replace(call, body=body, prior=None)


def speaks(d: Deployment, endpoint: str) -> bool:
    """Whether `d`'s wire is the client's API, so the body can pass through."""
    if endpoint == "responses":
        return d.responses
    if endpoint == "messages":
        return d.kind == "anthropic"
    return True   # chat, completions, embeddings: every client speaks them


class Crossing:
    def __init__(self, client_for: Callable[[Deployment], UpstreamClient], messages: UpstreamClient) -> None:
        self.client_for = client_for
        self.messages = messages   # Anthropic's own API, passed through

    async def open(self, deployment: Deployment, call: Call, budget_s: float) -> Reply:
        if speaks(deployment, call.endpoint):
            if call.endpoint == "messages":
                return await self.messages.open(deployment, call, budget_s)
            if call.endpoint == "responses":
                return await self._responses_as_is(deployment, expanded(call, deployment), budget_s)
            return await self.client_for(deployment).open(deployment, call, budget_s)
        client = self.client_for(deployment)
        if call.endpoint == "responses":
            return await self._responses(client, deployment, call, budget_s)
        return await self._messages(client, deployment, call, budget_s)

    async def _responses_as_is(self, d: Deployment, call: Call, budget_s: float) -> Reply:
        """A Responses body passed through. Encrypted reasoning is sealed for the organisation that
        wrote it: after a failover (Codex sends `store: false` and replays its reasoning items) the
        next deployment refuses it, so it gets the conversation once more without them."""
        client = self.client_for(d)
        try:
            return await client.open(d, call, budget_s)
        except AttemptError as err:
            if err.status != 400 or b"encrypted_content" not in (err.body or b"") or not _has_reasoning(call.body):
                raise
        reply = await client.open(d, replace(call, body=_without_reasoning(call.body)), budget_s)
        reply.dropped = (features.REASONING,)
        return reply

    async def _responses(self, client: UpstreamClient, d: Deployment, call: Call, budget_s: float) -> Reply:
        history = call.prior.items if call.prior is not None else ()
        dropped: list[str] = []
        chat = _chat_call(call, lambda: responses_chat.request_out(call.body, history, dropped, call.references))
        reply = await client.open(d, chat, budget_s)
        names = responses_tools.tool_names(call.body)   # flattened namespace tools → the client's own names
        response_id, created = f"resp_{uuid.uuid4().hex}", int(time.time())
        body = call.body
        if call.prior is not None:  # the Response says what it continues, as the client asked
            body = {**body, "previous_response_id": call.prior.response_id}
        gone = _merged(dropped, reply.dropped)
        if reply.rest is None:
            return Reply(200, body=_whole(lambda: responses_chat.answer_in(reply.body, body, response_id, created, names)),
                         dropped=gone)
        state = responses_events.StreamState(body, response_id, created, names=names)
        return _translated(reply, lambda c: responses_events.events_in(state, c), lambda: responses_events.finish(state),
                           gone)

    async def _messages(self, client: UpstreamClient, d: Deployment, call: Call, budget_s: float) -> Reply:
        dropped: list[str] = []
        chat = _chat_call(call, lambda: messages_chat.request_out(call.body, dropped))
        try:
            reply = await client.open(d, chat, budget_s)
        except AttemptError as err:
            if err.body is not None and err.status is not None:
                err.body = messages_chat.error_in(err.status, err.body)
            raise
        message_id = f"msg_{uuid.uuid4().hex[:24]}"
        gone = _merged(dropped, reply.dropped)
        if reply.rest is None:
            return Reply(200, body=_whole(lambda: messages_chat.answer_in(reply.body, message_id)), dropped=gone)
        state = messages_chat.StreamState(message_id)
        return _translated(reply, lambda c: messages_chat.events_in(state, c), lambda: messages_chat.finish(state),
                           gone)


def _has_reasoning(body: dict[str, Any]) -> bool:
    given = body.get("input")
    return isinstance(given, list) and any(isinstance(i, dict) and i.get("type") == "reasoning" for i in given)


def _without_reasoning(body: dict[str, Any]) -> dict[str, Any]:
    return {**body, "input": [i for i in body["input"] if not (isinstance(i, dict) and i.get("type") == "reasoning")]}


def _whole(translate: Callable[[], dict[str, Any]]) -> bytes:
    """A whole answer in the client's API; a chat answer that is not one is a broken attempt."""
    try:
        return orjson.dumps(translate())
    except (orjson.JSONDecodeError, AttributeError, TypeError, ValueError, IndexError):
        raise AttemptError(Failure.BROKEN, "the answer was not a chat completion") from None


def _chat_call(call: Call, translate: Callable[[], dict[str, Any]]) -> Call:
    """The chat call for a request; a request this crossing cannot carry makes the target unfit
    (the next target may speak the client's API as it is)."""
    try:
        body = translate()
    except Refused as refused:
        raise unfit(refused.message, refused.param) from None
    return Call("chat", body, call.stream, call.request_id, traceparent=call.traceparent)


def _merged(own: list[str], further: tuple[str, ...]) -> tuple[str, ...]:
    """What this crossing dropped, then what the target's own wire dropped on the way."""
    return tuple(own) + tuple(f for f in further if f not in own)


def _ends(events: list[bytes]) -> bool:
    """Whether the chat stream's `data: [DONE]` is among these events."""
    return any(e.strip().endswith(b"[DONE]") for e in events)


def _translated(reply: Reply, events_in: Callable[[Any], list[bytes]], finish: Callable[[], list[bytes]],
                dropped: tuple[str, ...]) -> Reply:
    """A chat stream reply as a stream in the client's API; its first chunk is the first translated one."""
    events, pending = split_events(reply.first)
    done = _ends(events)
    first = b"".join(out for chunk in json_events(events) for out in events_in(chunk))
    if done:
        first += b"".join(finish())
    return Reply(200, first=first, rest=_rest(reply, pending, done, events_in, finish), close=reply.release,
                 dropped=dropped)


async def _rest(reply: Reply, pending: bytes, done: bool, events_in: Callable[[Any], list[bytes]],
                finish: Callable[[], list[bytes]]) -> AsyncIterator[bytes]:
    assert reply.rest is not None
    async for chunk in reply.rest:
        if done:
            continue
        events, pending = split_events(pending + chunk)
        out = b"".join(o for c in json_events(events) for o in events_in(c))
        if _ends(events):
            done = True
            out += b"".join(finish())
        if out:
            yield out
    if not done:
        raise AttemptError(Failure.BROKEN, "the stream ended without [DONE]")
