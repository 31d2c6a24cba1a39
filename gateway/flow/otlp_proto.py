"""OTLP protobuf for the export process: the SDK's span encoding, made cheaper where its time went.

The SDK's encoder (`encode_spans`) builds a new KeyValue and AnyValue message for every attribute of
every span, and that is most of the 50-60 µs a span cost to encode: a span carries a dozen
attributes, and most of them repeat from span to span (the operation, the route, the team, the
provider, the model, the outcome, the status code). This encoder makes the same
ExportTraceServiceRequest (opentelemetry-proto's messages, the same fields the SDK sets) but keeps the
attribute messages it made for a repeated key and value and hands those to the next span. A batch
with span events or links, which the gateway's spans never carry, goes to the SDK's encoder whole.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, InstrumentationScope, KeyValue, KeyValueList
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, SpanFlags, Status
from opentelemetry.sdk.resources import Resource as SdkResource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExportResult
from opentelemetry.sdk.util.instrumentation import InstrumentationScope as SdkScope
from opentelemetry.trace import SpanKind, StatusCode

_logger = logging.getLogger("recloser.tracing")

# Values that differ on every span are not worth keeping: costs and durations (floats), request ids.
_KEPT_TYPES = (str, bool, int)
_NOT_KEPT = frozenset({"recloser.request_id"})
MOST_KEPT = 4096          # attribute messages kept; past it the store starts over (token counts vary)
_HAS_IS_REMOTE = SpanFlags.SPAN_FLAGS_CONTEXT_HAS_IS_REMOTE_MASK
_IS_REMOTE = SpanFlags.SPAN_FLAGS_CONTEXT_IS_REMOTE_MASK
# Unset fields and empty ones are the same bytes in proto3: "" and 0 stand for the SDK's None.
_KINDS = {kind: Span.SpanKind.Value(f"SPAN_KIND_{kind.name}") for kind in SpanKind}
_CODES = {code: Status.StatusCode.Value(f"STATUS_CODE_{code.name}") for code in StatusCode}


def any_value(value: Any) -> AnyValue:
    """An attribute's value as the SDK encodes it."""
    if isinstance(value, bool):
        return AnyValue(bool_value=value)
    if isinstance(value, str):
        return AnyValue(string_value=value)
    if isinstance(value, int):
        return AnyValue(int_value=value)
    if isinstance(value, float):
        return AnyValue(double_value=value)
    if isinstance(value, bytes):
        return AnyValue(bytes_value=value)
    if value is None:
        return AnyValue()
    if isinstance(value, Sequence):
        return AnyValue(array_value=ArrayValue(values=[any_value(v) for v in value]))
    if isinstance(value, Mapping):
        return AnyValue(kvlist_value=KeyValueList(values=[KeyValue(key=str(k), value=any_value(v))
                                                          for k, v in value.items()]))
    raise TypeError(f"an attribute value of type {type(value).__name__} cannot be encoded")


class SpanEncoder:
    """ReadableSpans to an ExportTraceServiceRequest, keeping repeated attributes' encodings."""

    def __init__(self) -> None:
        # An attribute as the bytes of a Span holding it alone: a message parsed into (merged with)
        # another appends to its repeated fields, so a span's attributes are the join of these.
        self.kept: dict[tuple[str, type, Any], bytes] = {}

    def attributes(self, attributes: Mapping[str, Any] | None) -> list[KeyValue]:
        return [KeyValue(key=key, value=any_value(value)) for key, value in (attributes or {}).items()]

    def attribute_bytes(self, attributes: Mapping[str, Any] | None) -> bytes:
        if not attributes:
            return b""
        kept, out = self.kept, []
        for key, value in attributes.items():
            if type(value) in _KEPT_TYPES and key not in _NOT_KEPT:
                found = kept.get((key, type(value), value))
                if found is None:
                    if len(kept) >= MOST_KEPT:
                        kept.clear()
                    found = kept[(key, type(value), value)] = _alone(key, value)
                out.append(found)
            else:
                out.append(_alone(key, value))
        return b"".join(out)

    def span(self, span: ReadableSpan) -> Span:
        context, parent = span.context, span.parent
        assert context is not None
        state = context.trace_state
        encoded = Span(
            trace_id=context.trace_id.to_bytes(16, "big"), span_id=context.span_id.to_bytes(8, "big"),
            trace_state=",".join(f"{k}={v}" for k, v in state.items()) if state is not None else "",
            parent_span_id=parent.span_id.to_bytes(8, "big") if parent else b"",
            name=span.name, kind=_KINDS[span.kind],
            start_time_unix_nano=span.start_time or 0, end_time_unix_nano=span.end_time or 0,
            status=Status(code=_CODES[span.status.status_code], message=span.status.description or ""),
            dropped_attributes_count=span.dropped_attributes,
            flags=_HAS_IS_REMOTE | _IS_REMOTE if parent is not None and parent.is_remote else _HAS_IS_REMOTE)
        encoded.MergeFromString(self.attribute_bytes(span.attributes))
        return encoded

    def encode(self, spans: Sequence[ReadableSpan]) -> ExportTraceServiceRequest:
        if any(s.events or s.links for s in spans):
            return encode_spans(spans)
        # Grouped by the resource and scope objects themselves: a Resource's hash is a JSON dump of it.
        grouped: dict[int, tuple[SdkResource, dict[int, tuple[SdkScope | None, list[Span]]]]] = {}
        for s in spans:
            scopes = grouped.setdefault(id(s.resource), (s.resource, {}))[1]
            scopes.setdefault(id(s.instrumentation_scope), (s.instrumentation_scope, []))[1].append(self.span(s))
        return ExportTraceServiceRequest(resource_spans=[
            ResourceSpans(resource=Resource(attributes=self.attributes(resource.attributes)),
                          schema_url=resource.schema_url,
                          scope_spans=[ScopeSpans(scope=InstrumentationScope(name=scope.name, version=scope.version or "",
                                                                             attributes=self.attributes(scope.attributes))
                                                  if scope is not None else InstrumentationScope(),
                                                  spans=encoded, schema_url=scope.schema_url or "" if scope else "")
                                       for scope, encoded in scopes.values()])
            for resource, scopes in grouped.values()])


def _alone(key: str, value: Any) -> bytes:
    return Span(attributes=[KeyValue(key=key, value=any_value(value))]).SerializeToString()


class ProtobufSpanExporter(OTLPSpanExporter):
    """OTLPSpanExporter's endpoint, headers, timeouts, retries and TLS, with SpanEncoder's encoding."""

    def __init__(self, endpoint: str) -> None:
        super().__init__(endpoint=endpoint)
        self.encoder = SpanEncoder()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        if self._shutdown:
            return SpanExportResult.FAILURE
        try:
            body = self.encoder.encode(spans).SerializePartialToString()
        except Exception as error:   # a span the encoder cannot take is dropped, never raised into the SDK
            _logger.error(
                "traces: could not encode a batch of %d spans as OTLP protobuf: %s", len(spans), error)
            return SpanExportResult.FAILURE
        result = self._client.export(body)   # the exporter's own HTTP client: retries, backoff, shutdown
        return SpanExportResult.SUCCESS if result.success else SpanExportResult.FAILURE
