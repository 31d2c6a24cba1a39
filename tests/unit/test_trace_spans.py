"""The spans of one request, exported to the SDK's in-memory exporter: which exist, what ends them,
what they carry, and the OTLP JSON they are sent as with `http/json`."""

from __future__ import annotations

import asyncio
import textwrap
import time
from decimal import Decimal

import orjson
import pytest
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from gateway.core.auth import Caller
from gateway.core.deployment import Deployment
from gateway.core.metrics import Metrics
from gateway.flow.attempts import Attempts
from gateway.flow.otel import OtelTracer
from gateway.flow.otlp_json import otlp_json
from gateway.flow.tracing import TraceSettings
from gateway.metering.record import CallRecord
from gateway.policy.load import parse_policy
from gateway.providers.base import AttemptError, Call, Failure, Reply
from gateway.routing.health import HealthBoard
from gateway.routing.request_log import RequestLog
from gateway.routing.table import RouteTable, build_routing, resolve_upstreams
from tests.unit.test_attempt_journal_hooks import POLICY

CLIENT_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"


class Upstream:
    """Answers, or fails with a 503; keeps the traceparent each call carried."""

    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.traceparents: list[str] = []

    async def open(self, deployment: Deployment, call: Call, budget_s: float) -> Reply:
        self.traceparents.append(call.traceparent)
        if self.fail:
            raise AttemptError(Failure.STATUS, status=503)
        return Reply(200, body=b"{}")


def route() -> RouteTable:
    doc = parse_policy(textwrap.dedent(POLICY).lstrip("\n"), "p.yaml", {}).document
    return build_routing(doc, resolve_upstreams(doc, {})).routes["chat"]


def tracer(sampler: str = "parentbased_always_on") -> tuple[OtelTracer, InMemorySpanExporter]:
    exported = InMemorySpanExporter()
    return OtelTracer(TraceSettings("http://127.0.0.1:9/v1/traces", "http/protobuf", "t", sampler, 1.0),
                      exported), exported


def finished(t: OtelTracer, exported: InMemorySpanExporter) -> list[ReadableSpan]:
    t.flush()
    return list(exported.get_finished_spans())


def charge(log: RequestLog, input_tokens: int = 10, output_tokens: int = 5) -> CallRecord:
    return CallRecord(ts=0.0, request_id=log.call.request_id, team="t", app="a", key_id="k", route="chat",
                      provider="up", model="m", input_tokens=input_tokens, output_tokens=output_tokens,
                      cached_input_tokens=0, cost_usd=Decimal("0.000125"), price_source="policy",
                      usage_source="counted", outcome="ok", attempts=1, fallback=False, hedged=False, stream=True,
                      latency_s=1.0, ttft_s=None)


def request(clock: list[float], upstream: Upstream, t: OtelTracer, headers: dict[str, str] | None = None,
            stream: bool = False) -> tuple[RequestLog, Attempts]:
    r = route()
    attempts = Attempts(lambda _: upstream, HealthBoard(r.deployments, Metrics(), lambda: clock[0], r.breaker),
                        Metrics(), lambda: clock[0])
    attempts.tracer = t
    log = RequestLog(r, Call("chat", {"model": "chat", "messages": []}, stream, "r1"), Caller("k", "t", "a"),
                     clock[0], clock[0] + 60.0)
    t.request_started(log, headers or {})
    return log, attempts


def test_a_span_waits_for_the_meter_that_counts_its_tokens_and_ends_when_the_answer_did() -> None:
    t, exported = tracer()
    clock = [100.0]
    log, attempts = request(clock, Upstream(), t, stream=True)
    asyncio.run(attempts.once(log, log.route.deployments[0], log.call, "primary"))
    log.answered_by = log.route.deployments[0]
    clock[0] = 102.5
    t.request_finished(log, 200, clock[0])
    assert finished(t, exported) == []     # the stream reported no usage: the meter counts it first
    t.request_charged(log, charge(log))
    spans = finished(t, exported)
    request_span = next(s for s in spans if s.kind is SpanKind.SERVER)
    assert request_span.attributes is not None and request_span.attributes["gen_ai.usage.output_tokens"] == 5
    assert request_span.attributes["recloser.cost_usd"] == pytest.approx(0.000125)
    assert request_span.end_time is not None and request_span.start_time is not None
    assert request_span.end_time - request_span.start_time == pytest.approx(2.5e9, abs=1e3)
    attempt_span = next(s for s in spans if s.kind is SpanKind.CLIENT)
    assert attempt_span.end_time == request_span.end_time   # a stream runs until the request ends


def test_a_failed_attempt_ends_when_it_failed_in_error_with_its_reason() -> None:
    t, exported = tracer()
    clock = [5.0]
    log, attempts = request(clock, Upstream(fail=True), t)
    with pytest.raises(AttemptError):
        asyncio.run(attempts.once(log, log.route.deployments[0], log.call, "primary"))
    failed_at = time.time_ns()
    clock[0] = 65.0     # a minute later the request gives up
    t.request_charged(log, charge(log, 0, 0))
    t.request_finished(log, 503, clock[0])
    (span,) = [s for s in finished(t, exported) if s.kind is SpanKind.CLIENT]
    assert span.end_time is not None and span.end_time <= failed_at
    assert span.status.status_code is StatusCode.ERROR and span.status.description == "server_error: HTTP 503"
    assert span.attributes is not None and span.attributes["recloser.failure_reason"] == "server_error"


def test_an_unsampled_client_trace_exports_nothing_yet_still_travels_upstream() -> None:
    t, exported = tracer()
    clock = [0.0]
    upstream = Upstream()
    log, attempts = request(clock, upstream, t, {"traceparent": f"00-{CLIENT_TRACE}-00f067aa0ba902b7-00"})
    asyncio.run(attempts.once(log, log.route.deployments[0], log.call, "primary"))
    log.answered_by = log.route.deployments[0]
    t.request_charged(log, charge(log))
    t.request_finished(log, 200, 1.0)
    assert finished(t, exported) == []
    assert upstream.traceparents[0].startswith(f"00-{CLIENT_TRACE}-") and upstream.traceparents[0].endswith("-00")


def test_a_call_without_a_client_request_makes_no_span() -> None:
    t, exported = tracer()
    r = route()
    probe = RequestLog(r, Call("chat", {"model": "chat"}, False, "probe-1"), Caller("k", "t", "a"), 0.0, 1.0)
    upstream = Upstream()
    attempts = Attempts(lambda _: upstream, HealthBoard(r.deployments, Metrics(), lambda: 0.0, r.breaker), Metrics(),
                        lambda: 0.0)
    attempts.tracer = t
    asyncio.run(attempts.once(probe, r.deployments[0], probe.call, "probe"))
    assert upstream.traceparents == [""]
    assert finished(t, exported) == []


def test_otlp_json_writes_ids_in_hex_and_enums_as_numbers() -> None:
    t, exported = tracer()
    clock = [0.0]
    log, attempts = request(clock, Upstream(fail=True), t, {"traceparent": f"00-{CLIENT_TRACE}-00f067aa0ba902b7-01"})
    with pytest.raises(AttemptError):
        asyncio.run(attempts.once(log, log.route.deployments[0], log.call, "primary"))
    t.request_charged(log, charge(log, 0, 0))
    t.request_finished(log, 503, 1.0)
    (span,) = [s for s in finished(t, exported) if s.kind is SpanKind.CLIENT]
    body = orjson.loads(otlp_json(encode_spans([span])))
    sent = body["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    assert sent["traceId"] == CLIENT_TRACE
    assert sent["spanId"] == f"{span.context.span_id:016x}" if span.context else False
    assert sent["kind"] == 3            # SPAN_KIND_CLIENT
    assert sent["status"]["code"] == 2  # STATUS_CODE_ERROR


@pytest.mark.parametrize("header", ["00-not-a-trace-01", f"00-{'0' * 32}-00f067aa0ba902b7-01", "garbage"])
def test_a_malformed_client_traceparent_starts_a_trace_of_its_own(header: str) -> None:
    t, exported = tracer()
    clock = [0.0]
    upstream = Upstream()
    log, attempts = request(clock, upstream, t, {"traceparent": header})
    asyncio.run(attempts.once(log, log.route.deployments[0], log.call, "primary"))
    log.answered_by = log.route.deployments[0]
    t.request_charged(log, charge(log))
    t.request_finished(log, 200, 1.0)
    request_span = next(s for s in finished(t, exported) if s.kind is SpanKind.SERVER)
    assert request_span.parent is None
    assert request_span.context is not None and request_span.context.trace_id != 0
    assert upstream.traceparents[0].startswith(f"00-{request_span.context.trace_id:032x}-")


def test_spans_the_export_process_cannot_take_are_dropped_never_waited_for(caplog: pytest.LogCaptureFixture) -> None:
    from gateway.flow.otel_sink import BATCH, ExportProcess

    sink = ExportProcess(TraceSettings("http://127.0.0.1:9/v1/traces", "http/protobuf", "t", "always_on", 1.0), 1)

    async def send() -> None:   # never started: no export process, no pipe
        for _ in range(BATCH + 1):
            sink.send(("chat m", 1, 2, 0, False, 1, "", 2, 0, 1, {}, None))
        await sink.close()

    asyncio.run(send())
    assert sink.dropped == BATCH + 1
    assert "spans are dropped" in caplog.text
