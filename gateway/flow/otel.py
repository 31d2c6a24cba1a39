"""OpenTelemetry traces: a span for each client request and a child span for each upstream attempt,
attributed after the OpenTelemetry GenAI semantic conventions plus Recloser's own, exported over
OTLP/HTTP in batches by the SDK's BatchSpanProcessor, off the request path.

The only module that imports OpenTelemetry; gateway/serving/app.py imports it only when traces are on.
A client's W3C `traceparent` makes the request span its child; each attempt sends its own upstream.
An unreachable collector loses spans (the processor's queue is bounded, its thread retries), never requests.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from typing import Any

from opentelemetry.context import Context
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.sampling import (ALWAYS_OFF, ALWAYS_ON, ParentBased, Sampler, TraceIdRatioBased)
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, set_span_in_context
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from gateway.core.deployment import Deployment
from gateway.flow.otlp_json import JsonSpanExporter
from gateway.flow.tracing import TraceSettings, Tracer
from gateway.metering.record import CallRecord
from gateway.routing.request_log import AttemptRecord, RequestLog
from gateway.routing.table import RouteTable

_logger = logging.getLogger("recloser.tracing")

# The GenAI conventions' operation names: Responses and Messages requests are chats too.
OPERATION = {"chat": "chat", "completions": "text_completion", "embeddings": "embeddings", "responses": "chat",
             "messages": "chat"}
CLOSE_WITHIN_S = 3.0      # at shutdown, queued spans get this long to reach the collector


def sampler(settings: TraceSettings) -> Sampler:
    ratio = TraceIdRatioBased(settings.sampler_arg)
    return {"always_on": ALWAYS_ON, "always_off": ALWAYS_OFF, "traceidratio": ratio,
            "parentbased_always_on": ParentBased(ALWAYS_ON), "parentbased_always_off": ParentBased(ALWAYS_OFF),
            "parentbased_traceidratio": ParentBased(ratio)}[settings.sampler]


def exporter(settings: TraceSettings) -> SpanExporter:
    if settings.protocol == "http/json":
        return JsonSpanExporter(endpoint=settings.endpoint)
    return OTLPSpanExporter(endpoint=settings.endpoint)


def traceparent(span: Span) -> str:
    """The W3C traceparent naming `span` as the parent of what the upstream does."""
    ctx = span.get_span_context()
    return f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-{int(ctx.trace_flags):02x}"


def tier_of(route: RouteTable, d: Deployment) -> int | None:
    if not route.tiers:
        return None
    for i, candidate in enumerate(route.deployments):
        if candidate is d or candidate.key == d.key:
            return route.tiers[i]
    return None


class RequestTrace:
    """One request's span and what its end waits for: the answer's status and the meter's record."""

    __slots__ = ("span", "context", "start_ns", "started", "status", "ended", "charge")

    def __init__(self, span: Span, started: float, start_ns: int) -> None:
        self.span = span
        self.context: Context = set_span_in_context(span)
        self.start_ns = start_ns
        self.started = started          # the request log's clock at the same moment
        self.status: int | None = None
        self.ended = 0.0
        self.charge: CallRecord | None = None

    def ns(self, at: float) -> int:
        """A moment on the request log's clock, as the span clock's nanoseconds."""
        return self.start_ns + int((at - self.started) * 1e9)


class OtelTracer(Tracer):
    def __init__(self, settings: TraceSettings, export: SpanExporter | None = None) -> None:
        self.exporter = export or exporter(settings)
        self.provider = TracerProvider(resource=Resource.create({"service.name": settings.service_name}),
                                       sampler=sampler(settings), shutdown_on_exit=False)
        self.provider.add_span_processor(BatchSpanProcessor(self.exporter))
        self.tracer = self.provider.get_tracer("recloser")
        self.propagator = TraceContextTextMapPropagator()

    def request_started(self, log: RequestLog, headers: Mapping[str, str]) -> None:
        call = log.call
        parent = self.propagator.extract(headers) if "traceparent" in headers else None
        operation = OPERATION.get(call.endpoint, call.endpoint)
        start_ns = time.time_ns()
        span = self.tracer.start_span(f"{operation} {call.model}", context=parent, kind=SpanKind.SERVER,
                                      start_time=start_ns, attributes={
            "gen_ai.operation.name": operation, "gen_ai.request.model": call.model, "recloser.route": log.route.name,
            "recloser.team": log.caller.team, "recloser.app": log.caller.app, "recloser.request_id": call.request_id,
            "recloser.stream": call.stream})
        log.trace = RequestTrace(span, log.started, start_ns)

    def attempt_started(self, log: RequestLog, record: AttemptRecord) -> str:
        trace = log.trace
        if not isinstance(trace, RequestTrace):
            return ""          # a probe or a canary: no client request to belong to
        d, operation = record.deployment, OPERATION.get(log.call.endpoint, log.call.endpoint)
        attributes: dict[str, Any] = {
            "gen_ai.operation.name": operation, "gen_ai.provider.name": d.provider, "gen_ai.request.model": d.model,
            "recloser.route": log.route.name, "recloser.deployment": d.key, "recloser.attempt.role": record.role,
            "recloser.attempt.index": len(log.attempts) - 1}
        tier = tier_of(log.route, d)
        if tier is not None:
            attributes["recloser.tier"] = tier
        span = self.tracer.start_span(f"{operation} {d.model}", context=trace.context, kind=SpanKind.CLIENT,
                                      attributes=attributes, start_time=trace.ns(record.started))
        record.span = span
        return traceparent(span)

    def attempt_failed(self, log: RequestLog, record: AttemptRecord) -> None:
        trace = log.trace
        if isinstance(trace, RequestTrace):
            self._end_attempt(trace, record, None)     # now: when it failed, or when its stream broke

    def request_finished(self, log: RequestLog, status: int, ended: float) -> None:
        trace = log.trace
        if not isinstance(trace, RequestTrace):
            return
        trace.status, trace.ended = status, ended
        if trace.charge is not None:
            self._end(log, trace)
        # else the meter counts the tokens first (a stream without usage): request_charged ends it

    def request_charged(self, log: RequestLog, record: CallRecord) -> None:
        trace = log.trace
        if not isinstance(trace, RequestTrace) or trace.charge is not None:
            return
        trace.charge = record
        if trace.status is not None:
            self._end(log, trace)

    def _end(self, log: RequestLog, trace: RequestTrace) -> None:
        status = trace.status or 0
        answering = log.attempts[-1] if log.attempts and log.answered_by is not None else None
        for record in log.attempts:
            if record.span is not None:
                # A whole answer ended when it arrived; a stream that began ran until the request's end.
                streamed = log.call.stream and record.ttft_s is not None
                at = trace.ended if streamed or not record.ended else record.ended
                self._end_attempt(trace, record, at, trace.charge if record is answering else None)
        span = trace.span
        span.set_attribute("http.response.status_code", status)
        span.set_attribute("recloser.outcome", log.outcome if status < 400 else f"error_{status}")
        span.set_attribute("recloser.attempts", len(log.attempts))
        span.set_attribute("recloser.hedged", log.hedged)
        if log.events:
            span.set_attribute("recloser.events", list(log.events))
        d = log.answered_by
        if d is not None:
            span.set_attribute("gen_ai.provider.name", d.provider)
            span.set_attribute("gen_ai.response.model", d.model)
            span.set_attribute("recloser.deployment", d.key)
            span.set_attribute("recloser.failover", d is not log.route.deployments[0])
            tier = tier_of(log.route, d)
            if tier is not None:
                span.set_attribute("recloser.tier", tier)
        held = getattr(log, "held_s", None)   # the route's hold_s: how long the request waited for a target
        if held:
            span.set_attribute("recloser.hold_s", float(held))
        if trace.charge is not None:
            _usage(span, trace.charge)
        failed = [r for r in log.attempts if r.error is not None]
        if status >= 400 and failed:
            span.set_attribute("recloser.failure_reason", failed[-1].outcome)
        if status >= 500:
            span.set_attribute("error.type", str(status))
            span.set_status(Status(StatusCode.ERROR, failed[-1].error.describe() if failed and failed[-1].error
                                   else f"HTTP {status}"))
        span.end(end_time=trace.ns(trace.ended))

    @staticmethod
    def _end_attempt(trace: RequestTrace, record: AttemptRecord, at: float | None,
                     charge: CallRecord | None = None) -> None:
        span = record.span
        if not isinstance(span, Span):
            return
        record.span = None
        span.set_attribute("recloser.outcome", record.outcome)
        if record.ttft_s is not None and record.error is None:
            span.set_attribute("recloser.ttft_s", record.ttft_s)
        if record.error is not None:
            span.set_attribute("error.type", record.outcome)
            span.set_attribute("recloser.failure_reason", record.outcome)
            if record.error.status is not None:
                span.set_attribute("http.response.status_code", record.error.status)
            span.set_status(Status(StatusCode.ERROR, f"{record.outcome}: {record.error.describe()}"))
        else:
            span.set_attribute("gen_ai.response.model", record.deployment.model)
        if charge is not None:
            _usage(span, charge)
        span.end(end_time=trace.ns(at) if at is not None else None)

    async def close(self) -> None:
        """Sends the queued spans within CLOSE_WITHIN_S; a collector that does not take them then loses them."""
        done = asyncio.ensure_future(asyncio.to_thread(self.provider.shutdown))
        try:
            await asyncio.wait_for(asyncio.shield(done), CLOSE_WITHIN_S)
        except TimeoutError:
            _logger.warning("traces: the collector did not take the last spans within %.0f s; they are lost",
                            CLOSE_WITHIN_S)
            self.exporter.shutdown()    # ends the exporter's retries, so the processor's thread ends too
            await done


def _usage(span: Span, charge: CallRecord) -> None:
    span.set_attribute("gen_ai.usage.input_tokens", charge.input_tokens)
    span.set_attribute("gen_ai.usage.output_tokens", charge.output_tokens)
    span.set_attribute("recloser.cost_usd", float(charge.cost_usd))
    span.set_attribute("recloser.usage_source", charge.usage_source)
    if charge.paid_by == "client":   # the caller's own credentials paid this list price, not the organisation
        span.set_attribute("recloser.paid_by", "client")
