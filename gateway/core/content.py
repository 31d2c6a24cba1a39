"""Reading message content in its OpenAI forms: a string, or a list of typed parts."""

from __future__ import annotations

from typing import Any


def text_of(content: Any) -> str:
    """A message's text, whether a string or a list of content parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return ""
