"""The export process's OTLP protobuf encoding: the same request the SDK's encoder makes, for the
gateway's own spans, though it keeps repeated attributes' messages from span to span."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from gateway.flow import otlp_proto
from gateway.flow.otel import OtelTracer
from gateway.flow.otel_export import SCOPE, readable, resource
from gateway.flow.otlp_proto import SpanEncoder
from gateway.flow.tracing import TraceSettings
from gateway.providers.base import AttemptError
from tests.unit.test_trace_spans import CLIENT_TRACE, Upstream, charge, finished, request, tracer

SETTINGS = TraceSettings("http://127.0.0.1:9/v1/traces", "http/protobuf", "t", "parentbased_always_on", 1.0)


def spans_of_requests() -> tuple[OtelTracer, InMemorySpanExporter]:
    """A retried request under a client's trace (with its tracestate), then an answered one."""
    t, exported = tracer()
    clock = [0.0]
    upstream = Upstream(fail=True)
    log, attempts = request(clock, upstream, t, {
        "traceparent": f"00-{CLIENT_TRACE}-00f067aa0ba902b7-01", "tracestate": "vendor=abc,other=1"})
    with pytest.raises(AttemptError):
        asyncio.run(attempts.once(log, log.route.deployments[0], log.call, "primary"))
    upstream.fail = False
    asyncio.run(attempts.once(log, log.route.deployments[0], log.call, "retry"))
    log.answered_by = log.route.deployments[0]
    log.events.append("breaker_opened")
    t.request_charged(log, charge(log))
    t.request_finished(log, 200, 1.0)
    log, attempts = request(clock, Upstream(), t)
    asyncio.run(attempts.once(log, log.route.deployments[0], log.call, "primary"))
    log.answered_by = log.route.deployments[0]
    t.request_charged(log, charge(log, 7, 3))
    t.request_finished(log, 200, 2.0)
    return t, exported


def test_the_encoding_is_the_sdks_byte_for_byte() -> None:
    spans = finished(*spans_of_requests())
    assert len(spans) == 5 and any(s.parent is not None and s.parent.is_remote for s in spans)
    assert any(s.status.description for s in spans) and any(s.context and s.context.trace_state for s in spans)
    encoder = SpanEncoder()
    for _ in range(2):    # the second time from the kept attribute messages
        assert encoder.encode(spans).SerializeToString(deterministic=True) == \
            encode_spans(spans).SerializeToString(deterministic=True)
    assert encoder.kept


def test_a_kept_attribute_is_told_apart_by_its_type_and_value() -> None:
    where = resource(SETTINGS, 1)
    records = [("chat m", 1, 2, 0, False, 1, "", SpanKind.SERVER.value, 10, 20, {"a": value}, None)
               for value in (1, True, "1", 1.0, 2, 1)]
    spans = [readable(r, where) for r in records]
    sent = ExportTraceServiceRequest.FromString(SpanEncoder().encode(spans).SerializeToString())
    values = [s.attributes[0].value for s in sent.resource_spans[0].scope_spans[0].spans]
    assert [v.WhichOneof("value") for v in values] == ["int_value", "bool_value", "string_value", "double_value",
                                                        "int_value", "int_value"]
    assert [v.int_value for v in values if v.WhichOneof("value") == "int_value"] == [1, 2, 1]


def test_the_kept_messages_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(otlp_proto, "MOST_KEPT", 10)
    encoder = SpanEncoder()
    where = resource(SETTINGS, 1)
    spans = [readable(("chat m", 1, 2 + i, 0, False, 1, "", SpanKind.SERVER.value, 10, 20,
                       {"gen_ai.usage.input_tokens": i}, None), where) for i in range(50)]
    assert encoder.encode(spans).SerializeToString(deterministic=True) == \
        encode_spans(spans).SerializeToString(deterministic=True)
    assert len(encoder.kept) <= 10


def test_spans_with_events_go_to_the_sdks_encoder_whole() -> None:
    where = resource(SETTINGS, 1)
    span = readable(("chat m", 1, 2, 0, False, 1, "", SpanKind.SERVER.value, 10, 20, {"a": "b"}, None), where)
    with_event = ReadableSpan("chat m", span.context, None, where, {"a": "b"}, events=[Event("e", {"k": 1}, 15)],
                              kind=SpanKind.SERVER, start_time=10, end_time=20, instrumentation_scope=SCOPE)
    sent = SpanEncoder().encode([span, with_event])
    assert sent == encode_spans([span, with_event])
    assert sent.resource_spans[0].scope_spans[0].spans[1].events[0].name == "e"


def test_the_export_process_imports_neither_the_policy_schema_nor_the_request_flow() -> None:
    """Its memory is its own: what it imports for the settings alone stays out (14 MB of it, pydantic's)."""
    out = subprocess.run([sys.executable, "-c", "import json, sys, gateway.flow.otel_export; "
                          "print(json.dumps([m for m in sys.modules if m.startswith(('pydantic', 'gateway.'))]))"],
                         capture_output=True, text=True, check=True, cwd=Path(__file__).resolve().parents[2]).stdout
    imported = set(json.loads(out))
    assert not {m for m in imported if m.startswith(("pydantic", "gateway.policy", "gateway.routing"))}
    assert "gateway.flow.otel_export" in imported
