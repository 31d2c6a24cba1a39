"""The body sent upstream is held by the HTTP client until the answer ends (minutes for a stream):
it must cost its own size, not a serializer's working buffer."""

from __future__ import annotations

import tracemalloc

import orjson

from gateway.providers.base import Call


def call() -> Call:
    body = {"model": "chat", "stream": True, "messages": [{"role": "user", "content": "go on"}]}
    return Call(endpoint="chat", body=body, stream=True, request_id="r1")


def test_the_upstream_body_names_the_deployments_model_and_keeps_the_rest() -> None:
    sent = orjson.loads(call().upstream_body("gpt-4o-mini"))
    assert sent == {"model": "gpt-4o-mini", "stream": True, "messages": [{"role": "user", "content": "go on"}]}


def test_a_held_upstream_body_costs_about_its_own_size() -> None:
    c = call()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        held = [c.upstream_body("m") for _ in range(100)]
        per_body = (tracemalloc.get_traced_memory()[0] - before) / len(held)
    finally:
        tracemalloc.stop()
    assert per_body < 4 * len(held[0]) + 256, f"{per_body:.0f} B held per {len(held[0])}-byte body"
