"""The export side of traces: finished spans, as plain tuples, made into the SDK's finished spans and
handed to its BatchSpanProcessor with the OTLP/HTTP exporter.

The gateway runs it in a process of its own (`python -m gateway.flow.otel_export SETTINGS PID`) and
writes batches of spans to its stdin, so encoding them and the exporter's HTTP client take nothing
from the gateway's interpreter. Its stdin closing (the gateway closing, or gone) ends it, after the
queued spans were sent within CLOSE_WITHIN_S. Tests use the same pieces in the gateway's process.
"""

from __future__ import annotations

import json
import logging
import os
import pickle
import sys
import threading
from typing import Any

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags, TraceState

from gateway.core.logs import configure
from gateway.flow.otlp_json import JsonSpanExporter
from gateway.flow.otlp_proto import ProtobufSpanExporter
from gateway.flow.trace_settings import TraceSettings

_logger = logging.getLogger("recloser.tracing")

CLOSE_WITHIN_S = 3.0      # at shutdown, queued spans get this long to reach the collector
# Batches of this many spans unless OTEL_BSP_MAX_EXPORT_BATCH_SIZE says otherwise.
BATCH_SPANS = 64
SCOPE = InstrumentationScope("recloser")

# A finished span as the gateway hands it over: name, trace id, span id, parent span id (0: none),
# whether the parent is the client's, trace flags, trace state (W3C header, "" for none), kind (the
# SpanKind's value), start and end (ns), attributes, and an error's description (None: no error).
SpanRecord = tuple[str, int, int, int, bool, int, str, int, int, int, dict[str, Any], "str | None"]


def exporter(settings: TraceSettings) -> SpanExporter:
    if settings.protocol == "http/json":
        return JsonSpanExporter(endpoint=settings.endpoint)
    return ProtobufSpanExporter(endpoint=settings.endpoint)


def processor(export: SpanExporter) -> BatchSpanProcessor:
    batch = None if os.environ.get("OTEL_BSP_MAX_EXPORT_BATCH_SIZE") else BATCH_SPANS
    return BatchSpanProcessor(export, max_export_batch_size=batch)


def resource(settings: TraceSettings, pid: int) -> Resource:
    """OTEL_RESOURCE_ATTRIBUTES adds to these; the pid tells the workers of `serve --workers N` apart."""
    return Resource.create({"service.name": settings.service_name, "process.pid": pid})


def readable(record: SpanRecord, where: Resource) -> ReadableSpan:
    name, trace_id, span_id, parent_id, remote, flags, state, kind, start, end, attributes, error = record
    trace_flags, trace_state = TraceFlags(flags), TraceState.from_header([state]) if state else None
    parent = SpanContext(trace_id, parent_id, is_remote=remote, trace_flags=trace_flags, trace_state=trace_state) \
        if parent_id else None
    return ReadableSpan(name, SpanContext(trace_id, span_id, is_remote=False, trace_flags=trace_flags,
                                          trace_state=trace_state),
                        parent, where, attributes, kind=SpanKind(kind),
                        status=Status(StatusCode.ERROR, error) if error is not None else Status(StatusCode.UNSET),
                        start_time=start, end_time=end, instrumentation_scope=SCOPE)


def shut(batch: BatchSpanProcessor, export: SpanExporter) -> None:
    """Sends what is queued within CLOSE_WITHIN_S; past it, the exporter's retries end and the rest is lost."""
    closing = threading.Thread(target=batch.shutdown, daemon=True)
    closing.start()
    closing.join(CLOSE_WITHIN_S)
    if closing.is_alive():
        _logger.warning("traces: the collector did not take the last spans within %.0f s; they are lost",
                        CLOSE_WITHIN_S)
        export.shutdown()
        closing.join(CLOSE_WITHIN_S)


def main(argv: list[str]) -> int:
    # The gateway's log level and format (the exporter's own warnings: a collector that refuses …).
    configure(os.environ.get("RECLOSER_LOG_LEVEL", "warning"), os.environ.get("RECLOSER_LOG_FORMAT", "text"))
    settings = TraceSettings(**json.loads(argv[0]))
    where = resource(settings, int(argv[1]))
    export = exporter(settings)
    batch = processor(export)
    stdin = sys.stdin.buffer
    try:
        while True:
            head = stdin.read(4)
            if len(head) < 4:
                break
            size = int.from_bytes(head, "big")
            data = stdin.read(size)
            if len(data) < size:
                break
            for record in pickle.loads(data):   # the gateway's own bytes, on a pipe only it holds
                batch.on_end(readable(record, where))
    except KeyboardInterrupt:   # the terminal's ^C reaches the whole group: still send what is queued
        pass
    shut(batch, export)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
