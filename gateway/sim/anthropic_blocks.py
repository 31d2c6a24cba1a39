"""The content blocks the real Messages API takes, and where: what each block type needs, which role
may hold it, and the image and document sources they read. Pure; `anthropic_checks.py` walks the
messages and asks here about each block. A block type absent from `BLOCKS` is refused.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gateway.sim.checks import PYDANTIC

_IMAGE_TYPES = ("image/jpeg", "image/png", "image/gif", "image/webp")


def cache_control(value: Any, at: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, dict) or value.get("type") != "ephemeral":
        return f"{at}.type: Input should be 'ephemeral'"
    if "ttl" in value and value["ttl"] not in ("5m", "1h"):
        return f"{at}.ttl: Input should be '5m' or '1h'"
    return None


def _text(b: dict[str, Any], at: str) -> str | None:
    return None if isinstance(b.get("text"), str) else f"{at}.text.text: Field required"


def _image(b: dict[str, Any], at: str) -> str | None:
    return _source(b.get("source"), f"{at}.image.source", _IMAGE_SOURCES)


def _document(b: dict[str, Any], at: str) -> str | None:
    return _source(b.get("source"), f"{at}.document.source", _DOCUMENT_SOURCES)


def _tool_use(b: dict[str, Any], at: str) -> str | None:
    if not isinstance(b.get("id"), str) or not isinstance(b.get("name"), str):
        return f"{at}.{b['type']}: id and name are required"
    if not isinstance(b.get("input"), dict):
        return f"{at}.{b['type']}.input: Input should be a valid dictionary"
    return None


def _tool_result(b: dict[str, Any], at: str) -> str | None:
    if not isinstance(b.get("tool_use_id"), str):
        return f"{at}.tool_result.tool_use_id: Field required"
    if "is_error" in b and not isinstance(b["is_error"], bool):
        return f"{at}.tool_result.is_error: Input should be a valid boolean"
    content = b.get("content")
    if content is None or isinstance(content, str):
        return None
    if not isinstance(content, list):
        return f"{at}.tool_result.content: Input should be a valid string or list"
    for k, part in enumerate(content):
        found = block_problem(part, _TOOL_RESULT_PARTS, f"{at}.content.{k}")
        if found:
            return found
    return None


def _thinking(b: dict[str, Any], at: str) -> str | None:
    if not isinstance(b.get("thinking"), str) or not isinstance(b.get("signature"), str):
        return f"{at}.thinking: thinking and signature are required"
    return None


def _redacted(b: dict[str, Any], at: str) -> str | None:
    return None if isinstance(b.get("data"), str) else f"{at}.redacted_thinking.data: Field required"


def _server_result(b: dict[str, Any], at: str) -> str | None:
    return None if isinstance(b.get("tool_use_id"), str) else f"{at}.{b['type']}.tool_use_id: Field required"


def _tool_reference(b: dict[str, Any], at: str) -> str | None:
    return None if isinstance(b.get("tool_name"), str) else f"{at}.tool_reference.tool_name: Field required"


def _anything(b: dict[str, Any], at: str) -> str | None:
    return None


BlockCheck = Callable[[dict[str, Any], str], str | None]
BLOCKS: dict[str, BlockCheck] = {
    "text": _text, "image": _image, "document": _document, "search_result": _anything,
    "container_upload": _anything, "tool_reference": _tool_reference, "browser_state": _anything,
    "tool_use": _tool_use, "tool_result": _tool_result, "thinking": _thinking, "redacted_thinking": _redacted,
    "server_tool_use": _tool_use, "mcp_tool_use": _tool_use, "mcp_tool_result": _server_result,
    "web_search_tool_result": _server_result, "web_fetch_tool_result": _server_result,
    "code_execution_tool_result": _server_result, "bash_code_execution_tool_result": _server_result,
    "text_editor_code_execution_tool_result": _server_result, "tool_search_tool_result": _server_result,
    "advisor_tool_result": _server_result,
    # Betas: context compaction, tools changed mid-conversation, model fallbacks, MCP tool listings.
    "compaction": _anything, "tool_addition": _anything, "tool_removal": _anything, "fallback": _anything,
    "mcp_tool_listing": _anything,
}
# What the model produced stays with the assistant; what the client answers with, with the user.
_MODEL_ONLY = frozenset({"tool_use", "thinking", "redacted_thinking", "server_tool_use", "mcp_tool_use",
                         "mcp_tool_result", "web_search_tool_result", "web_fetch_tool_result",
                         "code_execution_tool_result", "bash_code_execution_tool_result",
                         "text_editor_code_execution_tool_result", "tool_search_tool_result", "advisor_tool_result"})
_CLIENT_ONLY = frozenset({"tool_result", "tool_reference", "browser_state"})
ROLES: dict[str, frozenset[str]] = {
    "user": frozenset(BLOCKS) - _MODEL_ONLY,
    "assistant": frozenset(BLOCKS) - _CLIENT_ONLY,
    "system": frozenset({"text"}),   # a system message may sit anywhere in `messages`; it holds text only
}
_TOOL_RESULT_PARTS = frozenset({"text", "image", "document", "search_result", "tool_reference", "browser_state"})


def _base64_image(s: dict[str, Any], at: str) -> str | None:
    if s.get("media_type") not in _IMAGE_TYPES:
        return f"{at}.base64.media_type: Input should be one of {list(_IMAGE_TYPES)}"
    return None if isinstance(s.get("data"), str) and s["data"] else f"{at}.base64.data: Field required"


def _url(s: dict[str, Any], at: str) -> str | None:
    url = s.get("url")
    return None if isinstance(url, str) and url.startswith(("http://", "https://")) else f"{at}.url.url: invalid URL"


def _file(s: dict[str, Any], at: str) -> str | None:
    return None if isinstance(s.get("file_id"), str) else f"{at}.file.file_id: Field required"


def _base64_pdf(s: dict[str, Any], at: str) -> str | None:
    return None if isinstance(s.get("data"), str) and s["data"] else f"{at}.base64.data: Field required"


def _plain_text(s: dict[str, Any], at: str) -> str | None:
    return None if isinstance(s.get("data"), str) else f"{at}.text.data: Field required"


_IMAGE_SOURCES: dict[str, BlockCheck] = {"base64": _base64_image, "url": _url, "file": _file}
_DOCUMENT_SOURCES: dict[str, BlockCheck] = {"base64": _base64_pdf, "url": _url, "file": _file, "text": _plain_text,
                                            "content": _anything}


def _source(source: Any, at: str, kinds: dict[str, BlockCheck]) -> str | None:
    if not isinstance(source, dict):
        return f"{at}: Field required"
    kind = source.get("type")
    check = kinds.get(kind) if isinstance(kind, str) else None
    if check is None:
        return PYDANTIC.unsupported(f"{at}.type", kind, kinds)
    return check(source, at)


def block_problem(block: Any, allowed: frozenset[str], at: str) -> str | None:
    if not isinstance(block, dict) or block.get("type") not in allowed:
        kind = block.get("type") if isinstance(block, dict) else None
        return PYDANTIC.unsupported(f"{at}.type", kind, allowed)
    return BLOCKS[block["type"]](block, at) or cache_control(block.get("cache_control"), f"{at}.cache_control")
