"""OpenTelemetry traces: a span for each client request and a child span for each upstream attempt,
attributed after the OpenTelemetry GenAI semantic conventions plus Recloser's own, exported over
OTLP/HTTP in batches by the SDK's BatchSpanProcessor, off the request path.

The only module that imports OpenTelemetry; gateway/serving/app.py imports it only when traces are on.
A client's W3C `traceparent` makes the request span its child; each attempt sends its own upstream.
An unreachable collector loses spans (the processor's queue is bounded, its thread retries), never requests.

Cheap on the request path: the sampler decides once per request, ids are drawn as the SDK draws
them, and what a span needs is kept as plain values on the request log. Only a sampled request's
spans are made, once it ended, as plain tuples with their attributes in one dict each, and sent in
batches to a process of its own (gateway/flow/otel_export.py) that makes the SDK's finished spans of
them and exports them: encoding and the exporter's HTTP client take nothing from this interpreter.
A batch the export process cannot take at once is dropped: spans are lost, requests never wait.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from typing import Any

from opentelemetry.sdk.trace.export import SpanExporter
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.sdk.trace.sampling import (ALWAYS_OFF, ALWAYS_ON, Decision, ParentBased, Sampler,
                                              TraceIdRatioBased)
from opentelemetry.trace import SpanContext, SpanKind, TraceFlags, get_current_span
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from gateway.core.deployment import Deployment
from gateway.flow.otel_sink import ExportProcess, InProcess, Sink
from gateway.flow.tracing import TraceSettings, Tracer
from gateway.metering.record import CallRecord
from gateway.routing.request_log import AttemptRecord, RequestLog
from gateway.routing.table import RouteTable

# The GenAI conventions' operation names: Responses and Messages requests are chats too.
OPERATION = {"chat": "chat", "completions": "text_completion", "embeddings": "embeddings", "responses": "chat",
             "messages": "chat"}
SAMPLED = TraceFlags(TraceFlags.SAMPLED)
UNSAMPLED = TraceFlags(TraceFlags.DEFAULT)
SERVER, CLIENT = SpanKind.SERVER.value, SpanKind.CLIENT.value


def sampler(settings: TraceSettings) -> Sampler:
    ratio = TraceIdRatioBased(settings.sampler_arg)
    return {"always_on": ALWAYS_ON, "always_off": ALWAYS_OFF, "traceidratio": ratio,
            "parentbased_always_on": ParentBased(ALWAYS_ON), "parentbased_always_off": ParentBased(ALWAYS_OFF),
            "parentbased_traceidratio": ParentBased(ratio)}[settings.sampler]


def tier_of(route: RouteTable, d: Deployment) -> int | None:
    if not route.tiers:
        return None
    for i, candidate in enumerate(route.deployments):
        if candidate is d or candidate.key == d.key:
            return route.tiers[i]
    return None


class AttemptSpan:
    """An attempt's span while it runs: its id, and when it ended (0: not yet)."""

    __slots__ = ("span_id", "start_ns", "end_ns")

    def __init__(self, span_id: int, start_ns: int) -> None:
        self.span_id = span_id
        self.start_ns = start_ns
        self.end_ns = 0


class RequestTrace:
    """One request's span and what its end waits for: the answer's status and the meter's record."""

    __slots__ = ("context", "parent", "start_ns", "started", "status", "ended", "charge", "traceparent", "flags",
                 "state")

    def __init__(self, context: SpanContext, parent: SpanContext | None, started: float, start_ns: int) -> None:
        self.context = context          # the request span's own
        self.parent = parent            # the client's span, when it sent a traceparent
        self.start_ns = start_ns
        self.started = started          # the request log's clock at the same moment
        self.status: int | None = None
        self.ended = 0.0
        self.charge: CallRecord | None = None
        # What each attempt sends upstream, but for its own span id.
        self.traceparent = f"00-{context.trace_id:032x}-%016x-{int(context.trace_flags):02x}"
        self.flags = int(context.trace_flags)
        self.state = context.trace_state.to_header() if context.trace_state else ""

    def ns(self, at: float) -> int:
        """A moment on the request log's clock, as the span clock's nanoseconds."""
        return self.start_ns + int((at - self.started) * 1e9)


class OtelTracer(Tracer):
    """Spans sent to the export process; with `export` (tests), to that exporter in this process."""

    def __init__(self, settings: TraceSettings, export: SpanExporter | None = None) -> None:
        self.sink: Sink = InProcess(settings, export) if export is not None else ExportProcess(settings, os.getpid())
        self.sampler = sampler(settings)
        self.ids = RandomIdGenerator()
        self.propagator = TraceContextTextMapPropagator()

    async def start(self) -> None:
        await self.sink.start()

    def request_started(self, log: RequestLog, headers: Mapping[str, str]) -> None:
        call = log.call
        context = self.propagator.extract(headers) if "traceparent" in headers else None
        parent: SpanContext | None = get_current_span(context).get_span_context() if context is not None else None
        if parent is not None and not parent.is_valid:
            parent, context = None, None
        trace_id = parent.trace_id if parent is not None else self.ids.generate_trace_id()
        decision = self.sampler.should_sample(context, trace_id, call.model, SpanKind.SERVER)
        flags = SAMPLED if decision.decision is Decision.RECORD_AND_SAMPLE else UNSAMPLED
        if parent is None or parent.trace_flags.random_trace_id:   # the SDK's ids are random: say so (W3C level 2)
            flags = TraceFlags(flags | TraceFlags.RANDOM_TRACE_ID)
        own = SpanContext(trace_id, self.ids.generate_span_id(), is_remote=False, trace_flags=flags,
                          trace_state=decision.trace_state)
        log.trace = RequestTrace(own, parent, log.started, time.time_ns())

    def attempt_started(self, log: RequestLog, record: AttemptRecord) -> str:
        trace = log.trace
        if not isinstance(trace, RequestTrace):
            return ""          # a probe or a canary: no client request to belong to
        span = AttemptSpan(self.ids.generate_span_id(), trace.ns(record.started))
        record.span = span
        return trace.traceparent % span.span_id

    def attempt_failed(self, log: RequestLog, record: AttemptRecord) -> None:
        if isinstance(record.span, AttemptSpan) and not record.span.end_ns:
            record.span.end_ns = time.time_ns()     # now: when it failed, or when its stream broke

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
        log.trace = None
        if not trace.context.trace_flags.sampled:
            return
        call, route, status, charge = log.call, log.route, trace.status or 0, trace.charge
        operation = OPERATION.get(call.endpoint, call.endpoint)
        end_ns = trace.ns(trace.ended)
        answering = log.attempts[-1] if log.attempts and log.answered_by is not None else None
        for record in log.attempts:
            if isinstance(record.span, AttemptSpan):
                self._attempt(trace, log, record, end_ns, charge if record is answering else None)
                record.span = None
        attributes: dict[str, Any] = {
            "gen_ai.operation.name": operation, "gen_ai.request.model": call.model, "recloser.route": route.name,
            "recloser.team": log.caller.team, "recloser.app": log.caller.app, "recloser.request_id": call.request_id,
            "http.response.status_code": status, "recloser.attempts": len(log.attempts),
            "recloser.outcome": log.outcome if status < 400 else f"error_{status}"}
        if call.stream:
            attributes["recloser.stream"] = True
        if log.hedged:
            attributes["recloser.hedged"] = True
        if log.events:
            attributes["recloser.events"] = list(log.events)
        d = log.answered_by
        if d is not None:
            attributes["gen_ai.provider.name"] = d.provider
            attributes["gen_ai.response.model"] = d.model
            attributes["recloser.deployment"] = d.key
            attributes["recloser.failover"] = d is not route.deployments[0]
            tier = tier_of(route, d)
            if tier is not None:
                attributes["recloser.tier"] = tier
        if log.held_s:        # the route's hold_s: how long the request waited, held, for a target to come back
            attributes["recloser.hold_s"] = log.held_s
        if charge is not None:
            _usage(attributes, charge)
        failed = [r for r in log.attempts if r.error is not None]
        if status >= 400 and failed:
            attributes["recloser.failure_reason"] = failed[-1].outcome
        error = None
        if status >= 500:
            attributes["error.type"] = str(status)
            last = failed[-1].error if failed else None
            error = last.describe() if last is not None else f"HTTP {status}"
        context, parent = trace.context, trace.parent
        self.sink.send((f"{operation} {call.model}", context.trace_id, context.span_id,
                        parent.span_id if parent is not None else 0, parent is not None, trace.flags, trace.state,
                        SERVER, trace.start_ns, end_ns, attributes, error))

    def _attempt(self, trace: RequestTrace, log: RequestLog, record: AttemptRecord, end_ns: int,
                 charge: CallRecord | None) -> None:
        span = record.span
        assert isinstance(span, AttemptSpan)
        d, operation = record.deployment, OPERATION.get(log.call.endpoint, log.call.endpoint)
        attributes: dict[str, Any] = {
            "gen_ai.operation.name": operation, "gen_ai.provider.name": d.provider, "gen_ai.request.model": d.model,
            "recloser.deployment": d.key, "recloser.attempt.role": record.role,
            "recloser.outcome": record.outcome}
        tier = tier_of(log.route, d)
        if tier is not None:
            attributes["recloser.tier"] = tier
        error = None
        if record.error is not None:
            attributes["error.type"] = attributes["recloser.failure_reason"] = record.outcome
            if record.error.status is not None:
                attributes["http.response.status_code"] = record.error.status
            error = f"{record.outcome}: {record.error.describe()}"
        else:
            attributes["gen_ai.response.model"] = d.model
            if record.ttft_s is not None:
                attributes["recloser.ttft_s"] = record.ttft_s
        if charge is not None:
            _usage(attributes, charge)
        if span.end_ns:             # it failed, or its stream broke
            ended = span.end_ns
        elif record.ended and (not log.call.stream or record.lost_hedge):
            ended = trace.ns(record.ended)   # a whole answer ended when it came, a lost leg when cancelled
        else:
            ended = end_ns          # a stream ran until the request's end
        context = trace.context
        self.sink.send((f"{operation} {d.model}", context.trace_id, span.span_id, context.span_id, False, trace.flags,
                        trace.state, CLIENT, span.start_ns, max(ended, span.start_ns), attributes, error))

    def flush(self) -> None:
        """Sends what is waiting now (tests, and benchmarks that read the exporter)."""
        self.sink.flush()

    async def close(self) -> None:
        """Sends the waiting spans; the export side gives a collector that does not take them a few seconds."""
        await self.sink.close()


def _usage(attributes: dict[str, Any], charge: CallRecord) -> None:
    attributes["gen_ai.usage.input_tokens"] = charge.input_tokens
    attributes["gen_ai.usage.output_tokens"] = charge.output_tokens
    attributes["recloser.cost_usd"] = float(charge.cost_usd)
    if charge.usage_source != "reported":   # the meter counted the tokens itself (each attribute costs its encoding)
        attributes["recloser.usage_source"] = charge.usage_source
    if charge.paid_by == "client":   # the caller's own credentials paid this list price, not the organisation
        attributes["recloser.paid_by"] = "client"
