"""Continuing a broken chat stream: which targets take a prefill, and relaying only the new text."""

from __future__ import annotations

import orjson
import pytest

from gateway.policy.schema import ModelFacts, Timeouts
from gateway.providers.sse import chat_so_far
from gateway.flow.resume.chat import Diverged, PrefillBook, PrefixSkipper
from gateway.core.deployment import Deployment


def event(content: str | None = None, finish: str | None = None, role: bool = False, tool: bool = False) -> bytes:
    delta: dict[str, object] = {}
    if role:
        delta["role"] = "assistant"
    if content is not None:
        delta["content"] = content
    if tool:
        delta["tool_calls"] = [{"index": 0, "function": {"arguments": "{"}}]
    return b"data: " + orjson.dumps({"object": "chat.completion.chunk",
                                     "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}) + b"\n\n"


def relay(prefix: str, *chunks: bytes) -> bytes:
    skipper = PrefixSkipper(prefix)
    return b"".join(skipper.feed(c) for c in chunks)


def test_the_text_the_client_has_is_dropped_and_the_rest_relayed_as_it_came() -> None:
    out = relay("Hello wor", event("", role=True), event("Hello"), event(" wor"), event("ld"), event(None, "stop"))
    assert out == event("ld") + event(None, "stop")
    assert chat_so_far([out])[0] == "ld"


def test_a_delta_that_straddles_the_boundary_is_cut_at_it() -> None:
    out = relay("Hello wo", event("Hello"), event(" world"), b"data: [DONE]\n\n")
    assert chat_so_far([out])[0] == "rld"
    assert out.endswith(b"data: [DONE]\n\n")


def test_several_events_in_one_chunk_are_taken_one_by_one() -> None:
    assert chat_so_far([relay("ab", event("a") + event("b") + event("c"))])[0] == "c"


@pytest.mark.parametrize("chunks", [
    (event("Hello"), event(" there")),              # another answer
    (event("Hel"), event(None, "stop")),            # finished before reaching what the client has
    (event("Hel"), b"data: [DONE]\n\n"),
    (event(tool=True),),                            # a tool call instead
])
def test_an_answer_that_goes_another_way_is_diverged(chunks: tuple[bytes, ...]) -> None:
    with pytest.raises(Diverged):
        relay("Hello world", *chunks)


def deployment(prefill: bool | None = None) -> Deployment:
    return Deployment("p", "m", "openai", "http://127.0.0.1:1", Timeouts(), facts=ModelFacts(prefill=prefill))


def test_a_prefill_is_tried_unless_the_facts_or_a_400_said_no() -> None:
    book = PrefillBook()
    assert book.accepts(deployment()) and book.accepts(deployment(True))
    assert not book.accepts(deployment(False))
    d = deployment()
    book.learn_refusal(d)
    assert not book.accepts(d)
