"""Server-sent events as translations read and write them: named events with JSON data."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson


def named_event(name: str, data: Any) -> bytes:
    """`event: NAME` + `data: JSON`, the framing of the Responses and Messages streams."""
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


def split_events(buffer: bytes) -> tuple[list[bytes], bytes]:
    """The complete events in `buffer`, and what is left of an incomplete one."""
    buffer = buffer.replace(b"\r\n", b"\n")
    parts = buffer.split(b"\n\n")
    return [p for p in parts[:-1] if p.strip()], parts[-1]


def event_data(event: bytes) -> bytes:
    """The data of one event (its `data:` lines joined), b"" when it has none."""
    lines = [line[5:].lstrip() for line in event.split(b"\n") if line.startswith(b"data:")]
    return b"\n".join(lines)


def json_events(events: list[bytes]) -> Iterator[Any]:
    """The parsed JSON data of each event; `[DONE]`, comments and malformed data are left out."""
    for event in events:
        data = event_data(event)
        if not data or data == b"[DONE]":
            continue
        try:
            yield orjson.loads(data)
        except orjson.JSONDecodeError:
            continue
