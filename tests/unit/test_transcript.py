"""A relayed stream is kept as what a resume and the meter need (its text, tool-call arguments, usage
events), never as the bytes it relayed."""

from __future__ import annotations

import tracemalloc

import orjson

from gateway.providers.transcript import Transcript


def chat(content: str | None = None, arguments: str | None = None, usage: dict[str, int] | None = None) -> bytes:
    delta: dict[str, object] = {}
    if content is not None:
        delta["content"] = content
    if arguments is not None:
        delta["tool_calls"] = [{"index": 0, "function": {"arguments": arguments}}]
    event: dict[str, object] = {"id": "c", "object": "chat.completion.chunk",
                                "choices": [{"index": 0, "delta": delta}] if usage is None else []}
    if usage is not None:
        event["usage"] = usage
    return b"data: " + orjson.dumps(event) + b"\n\n"


def named(kind: str, **fields: object) -> bytes:
    return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps({"type": kind, **fields}) + b"\n\n"


def test_a_chat_stream_keeps_its_text_and_not_the_bytes_it_relayed() -> None:
    t = Transcript("chat")
    chunks = [chat(word) for word in ("Hello", ", ", "wörld")] + [b"data: [DONE]\n\n"]
    for chunk in chunks:
        t.add(chunk)
    assert t.text() == "Hello, wörld"
    assert t.events == 4
    assert t.kept_bytes() == len("Hello, wörld".encode()), "the text, no byte of the events around it"


def test_an_event_split_across_chunks_is_read_once_it_is_whole() -> None:
    t = Transcript("chat")
    event = chat("split")
    t.add(event[:17])
    assert t.text() == "" and t.events == 0
    t.add(event[17:] + chat(" here")[:5])
    assert t.text() == "split" and t.events == 1
    t.add(chat(" here")[5:])
    assert t.text() == "split here" and t.events == 2


def test_tool_call_arguments_are_kept_beside_the_text_and_mark_a_chat_stream() -> None:
    t = Transcript("chat")
    for chunk in (chat("Let me look."), chat(arguments='{"city": '), chat(arguments='"Oslo"}')):
        t.add(chunk)
    assert t.had_tools
    assert t.text() == "Let me look."
    assert t.answering_output() == 'Let me look.{"city": "Oslo"}'


def test_the_usage_read_is_the_answering_streams_first_and_last_usage_events() -> None:
    t = Transcript("chat")
    t.add(chat("a") + chat(usage={"prompt_tokens": 1, "completion_tokens": 1}))
    t.answering_from_here()   # a resume: the broken stream's usage is not the answer's
    t.add(chat(usage={"prompt_tokens": 5, "completion_tokens": 1}))
    t.add(chat(usage={"prompt_tokens": 5, "completion_tokens": 2}))
    t.add(chat(usage={"prompt_tokens": 5, "completion_tokens": 9}))
    kept = [orjson.loads(e[len(b"data: "):]) for e in t.usage_events()]
    assert [u["usage"]["completion_tokens"] for u in kept] == [1, 9]


def test_after_a_resume_the_answering_text_begins_where_it_took_over() -> None:
    t = Transcript("chat")
    t.add(chat("Hello wo"))
    t.answering_from_here()
    t.add(chat("rld"))
    assert t.text() == "Hello world"
    assert t.answering_text() == "rld"


def test_messages_and_responses_text_and_arguments_are_read_in_their_own_shapes() -> None:
    m = Transcript("messages")
    m.add(named("content_block_delta", index=0, delta={"type": "text_delta", "text": "Hi"}))
    m.add(named("content_block_delta", index=1, delta={"type": "input_json_delta", "partial_json": '{"a":1}'}))
    assert (m.text(), m.answering_output()) == ("Hi", 'Hi{"a":1}')
    r = Transcript("responses")
    r.add(named("response.output_text.delta", delta="Yo", sequence_number=3))
    r.add(named("response.completed", response={"id": "resp_1", "object": "response"}, sequence_number=4))
    assert r.text() == "Yo"
    assert r.terminal is not None and orjson.loads(r.terminal)["response"]["id"] == "resp_1"


def test_a_long_stream_grows_by_its_text_only() -> None:
    """Each relayed 200-byte chunk with a short delta costs the transcript only that delta's bytes."""
    t = Transcript("chat")
    chunk = chat("token ")
    chunk = chunk.replace(b'"id":"c"', b'"id":"' + b"c" * (201 - len(chunk)) + b'"')
    assert len(chunk) == 200
    for _ in range(100):   # warm: the buffer's first growth steps
        t.add(chunk)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for _ in range(5000):
            t.add(chunk)
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert grown / 5000 <= 64, f"{grown / 5000:.1f} bytes per chunk"
    assert t.kept_bytes() == 5100 * len("token ")
