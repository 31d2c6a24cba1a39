"""What traces add to one request, timed in-process.

    python tests/perf/tracing_cost.py [-n N]

Times the tracer's hooks for a request with one attempt (the request span started, the attempt's
span started with the traceparent it sends, the meter's record, the request's end) with traces off
(the no-op tracer) and on (OpenTelemetry's SDK, spans handed to a batch processor whose exporter
throws them away), then the export side alone: the SDK's OTLP protobuf encoding and the OTLP JSON
encoding of a batch of those spans, per span. Prints microseconds of this thread's CPU (which other
processes on a shared machine barely move) and of the wall clock; asserts nothing.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))

from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans  # noqa: E402
from opentelemetry.sdk.trace import ReadableSpan  # noqa: E402
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult  # noqa: E402

from gateway.core.auth import Caller  # noqa: E402
from gateway.flow.otel import OtelTracer  # noqa: E402
from gateway.flow.otlp_json import otlp_json  # noqa: E402
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


class Kept(SpanExporter):
    """Keeps the last batch (for the encoding runs) and drops the rest: the export costs nothing."""

    def __init__(self) -> None:
        self.last: Sequence[ReadableSpan] = ()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.last = spans
        return SpanExportResult.SUCCESS


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-n", type=int, default=20_000)
    n = p.parse_args().n
    doc = parse_policy(POLICY, "bench").document
    route = build_routing(doc, resolve_upstreams(doc, {})).routes["chat"]
    d = route.deployments[0]
    caller = Caller("web", "search", "web")
    headers: dict[str, str] = {}
    kept = Kept()
    on = OtelTracer(TraceSettings("http://127.0.0.1:1/v1/traces", "http/protobuf", "bench", "parentbased_always_on",
                                  1.0), kept)

    def request(tracer: Tracer) -> None:
        log = RequestLog(route, Call("chat", {"model": "chat", "messages": []}, False, "rid"), caller, 0.0, 600.0)
        tracer.request_started(log, headers)
        record = AttemptRecord(d, 0.0)
        log.attempts.append(record)
        tracer.attempt_started(log, record)
        record.ended = record.ttft_s = 0.002
        log.answered_by = d
        tracer.request_charged(log, CallRecord(
            ts=0.0, request_id="rid", team="search", app="web", key_id="web", route="chat", provider="up",
            model="gpt-4o-mini", input_tokens=12, output_tokens=20, cached_input_tokens=0,
            cost_usd=Decimal("0.0000138"), price_source="policy", usage_source="reported", outcome="ok", attempts=1,
            fallback=False, hedged=False, stream=False, latency_s=0.003, ttft_s=0.002))
        tracer.request_finished(log, 200, 0.003)

    for label, tracer in (("traces off (the no-op tracer)", NO_TRACER), ("traces on (OpenTelemetry SDK)", on)):
        for _ in range(1000):
            request(tracer)
        started, cpu = time.perf_counter(), time.thread_time()
        for _ in range(n):
            request(tracer)
        print(f"{label}: {(time.thread_time() - cpu) / n * 1e6:.1f} µs CPU "
              f"({(time.perf_counter() - started) / n * 1e6:.1f} wall) per request (request + 1 attempt span)")
    on.flush()
    batch = list(kept.last)
    for label, encode in (("OTLP protobuf", lambda: encode_spans(batch).SerializePartialToString()),
                          ("OTLP JSON", lambda: otlp_json(encode_spans(batch)))):
        rounds = max(1, n // max(1, len(batch)))
        started, cpu = time.perf_counter(), time.thread_time()
        for _ in range(rounds):
            encode()
        spans = rounds * len(batch)
        print(f"export thread, {label} encoding: {(time.thread_time() - cpu) / spans * 1e6:.1f} µs CPU "
              f"({(time.perf_counter() - started) / spans * 1e6:.1f} wall) per span (batches of {len(batch)})")
    on.processor.shutdown()


if __name__ == "__main__":
    main()
