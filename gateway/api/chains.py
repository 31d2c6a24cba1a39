"""`previous_response_id` at the edge: the chain a Responses request continues, looked up before it is
routed, and the Response it got, kept after it was answered."""

from __future__ import annotations

from typing import Any

import orjson

from gateway.core.errors import response_not_found
from gateway.providers.base import Prior
from gateway.routing.request_log import RequestLog
from gateway.state.responses import ResponseStore


async def prior_for(store: ResponseStore, body: dict[str, Any]) -> Prior | None:
    """The chain named by `previous_response_id`; ApiError 404 when the gateway does not know it."""
    previous = body.get("previous_response_id")
    if previous is None:
        return None
    prior = await store.chain(previous)
    if prior is None:
        raise response_not_found(previous)
    return prior


async def references_for(store: ResponseStore, body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The kept items that the input's `item_reference`s name, for a target that cannot look them up
    itself; an id the gateway never kept stays unresolved (only its origin knows it)."""
    given = body.get("input")
    if not isinstance(given, list):
        return {}
    ids = [item["id"] for item in given if isinstance(item, dict) and item.get("type") == "item_reference"
           and isinstance(item.get("id"), str)]
    return await store.items(ids) if ids else {}


def served_response(log: RequestLog) -> dict[str, Any] | None:
    """The Response object the client received: the whole body, or a stream's terminal event."""
    if not log.call.stream:
        try:
            data = orjson.loads(log.body)
        except orjson.JSONDecodeError:
            return None
        return data if isinstance(data, dict) and data.get("object") == "response" else None
    terminal = log.transcript.terminal
    if terminal is None:
        return None
    try:
        data = orjson.loads(terminal)
    except orjson.JSONDecodeError:
        return None
    response = data.get("response") if isinstance(data, dict) else None
    return response if isinstance(response, dict) else None


def input_items(body: dict[str, Any]) -> list[dict[str, Any]]:
    given = body.get("input")
    if isinstance(given, str):
        return [{"type": "message", "role": "user", "content": given}]
    return [item for item in given or () if isinstance(item, dict)]


async def remember(store: ResponseStore, log: RequestLog) -> None:
    """Keeps the items of a Response the client asked to store, for a later `previous_response_id`."""
    body = log.call.body
    if body.get("store") is False or log.answered_by is None:
        return
    response = served_response(log)
    if response is None or not isinstance(response.get("id"), str):
        return
    output = [item for item in response.get("output") or () if isinstance(item, dict)]
    await store.put(response["id"], log.answered_by.provider, body.get("previous_response_id"),
                    input_items(body) + output)
