"""What the checks on live answers add to one answer, timed in-process.

    python tests/perf/answer_checks_cost.py

Times, per answer: a short English chat completion (the common case), a long one (2,000 words of
prose: the loop check reads its tail), one in Thai to an English question (a wrong script: the whole
request is searched), a tool call with the tool's schema declared (JSON parse and schema validation);
and a 20-chunk stream as the relay reads it (the transcript's parse of each event, which the relay
does anyway, against the same with the watch added, and the judgement at its end); and the
bookkeeping each checked answer costs (counted, and the deployment's defect rate moved on). Prints
microseconds; asserts nothing.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path

import orjson

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))

from gateway.core.metrics import Metrics  # noqa: E402
from gateway.policy.answer_checks import AnswerChecks  # noqa: E402
from gateway.policy.load import parse_policy  # noqa: E402
from gateway.routing.answer_defects import AnswerBoard  # noqa: E402
from gateway.routing.health import HealthBoard  # noqa: E402
from gateway.routing.table import build_routing, resolve_upstreams  # noqa: E402
from gateway.providers.transcript import Transcript  # noqa: E402
from gateway.quality.answer_checks import Asked  # noqa: E402
from gateway.quality.answer_read import StreamWatch, whole_defects  # noqa: E402

CHECKS = AnswerChecks()
SYSTEM = "You are a helpful assistant for the weather desk. Answer briefly and precisely. " * 20
REQUEST = {"model": "chat", "messages": [{"role": "system", "content": SYSTEM},
                                        {"role": "user", "content": "What is the weather like in Oslo today?"}]}
WEATHER = {"type": "function", "function": {"name": "get_weather", "parameters": {
    "type": "object", "properties": {"city": {"type": "string"}, "unit": {"enum": ["c", "f"]}}, "required": ["city"]}}}
PROSE = ("The weather in Oslo today is cold and clear, with a light wind from the north and a high of two degrees. "
         "Tomorrow brings clouds from the west, some snow in the afternoon, and colder nights. ")
WORDS = [f"w{i}" for i in range(2000)]


def completion(message: dict[str, object]) -> bytes:
    return orjson.dumps({"id": "x", "object": "chat.completion", "model": "m", "choices": [
        {"index": 0, "message": {"role": "assistant", **message}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 20, "total_tokens": 30}})


def timed(label: str, fn: Callable[[], object], n: int, rounds: int = 5) -> None:
    """The best of `rounds` rounds of n / rounds calls: on a shared machine the best is the cost, the rest is waiting."""
    fn()   # warm: a schema is compiled once, then cached
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        for _ in range(max(1, n // rounds)):
            fn()
        best = min(best, (time.perf_counter() - started) / max(1, n // rounds))
    print(f"{label:<62} {1e6 * best:8.1f} µs")


def main(n: int = 20_000) -> None:
    short = completion({"content": PROSE})
    long = completion({"content": PROSE + " ".join(WORDS)})
    thai = completion({"content": "นี่คือคำตอบที่ชัดเจนและครบถ้วนสำหรับคำถามของคุณ " * 10})
    tool = completion({"content": None, "tool_calls": [{"id": "c", "type": "function", "function": {
        "name": "get_weather", "arguments": '{"city": "Oslo", "unit": "c"}'}}]})
    with_tools = {**REQUEST, "tools": [WEATHER]}
    timed("whole answer, short English (the common case)", lambda: whole_defects(Asked(REQUEST, "chat"), short, "chat", CHECKS), n)
    timed("whole answer, 2,000 words (loop check on the tail)", lambda: whole_defects(Asked(REQUEST, "chat"), long, "chat", CHECKS), n // 4)
    timed("whole answer, Thai to an English question (request searched)",
          lambda: whole_defects(Asked(REQUEST, "chat"), thai, "chat", CHECKS), n // 4)
    timed("whole answer, a tool call validated against its schema",
          lambda: whole_defects(Asked(with_tools, "chat"), tool, "chat", CHECKS), n // 4)

    chunks = [b"data: " + orjson.dumps({"id": "x", "object": "chat.completion.chunk", "choices": [
        {"index": 0, "delta": {"content": w + " "}, "finish_reason": None}]}) + b"\n\n" for w in PROSE.split()[:19]]
    chunks.append(b"data: " + orjson.dumps({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}) + b"\n\n")

    def plain() -> None:
        t = Transcript("chat")
        for c in chunks:
            t.add(c)

    def watched() -> None:
        watch = StreamWatch(Asked(REQUEST, "chat"), CHECKS)
        t = Transcript("chat", None, watch)
        watch.text, watch.text_bytes = t.text, t.text_bytes
        for c in chunks:
            t.add(c)
            watch.look()
        watch.end()

    timed("20-chunk stream, the transcript alone (what the relay does)", plain, n // 4)
    timed("20-chunk stream, transcript + answer watch + judgement", watched, n // 4)

    doc = parse_policy(ROUTE, "bench").document
    route = build_routing(doc, resolve_upstreams(doc, {})).routes["chat"]
    metrics = Metrics()
    answers = AnswerBoard(HealthBoard(route.deployments, metrics, time.monotonic, doc.breaker), metrics, time.monotonic)
    timed("bookkeeping of a clean answer (counted, defect rate moved on)",
          lambda: answers.judged(route, route.deployments[0], []), n)


ROUTE = """
version: 1
providers:
  a: {kind: openai, base_url: "http://127.0.0.1:1/v1"}
  b: {kind: openai, base_url: "http://127.0.0.1:2/v1"}
routes: {chat: {targets: [{provider: a, model: m}, {provider: b, model: m}]}}
"""


if __name__ == "__main__":
    main()
