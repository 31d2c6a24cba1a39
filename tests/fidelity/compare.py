"""What a case asserts: the documented answer, in the fields that case is about, and the request sent upstream."""

from __future__ import annotations

import dataclasses
from typing import Any

from gateway.core.content import text_of
from gateway.sim import anthropic_reply
from tests.fidelity.answers import Answer
from tests.fidelity.corpus import Case


def expected(case: Case, sent: dict[str, Any] | None) -> Answer:
    """The case's answer, its prompt usage filled in from what the upstream counted for the request it got."""
    if case.expect.failure is not None or case.expect.failed_mid_stream or sent is None:
        return case.expect
    prompt = anthropic_reply.prompt(sent)
    # input_tokens + cache_creation_input_tokens + cache_read_input_tokens: all of the prompt.
    return dataclasses.replace(case.expect, prompt_tokens=prompt.tokens,
                               cached_tokens=prompt.cached_prefix if case.warm else 0)


def view(a: Answer, like: Answer) -> dict[str, Any]:
    """The fields of `a` that an answer shaped like `like` is judged on."""
    if like.failure is not None:  # failed before any answer began
        out: dict[str, Any] = {"failed before the answer": a.failure is not None and not a.failed_mid_stream}
        if like.status is not None:
            out["status"] = a.status
        if like.retry_after_s is not None:
            out["retry_after_s"] = a.retry_after_s
        return out
    if like.failed_mid_stream:  # never a clean end that looks like a whole answer
        return {"failed mid-stream": a.failed_mid_stream, "content so far": a.content, "finish": a.finish}
    return {"failed": a.failure, "content": a.content, "tool_calls": a.tool_calls, "finish": a.finish,
            "prompt_tokens": a.prompt_tokens, "completion_tokens": a.completion_tokens, "cached_tokens": a.cached_tokens}


def upstream_view(body: dict[str, Any]) -> dict[str, Any]:
    """A Messages request reduced to what a case may pin down, whatever equivalent form a translation chose."""
    system = body.get("system")
    messages = body.get("messages") or []

    def blocks(m: dict[str, Any]) -> list[str]:
        content = m.get("content")
        return ["text"] if isinstance(content, str) else [b.get("type") for b in content or []]

    images = [b["source"] for m in messages if isinstance(m.get("content"), list)
              for b in m["content"] if b.get("type") == "image"]
    return {"system": " ".join(text_of(system).split()) if system else None,
            "roles": [m.get("role") for m in messages], "blocks": [blocks(m) for m in messages], "images": images,
            "tools": [t.get("name") for t in body.get("tools") or []], "tool_choice": body.get("tool_choice"),
            "stop_sequences": body.get("stop_sequences"), "max_tokens": body.get("max_tokens"),
            "temperature": body.get("temperature"), "top_p": body.get("top_p"), "metadata": body.get("metadata")}
