"""The OpenAI Responses API (`POST /v1/responses`) as OpenAI serves it: a Response object, or the
`response.*` event sequence with `sequence_number`; `previous_response_id` resolved against the
responses this upstream stored, and encrypted reasoning that only this upstream can read."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from aiohttp import web

from gateway.core.content import text_of
from gateway.sim import answers, replies
from gateway.sim.agent import decide, responses_situation
from gateway.sim.behaviour import SIM, SimState, StreamEnded, StreamWriter, json_response, sse_response


# How the Responses API reports a failure after a 200 stream began: an `error` event.
STREAM_ERROR = (b'event: error\ndata: {"type": "error", "code": "server_error", "message": "The server had an error '
                b'while processing your request.", "param": null, "sequence_number": 0}\n\n')


def _prompt_tokens(body: dict[str, Any]) -> int:
    given = body.get("input")
    total = len(str(body.get("instructions") or "").split())
    if isinstance(given, str):
        return total + len(given.split()) + 1
    for item in given or ():
        if isinstance(item, dict):
            text = text_of(item.get("content")) or str(item.get("output") or item.get("arguments") or "")
            total += len(text.split()) + 1
    return total


def _wants_tool(body: dict[str, Any]) -> dict[str, Any] | None:
    given = body.get("input")
    if isinstance(given, list) and given and isinstance(given[-1], dict) \
            and given[-1].get("type") == "function_call_output":
        return None  # a tool's result came back: now the answer is text
    return replies.wants_tool_call({"tools": body.get("tools"), "tool_choice": body.get("tool_choice")})


def _foreign_reasoning(state: SimState, body: dict[str, Any]) -> str | None:
    """The id of a reasoning item this upstream did not encrypt (OpenAI refuses those)."""
    given = body.get("input")
    for item in given if isinstance(given, list) else ():
        if isinstance(item, dict) and item.get("type") == "reasoning" and item.get("encrypted_content") \
                and not str(item["encrypted_content"]).startswith(f"enc:{state.config.name}:"):
            return str(item.get("id"))
    return None


def _refusal(state: SimState, body: dict[str, Any],
             error: Callable[..., web.Response]) -> web.Response | None:
    given = body.get("input")
    if not isinstance(given, (str, list)):
        return error(400, message="'input' must be a string or an array.", param="input", code="invalid_type")
    previous = body.get("previous_response_id")
    if previous is not None and previous not in state.stored_responses:
        return error(404, message=f"Previous response with id '{previous}' not found.",
                     param="previous_response_id", code="previous_response_not_found")
    foreign = _foreign_reasoning(state, body)
    if foreign is not None:
        return error(400, message=f"The encrypted content for item {foreign} could not be verified.",
                     param="input", code="invalid_encrypted_content")
    return None


async def responses(request: web.Request, prologue: Callable[..., Awaitable[tuple[Any, Any]]],
                    error: Callable[..., web.Response]) -> web.StreamResponse:
    state = request.app[SIM]
    body, failure = await prologue(request, state, "input")
    if isinstance(failure, web.StreamResponse):
        return failure
    refused = _refusal(state, body, error)
    if refused is not None:
        return refused
    n = state.next_id()
    rid = f"resp_sim_{state.config.name}_{n}"
    given = body.get("input")
    messages = [{"role": "user", "content": given}] if isinstance(given, str) else given
    words, finish = answers.reply_words(state.first_word, state.config.reply_tokens, body.get("max_output_tokens"),
                                        messages, state.dumb, state.broken)
    tool = None if state.config.agent or state.broken == "empty" else _wants_tool(body)
    call: dict[str, Any] | None = None
    if tool is not None:
        call = {"name": tool["name"], "arguments": answers.tool_arguments_text(
            replies.tool_arguments(tool), state.dumb or state.broken == "bad_tool_args")}
    if state.config.agent:
        decided = decide(responses_situation(body), state.first_word)
        if decided.call is not None:
            call = {"name": decided.call.name, "arguments": orjson.dumps(decided.call.arguments).decode()}
            if decided.call.namespace is not None:
                call["namespace"] = decided.call.namespace  # a tool nested in a namespace is called with it
        elif decided.text is not None:
            words, finish = decided.text.split(" "), "stop"
    output: list[dict[str, Any]] = []
    if body.get("reasoning") and "reasoning.encrypted_content" in (body.get("include") or ()):
        output.append({"id": f"rs_sim_{n}", "type": "reasoning", "summary": [],
                       "encrypted_content": f"enc:{state.config.name}:{n}"})
    if call is not None:
        output.append({"id": f"fc_sim_{n}", "type": "function_call", "status": "completed",
                       "call_id": f"call_sim_{n}", **call})
        completion = 10
    else:
        output.append({"id": f"msg_sim_{n}", "type": "message", "status": "completed", "role": "assistant",
                       "content": [{"type": "output_text", "text": " ".join(words), "annotations": [], "logprobs": []}]})
        completion = len(words)
    prompt = _prompt_tokens(body)
    incomplete = call is None and finish == "length"
    response = {
        "id": rid, "object": "response", "created_at": int(time.time()),
        "status": "incomplete" if incomplete else "completed", "error": None,
        "incomplete_details": {"reason": "max_output_tokens"} if incomplete else None,
        "instructions": body.get("instructions"), "max_output_tokens": body.get("max_output_tokens"),
        "model": body["model"], "output": output, "parallel_tool_calls": body.get("parallel_tool_calls", True),
        "previous_response_id": body.get("previous_response_id"), "store": body.get("store", True),
        "temperature": body.get("temperature", 1.0), "text": body.get("text") or {"format": {"type": "text"}},
        "tool_choice": body.get("tool_choice", "auto"), "tools": body.get("tools") or [],
        "top_p": body.get("top_p", 1.0), "truncation": "disabled", "metadata": body.get("metadata") or {},
        "usage": {"input_tokens": prompt, "input_tokens_details": {"cached_tokens": 0}, "output_tokens": completion,
                  "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": prompt + completion},
    }
    if body.get("store", True):
        state.stored_responses.add(rid)
    if not body.get("stream"):
        return json_response(response)
    return await _stream(request, state, response, words if call is None else [])


async def _stream(request: web.Request, state: SimState, response: dict[str, Any],
                  words: list[str]) -> web.StreamResponse:
    resp = sse_response()
    await resp.prepare(request)
    out = StreamWriter(request, resp, state, STREAM_ERROR)
    seq = 0

    async def event(data: dict[str, Any], content: bool = False) -> None:
        nonlocal seq
        data["sequence_number"] = seq
        seq += 1
        await out.event(orjson.dumps(data), content=content, name=data["type"])

    try:
        start = {**response, "status": "in_progress", "output": [], "usage": None, "incomplete_details": None}
        await event({"type": "response.created", "response": start})
        await event({"type": "response.in_progress", "response": start})
        for index, item in enumerate(response["output"]):
            if item["type"] == "message":
                await event({"type": "response.output_item.added", "output_index": index,
                             "item": {**item, "status": "in_progress", "content": []}})
                part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
                await event({"type": "response.content_part.added", "item_id": item["id"], "output_index": index,
                             "content_index": 0, "part": part})
                for i, word in enumerate(words):
                    await event({"type": "response.output_text.delta", "item_id": item["id"], "output_index": index,
                                 "content_index": 0, "delta": word if i == 0 else " " + word, "logprobs": []}, True)
                text = item["content"][0]["text"]
                await event({"type": "response.output_text.done", "item_id": item["id"], "output_index": index,
                             "content_index": 0, "text": text, "logprobs": []})
                await event({"type": "response.content_part.done", "item_id": item["id"], "output_index": index,
                             "content_index": 0, "part": item["content"][0]})
            elif item["type"] == "function_call":
                await event({"type": "response.output_item.added", "output_index": index,
                             "item": {**item, "status": "in_progress", "arguments": ""}})
                await event({"type": "response.function_call_arguments.delta", "item_id": item["id"],
                             "output_index": index, "delta": item["arguments"]}, True)
                await event({"type": "response.function_call_arguments.done", "item_id": item["id"],
                             "output_index": index, "arguments": item["arguments"]})
            else:
                await event({"type": "response.output_item.added", "output_index": index, "item": item})
            await event({"type": "response.output_item.done", "output_index": index, "item": item})
        end = "response.completed" if response["status"] == "completed" else "response.incomplete"
        await event({"type": end, "response": response})
    except StreamEnded:
        return resp
    await resp.write_eof()
    return resp
