"""The OpenAI error shape, `{"error": {"message", "type", "param", "code"}}`: what every wire's
failures become before a client sees them."""

from __future__ import annotations

import orjson


def error_body(message: str, type_: str, code: str | None = None, param: str | None = None) -> bytes:
    return orjson.dumps({"error": {"message": message, "type": type_, "param": param, "code": code}})
