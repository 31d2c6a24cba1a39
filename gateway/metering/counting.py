"""Counting tokens when the upstream reported none (a stream cut short, a cancelled hedge leg, a
client that went away).

tiktoken's encodings ship inside litellm, so counting works offline; the encoding is loaded on the
first count, off the event loop, so a gateway that never needs to count never pays for it. Models
that are not OpenAI's are counted with cl100k_base: an estimate, marked `usage_source: counted`.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gateway.core.content import text_of

# Per message, OpenAI's chat format adds a few tokens of its own (role and separators).
TOKENS_PER_MESSAGE = 3
TOKENS_PER_REPLY = 3


def bundled_tiktoken_dir() -> str | None:
    spec = importlib.util.find_spec("litellm")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "litellm_core_utils" / "tokenizers"
    return str(path) if path.is_dir() else None


class TokenCounter:
    def __init__(self) -> None:
        self._encoding: Any = None
        self._loading: asyncio.Future[Any] | None = None

    @staticmethod
    def _load() -> Any:
        cache = bundled_tiktoken_dir()
        if cache and "TIKTOKEN_CACHE_DIR" not in os.environ:
            os.environ["TIKTOKEN_CACHE_DIR"] = cache
        import tiktoken

        return tiktoken.get_encoding("cl100k_base")

    async def encoding(self) -> Any:
        if self._encoding is None:
            if self._loading is None:
                self._loading = asyncio.get_running_loop().run_in_executor(None, self._load)
            self._encoding = await self._loading
        return self._encoding

    async def count_text(self, text: str) -> int:
        if not text:
            return 0
        enc = await self.encoding()
        return len(enc.encode(text, disallowed_special=()))

    async def count_prompt(self, body: dict[str, Any]) -> int:
        """The prompt of a chat, completion or embeddings request, as tokens."""
        enc = await self.encoding()

        def n(text: str) -> int:
            return len(enc.encode(text, disallowed_special=())) if text else 0

        # A Messages `system` or a Responses `instructions` is one more message.
        preamble = body.get("system") or body.get("instructions")
        extra = TOKENS_PER_MESSAGE + n(text_of(preamble)) if preamble else 0
        messages = body.get("messages")
        if isinstance(messages, list):
            total = TOKENS_PER_REPLY + extra
            for m in messages:
                if isinstance(m, dict):
                    total += TOKENS_PER_MESSAGE + n(text_of(m.get("content")))
            return total
        value = body.get("prompt", body.get("input"))
        if isinstance(value, str):
            return n(value) + extra
        if isinstance(value, Sequence):
            return extra + sum(n(v) if isinstance(v, str) else len(v) if isinstance(v, list)
                               else TOKENS_PER_MESSAGE + n(_item_text(v)) if isinstance(v, dict) else 1 for v in value)
        return 0


def _item_text(item: dict[str, Any]) -> str:
    """The text of a Responses input item: a message's content, a tool call's arguments or output."""
    text = text_of(item.get("content"))
    for key in ("arguments", "output"):
        if isinstance(item.get(key), str):
            text += item[key]
    return text
