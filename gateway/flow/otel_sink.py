"""Where finished spans go: to the export process (gateway/flow/otel_export.py) in batches over its
stdin, never waiting on it; or, in tests, to an exporter in this process through the same SDK pieces."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import os
import pickle
import subprocess
import sys
from typing import Protocol

from opentelemetry.sdk.trace.export import SpanExporter

from gateway.core.logs import JsonLines
from gateway.flow.otel_export import CLOSE_WITHIN_S, SpanRecord, processor, readable, resource, shut
from gateway.flow.tracing import TraceSettings

_logger = logging.getLogger("recloser.tracing")

BATCH = 64                     # spans per write to the export process …
WAIT_S = 0.2                   # … or whatever waited this long
MOST_BUFFERED = 4 * 1024 * 1024   # bytes the pipe may hold back before batches are dropped


class Sink(Protocol):
    async def start(self) -> None: ...

    def send(self, span: SpanRecord) -> None: ...

    def flush(self) -> None: ...

    async def close(self) -> None: ...


class InProcess:
    """The SDK's batch processor and `export` in this process (tests that read an in-memory exporter)."""

    def __init__(self, settings: TraceSettings, export: SpanExporter) -> None:
        self.export = export
        self.batch = processor(export)
        self.where = resource(settings, 0)

    async def start(self) -> None:
        pass

    def send(self, span: SpanRecord) -> None:
        self.batch.on_end(readable(span, self.where))

    def flush(self) -> None:
        self.batch.force_flush()

    async def close(self) -> None:
        await asyncio.to_thread(shut, self.batch, self.export)


class _Pipe(asyncio.Protocol):
    pass


class ExportProcess:
    """Batches of spans to the export process's stdin through the event loop's non-blocking pipe."""

    def __init__(self, settings: TraceSettings, pid: int) -> None:
        self.settings, self.pid = settings, pid
        self.waiting: list[SpanRecord] = []
        self.timer: asyncio.TimerHandle | None = None
        self.dropped = 0
        self.child: subprocess.Popen[bytes] | None = None
        self.pipe: asyncio.WriteTransport | None = None

    async def start(self) -> None:
        root = logging.getLogger()
        json_lines = any(isinstance(h.formatter, JsonLines) for h in root.handlers)
        env = {**os.environ, "RECLOSER_LOG_LEVEL": logging.getLevelName(root.getEffectiveLevel()).lower(),
               "RECLOSER_LOG_FORMAT": "json" if json_lines else "text"}
        self.child = subprocess.Popen(
            [sys.executable, "-m", "gateway.flow.otel_export", json.dumps(dataclasses.asdict(self.settings)),
             str(self.pid)], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, start_new_session=True, env=env)
        assert self.child.stdin is not None
        self.pipe, _ = await asyncio.get_running_loop().connect_write_pipe(_Pipe, self.child.stdin)

    def send(self, span: SpanRecord) -> None:
        self.waiting.append(span)
        if len(self.waiting) >= BATCH:
            self.flush()
        elif self.timer is None:
            self.timer = asyncio.get_running_loop().call_later(WAIT_S, self.flush)

    def flush(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        spans, self.waiting = self.waiting, []
        if not spans:
            return
        pipe = self.pipe
        if pipe is None or pipe.is_closing() or pipe.get_write_buffer_size() > MOST_BUFFERED:
            if not self.dropped:
                _logger.warning("traces: the export process is not keeping up (or is gone); spans are dropped")
            self.dropped += len(spans)
            return
        data = pickle.dumps(spans, protocol=pickle.HIGHEST_PROTOCOL)
        pipe.write(len(data).to_bytes(4, "big") + data)

    async def close(self) -> None:
        """Sends what waits, closes the pipe (the export process then sends its queue within its bound)
        and waits for it to end; one that does not is killed."""
        self.flush()
        if self.pipe is not None:
            self.pipe.close()
        child = self.child
        if child is None:
            return
        try:
            await asyncio.to_thread(child.wait, 2 * CLOSE_WITHIN_S + 2)
        except subprocess.TimeoutExpired:
            child.kill()
            await asyncio.to_thread(child.wait)
