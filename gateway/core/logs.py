"""Logging: `--log-level` and `--log-format json|text`, and the one line per request at info level.

The request line is built only when info is enabled for `recloser.access` (a cached level check),
so above info a request pays for no dictionary, no formatting and no write. Its fields come from the
metered record: ids, route, provider, status, latency, attempts and cost; never a key or a prompt.
"""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime
from typing import Any

import orjson

# A leaf module: anything may log through it (the metered request's line is gateway/metering/access_log.py).
ACCESS = logging.getLogger("recloser.access")
FORMATS = ("json", "text")
LEVELS = ("debug", "info", "warning", "error")
HANDLER = "recloser"


class JsonLines(logging.Formatter):
    """One JSON object per line: time, level, logger, message, and a request line's fields."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname.lower(), "logger": record.name, "message": record.getMessage()}
        fields = getattr(record, "fields", None)
        if fields:
            line.update(fields)
        if record.exc_info:
            line["error"] = self.formatException(record.exc_info)
        return orjson.dumps(line, default=str).decode()


class Text(logging.Formatter):
    """The classic line, with a request line's fields as key=value pairs."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        fields = getattr(record, "fields", None)
        if fields:
            text += " " + " ".join(f"{k}={v}" for k, v in fields.items() if v is not None)
        return text


def configure(level: str, fmt: str) -> None:
    """The gateway's handler, on stderr (configuring again replaces it)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonLines() if fmt == "json" else Text())
    handler.set_name(HANDLER)
    root = logging.getLogger()
    for installed in [h for h in root.handlers if h.get_name() == HANDLER]:  # others' handlers stay
        root.removeHandler(installed)
    root.addHandler(handler)
    root.setLevel(level.upper())


def refused_line(request_id: str, endpoint: str, route: str, status: int, team: str, app: str, why: str) -> None:
    """A request answered before any upstream was called (auth, validation, budget, overload)."""
    if not ACCESS.isEnabledFor(logging.INFO):
        return
    ACCESS.info("request", extra={"fields": {
        "request_id": request_id, "endpoint": endpoint, "route": route, "provider": None, "status": status,
        "attempts": 0, "cost_usd": "0", "team": team, "app": app, "outcome": why}})
