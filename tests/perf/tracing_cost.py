"""What traces add to one request, timed in-process.

    python tests/perf/tracing_cost.py [-n N]

Times the tracer's hooks for a request with one attempt (the request span started, the attempt's
span started with the traceparent it sends, the meter's record, the request's end) with traces off
(the no-op tracer) and on (the spans batched and pickled for the export process, as the gateway
sends them, the bytes then thrown away), then the export process's side alone, per span: the SDK's
finished span made of what arrived, and its OTLP protobuf encoding (the SDK's encoder, and the
export process's, which keeps repeated attributes' messages) or OTLP JSON encoding. Prints microseconds of this thread's CPU (which other
processes on a shared machine barely move) and of the wall clock; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from decimal import Decimal
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))

import pickle  # noqa: E402

from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans  # noqa: E402
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter  # noqa: E402

from gateway.core.auth import Caller  # noqa: E402
from gateway.flow.otel import OtelTracer  # noqa: E402
from gateway.flow.otel_export import SpanRecord, readable, resource  # noqa: E402
from gateway.flow.otel_sink import BATCH  # noqa: E402
from gateway.flow.otlp_json import otlp_json  # noqa: E402
from gateway.flow.otlp_proto import SpanEncoder  # noqa: E402
from gateway.flow.tracing import NO_TRACER, Tracer, TraceSettings  # noqa: E402
from gateway.metering.record import CallRecord  # noqa: E402
from gateway.policy.load import parse_policy  # noqa: E402
from gateway.providers.base import Call  # noqa: E402
from gateway.routing.request_log import AttemptRecord, RequestLog  # noqa: E402
from gateway.routing.table import build_routing, resolve_upstreams  # noqa: E402

POLICY = """
version: 1
providers:
  up: {kind: openai, base_url: "http://127.0.0.1:1/v1"}
routes:
  chat: {targets: [{provider: up, model: gpt-4o-mini}]}
"""


class Pickled:
    """What the gateway does with finished spans (gateway/flow/otel_sink.py: batches of 64, pickled);
    keeps the last batch for the export side's runs."""

    def __init__(self) -> None:
        self.waiting: list[SpanRecord] = []
        self.last: list[SpanRecord] = []

    async def start(self) -> None:
        pass

    def send(self, span: SpanRecord) -> None:
        self.waiting.append(span)
        if len(self.waiting) >= BATCH:
            self.flush()

    def flush(self) -> None:
        self.last, self.waiting = self.waiting, []
        pickle.dumps(self.last, protocol=pickle.HIGHEST_PROTOCOL)

    async def close(self) -> None:
        pass


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-n", type=int, default=20_000)
    n = p.parse_args().n
    doc = parse_policy(POLICY, "bench").document
    route = build_routing(doc, resolve_upstreams(doc, {})).routes["chat"]
    d = route.deployments[0]
    caller = Caller("web", "search", "web")
    headers: dict[str, str] = {}
    settings = TraceSettings("http://127.0.0.1:1/v1/traces", "http/protobuf", "bench", "parentbased_always_on", 1.0)
    on = OtelTracer(settings, InMemorySpanExporter())
    on.sink = pickled = Pickled()

    ids = iter(range(10**9))

    def request(tracer: Tracer) -> None:
        rid = f"rid-{next(ids)}"   # each request its own id, as the gateway's
        log = RequestLog(route, Call("chat", {"model": "chat", "messages": []}, False, rid), caller, 0.0, 600.0)
        tracer.request_started(log, headers)
        record = AttemptRecord(d, 0.0)
        log.attempts.append(record)
        tracer.attempt_started(log, record)
        record.ended = record.ttft_s = 0.002
        log.answered_by = d
        tracer.request_charged(log, CallRecord(
            ts=0.0, request_id=rid, team="search", app="web", key_id="web", route="chat", provider="up",
            model="gpt-4o-mini", input_tokens=12, output_tokens=20, cached_input_tokens=0,
            cost_usd=Decimal("0.0000138"), price_source="policy", usage_source="reported", outcome="ok", attempts=1,
            fallback=False, hedged=False, stream=False, latency_s=0.003, ttft_s=0.002))
        tracer.request_finished(log, 200, 0.003)

    for label, tracer in (("traces off (the no-op tracer)", NO_TRACER), ("traces on (spans to the export process)", on)):
        for _ in range(1000):
            request(tracer)
        started, cpu = time.perf_counter(), time.thread_time()
        for _ in range(n):
            request(tracer)
        print(f"{label}: {(time.thread_time() - cpu) / n * 1e6:.1f} µs CPU "
              f"({(time.perf_counter() - started) / n * 1e6:.1f} wall) per request (request + 1 attempt span)")
    where = resource(settings, 1)
    records = pickled.last
    batch = [readable(r, where) for r in records]
    encoder = SpanEncoder()
    for label, encode in (("the SDK's finished spans made", lambda: [readable(r, where) for r in records]),
                          ("OTLP protobuf encoding, the SDK's encoder",
                           lambda: encode_spans(batch).SerializePartialToString()),
                          ("OTLP protobuf encoding, the export process's (SpanEncoder)",
                           lambda: encoder.encode(batch).SerializePartialToString()),
                          ("OTLP JSON encoding", lambda: otlp_json(encode_spans(batch)))):
        rounds = max(1, n // max(1, len(batch)))
        started, cpu = time.perf_counter(), time.thread_time()
        for _ in range(rounds):
            encode()
        spans = rounds * len(batch)
        print(f"export process, {label}: {(time.thread_time() - cpu) / spans * 1e6:.1f} µs CPU "
              f"({(time.perf_counter() - started) / spans * 1e6:.1f} wall) per span (batches of {len(batch)})")
    asyncio.run(on.close())


if __name__ == "__main__":
    main()
