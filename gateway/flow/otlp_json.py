"""OTLP/HTTP with JSON bodies (`http/json`): the SDK's own OTLP exporter, sending the SDK's own
encoding of the spans as OTLP JSON instead of protobuf bytes.

The Python exporter speaks only protobuf over HTTP. OTLP JSON is the protobuf JSON mapping with
two changes (opentelemetry-proto's specification): trace and span ids are hex, not base64, and
enums are numbers. Imported only with traces on, and `http/json` asked for.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Sequence
from typing import Any

import orjson
from google.protobuf.json_format import MessageToDict
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExportResult

_logger = logging.getLogger("recloser.tracing")
_IDS = frozenset({"traceId", "spanId", "parentSpanId"})


def otlp_json(request: ExportTraceServiceRequest) -> bytes:
    """An export request as the OTLP JSON body a collector's /v1/traces takes."""
    return orjson.dumps(_hex_ids(MessageToDict(request, use_integers_for_enums=True)))


def _hex_ids(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: base64.b64decode(v).hex() if k in _IDS and isinstance(v, str) else _hex_ids(v)
                for k, v in node.items()}
    if isinstance(node, list):
        return [_hex_ids(v) for v in node]
    return node


class JsonSpanExporter(OTLPSpanExporter):
    """OTLPSpanExporter's endpoint, headers, timeouts, retries and TLS, with JSON bodies."""

    def __init__(self, endpoint: str) -> None:
        super().__init__(endpoint=endpoint, headers={"Content-Type": "application/json"})

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        if self._shutdown:
            return SpanExportResult.FAILURE
        try:
            body = otlp_json(encode_spans(spans))
        except Exception as error:   # a span the encoder cannot take is dropped, never raised into the SDK
            _logger.error("traces: could not encode a batch of %d spans as OTLP JSON: %s", len(spans), error)
            return SpanExportResult.FAILURE
        result = self._client.export(body)   # the exporter's own HTTP client: retries, backoff, shutdown
        return SpanExportResult.SUCCESS if result.success else SpanExportResult.FAILURE
