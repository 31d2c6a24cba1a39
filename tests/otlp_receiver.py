"""A real OTLP/HTTP trace receiver on loopback for tests: aiohttp on its own thread, decoding each
`POST /v1/traces` into opentelemetry-proto's `ExportTraceServiceRequest` (protobuf bodies, or OTLP
JSON bodies with their hex ids), and keeping the spans it got."""

from __future__ import annotations

import asyncio
import base64
import threading
from collections.abc import Iterator
from typing import Any

import orjson
from aiohttp import web
from google.protobuf.json_format import ParseDict
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (ExportTraceServiceRequest,
                                                                      ExportTraceServiceResponse)
from opentelemetry.proto.trace.v1.trace_pb2 import Span

_IDS = frozenset({"traceId", "spanId", "parentSpanId"})


def _base64_ids(node: Any) -> Any:
    """OTLP JSON writes ids in hex; the protobuf JSON mapping reads bytes as base64."""
    if isinstance(node, dict):
        return {k: base64.b64encode(bytes.fromhex(v)).decode() if k in _IDS and isinstance(v, str) else _base64_ids(v)
                for k, v in node.items()}
    if isinstance(node, list):
        return [_base64_ids(v) for v in node]
    return node


class OtlpReceiver:
    def __init__(self) -> None:
        self.requests: list[ExportTraceServiceRequest] = []
        self.content_types: list[str] = []
        self._changed = threading.Condition()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1/traces"

    def start(self) -> OtlpReceiver:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_post("/v1/traces", self._traces)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert isinstance(server, asyncio.Server)
        self.port = server.sockets[0].getsockname()[1]

    async def _traces(self, request: web.Request) -> web.Response:
        body = await request.read()
        content_type = request.headers.get("Content-Type", "")
        export = ExportTraceServiceRequest()
        if content_type == "application/json":
            ParseDict(_base64_ids(orjson.loads(body)), export)
        elif content_type == "application/x-protobuf":
            export.ParseFromString(body)
        else:
            return web.Response(status=415)
        with self._changed:
            self.requests.append(export)
            self.content_types.append(content_type)
            self._changed.notify_all()
        return web.Response(body=ExportTraceServiceResponse().SerializeToString(),
                            content_type="application/x-protobuf")

    def spans(self) -> Iterator[tuple[dict[str, Any], Span]]:
        """Every span received, with its resource's attributes."""
        with self._changed:
            requests = list(self.requests)
        for export in requests:
            for resource_spans in export.resource_spans:
                resource = attributes(resource_spans.resource.attributes)
                for scope_spans in resource_spans.scope_spans:
                    for span in scope_spans.spans:
                        yield resource, span

    def wait_for_spans(self, count: int, timeout: float = 20.0) -> list[tuple[dict[str, Any], Span]]:
        """Waits (on the receiver's notice, not a sleep) until `count` spans arrived, a request's span
        among them: it leaves after its attempts' spans, so by then they all arrived too."""
        def arrived() -> bool:
            spans = list(self._count())
            return len(spans) >= count and any(s.kind == Span.SPAN_KIND_SERVER for s in spans)

        with self._changed:
            self._changed.wait_for(arrived, timeout)
        return list(self.spans())

    def _count(self) -> Iterator[Span]:
        for export in self.requests:
            for resource_spans in export.resource_spans:
                for scope_spans in resource_spans.scope_spans:
                    yield from scope_spans.spans

    def stop(self) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()


def attributes(kvs: Any) -> dict[str, Any]:
    """OTLP key-values as a plain dict."""
    out: dict[str, Any] = {}
    for kv in kvs:
        value = kv.value
        kind = value.WhichOneof("value")
        if kind == "array_value":
            out[kv.key] = [getattr(v, v.WhichOneof("value")) for v in value.array_value.values]
        else:
            out[kv.key] = getattr(value, kind) if kind else None
    return out
