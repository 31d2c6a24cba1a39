"""What lives as long as a stream, thousands at once, costs little: no per-instance dicts, no closures."""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable

from gateway.policy.answer_checks import AnswerChecks
from gateway.quality.answer_checks import Asked
from gateway.quality.answer_read import StreamWatch
from gateway.routing.request_log import RequestLog


def held_bytes(make: Callable[[], object], n: int = 500) -> float:
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        held = [make() for _ in range(n)]
        return (tracemalloc.get_traced_memory()[0] - before) / len(held)
    finally:
        tracemalloc.stop()


def test_a_request_log_and_a_stream_watch_have_no_per_instance_dict() -> None:
    asked = Asked({"model": "m", "messages": []}, "chat", ())
    for held in (RequestLog(None, None, None, 0.0, 0.0), StreamWatch(asked, AnswerChecks())):  # type: ignore[arg-type]
        assert not hasattr(held, "__dict__"), type(held).__name__


def test_a_stream_watch_costs_a_few_hundred_bytes_not_a_kilobyte() -> None:
    asked = Asked({"model": "m", "messages": []}, "chat", ())
    checks = AnswerChecks()     # the policy's, shared by every stream
    cost = held_bytes(lambda: StreamWatch(asked, checks))
    assert cost < 400, f"{cost:.0f} B per stream watch"
