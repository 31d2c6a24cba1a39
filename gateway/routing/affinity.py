"""The affinity key of a request: what it shares with others whose prompts begin the same way. Pure.

In order: the client's own `prompt_cache_key`; a session header (`x-session-id`, `session_id`,
`session-id`); the body's `user`; else the prompt's prefix: the system prompt (leading system or
developer turns, `instructions`, Messages' `system`) and the first turn after it. The turns of one
conversation then share a key, and so do the conversations that open with the same system prompt and
question; conversations that differ in their first turn spread over the pool.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping
from typing import Any

import orjson

SESSION_HEADERS = frozenset({"x-session-id", "session_id", "session-id"})
PREFIX_CHARS = 1024     # of a bare prompt string: enough to tell system prompts apart


def _crc(value: Any, crc: int) -> int:
    if isinstance(value, str):
        return zlib.crc32(value.encode("utf-8", "surrogatepass"), crc)
    return zlib.crc32(orjson.dumps(value), crc)


def _prefix(turns: list[Any], crc: int) -> int:
    """The leading system turns and the first turn after them."""
    for turn in turns:
        if not isinstance(turn, Mapping):
            return _crc(turn, crc)
        crc = _crc(turn.get("content", turn.get("type", "")), zlib.crc32(str(turn.get("role", "")).encode(), crc))
        if turn.get("role") not in ("system", "developer"):
            break
    return crc


def affinity_key(body: Mapping[str, Any], headers: Mapping[str, str]) -> int | None:
    """A 32-bit key, or None when the request has nothing to share (no prompt at all)."""
    cache_key = body.get("prompt_cache_key")
    if isinstance(cache_key, str) and cache_key:
        return zlib.crc32(b"k" + cache_key.encode())
    for name, value in headers.items():
        if name.lower() in SESSION_HEADERS and value:
            return zlib.crc32(b"s" + value.encode())
    user = body.get("user")
    if isinstance(user, str) and user:
        return zlib.crc32(b"u" + user.encode())
    crc = 0
    for field in ("instructions", "system"):
        if body.get(field):
            crc = _crc(body[field], crc)
    turns = body.get("messages")
    if turns is None:
        turns = body.get("input")
        if isinstance(turns, str):
            return _crc(turns[:PREFIX_CHARS], crc)
    if isinstance(turns, list) and turns:
        return _prefix(turns, crc)
    prompt = body.get("prompt")
    if isinstance(prompt, str):
        return _crc(prompt[:PREFIX_CHARS], crc)
    return crc or None
