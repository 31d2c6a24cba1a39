"""What counts as a 200 the wire allows: headers, whole bodies, a stream's first and later events."""

from __future__ import annotations

import pytest

from gateway.providers.answer_check import check_events, check_first_event, check_head, check_whole
from gateway.providers.base import Failure

CHUNK = b'data: {"choices":[{"delta":{"content":"hi"}}]}\n\n'


@pytest.mark.parametrize(("content_type", "encoding", "length", "stream"), [
    ("text/html", None, None, False),
    ("text/plain", None, None, False),
    ("application/json", None, None, True),        # a stream was asked for
    ("text/event-stream", None, None, False),      # a whole answer was asked for
    ("application/json", "gzip", None, False),
    ("text/event-stream", "br", None, True),
    ("application/json", None, 2048, False),       # over the 1024-byte bound
])
def test_headers_the_wire_does_not_allow_are_a_broken_answer(content_type: str, encoding: str | None,
                                                             length: int | None, stream: bool) -> None:
    err = check_head(content_type, encoding, length, stream, limit=1024)
    assert err is not None and err.failure is Failure.BROKEN


@pytest.mark.parametrize(("content_type", "encoding", "stream"), [
    ("application/json", None, False), ("application/json", "identity", False), ("text/event-stream", None, True)])
def test_the_wires_own_headers_pass(content_type: str, encoding: str | None, stream: bool) -> None:
    assert check_head(content_type, encoding, 100, stream, limit=1024) is None


@pytest.mark.parametrize("body", [b"<html>502</html>", b'{"choices": [', b"", b"[]", b'{"error": {"message": "x"}}',
                                  b'{"choices": "nope"}'])
def test_a_whole_answer_must_be_a_json_object_with_its_results(body: bytes) -> None:
    err = check_whole(body, "chat")
    assert err is not None and err.failure is Failure.BROKEN


def test_whole_answers_need_the_list_their_endpoint_returns() -> None:
    assert check_whole(b'{"choices": []}', "chat") is None
    assert check_whole(b'{"choices": []}', "completions") is None
    assert check_whole(b'{"data": []}', "embeddings") is None
    assert check_whole(b'{"choices": []}', "embeddings") is not None


@pytest.mark.parametrize("events", [b"<html>\n\n", b"data: hello\n\n", b'data: {"choices": [\n\n', b"\x00\x17\n\n"])
def test_a_first_event_that_is_not_sse_of_json_is_broken(events: bytes) -> None:
    assert check_first_event(events) is not None


def test_first_events_of_the_wire_pass() -> None:
    assert check_first_event(b": keep-alive\n\n" + CHUNK) is None
    assert check_first_event(b"event: message_start\ndata: {\"type\": \"message_start\"}\n\n") is None
    assert check_first_event(b"data: [DONE]\n\n") is None


@pytest.mark.parametrize("events", [b"garbage\n\n", b"data: not json\n\n", CHUNK + b"<html>\n\n"])
def test_later_events_are_checked_by_shape(events: bytes) -> None:
    assert check_events(events) is not None


def test_later_events_of_the_wire_pass() -> None:
    assert check_events(CHUNK + b": ping\n\nid: 3\nretry: 10\n" + b"data: [DONE]\n\n") is None
