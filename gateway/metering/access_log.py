"""The one line per request at info level, built from the metered record (see gateway/core/logs.py)."""

from __future__ import annotations

import logging

from gateway.core.logs import ACCESS
from gateway.metering.record import CallRecord


def request_line(record: CallRecord, status: int, endpoint: str) -> None:
    """The request's line at info level; nothing at all is built when info is off."""
    if not ACCESS.isEnabledFor(logging.INFO):
        return
    ACCESS.info("request", extra={"fields": {
        "request_id": record.request_id, "endpoint": endpoint, "route": record.route, "provider": record.provider,
        "model": record.model, "status": status, "latency_ms": round(record.latency_s * 1000, 1),
        "ttft_ms": round(record.ttft_s * 1000, 1) if record.ttft_s is not None else None,
        "attempts": record.attempts, "fallback": record.fallback, "hedged": record.hedged, "stream": record.stream,
        "input_tokens": record.input_tokens, "output_tokens": record.output_tokens,
        "cost_usd": str(record.cost_usd), "usage": record.usage_source, "team": record.team, "app": record.app,
        "key_id": record.key_id, "outcome": record.outcome, "paid_by": record.paid_by}})
