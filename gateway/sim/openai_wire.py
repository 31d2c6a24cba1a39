"""The OpenAI wire protocol, as the official SDK expects it: chat, completions, embeddings, models."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web

from gateway.sim import answers, chat_checks, replies, responses_checks, responses_wire
from gateway.sim.agent import chat_situation, decide
from gateway.sim.behaviour import (SIM, SimState, StreamEnded, StreamWriter, ends_with_prefill, json_response,
                                   read_request, scripted_failure, sse_response)
from gateway.sim.credentials import OPENAI_NO_KEY, openai_fault_message, presented
from gateway.sim.gpu import refusal_status
from gateway.sim.gpu_engine import Run
from gateway.sim.malformed import malformed_answer

_ERROR_TYPES = {400: ("invalid_request_error", "context_length_exceeded"), 401: ("invalid_request_error", "invalid_api_key"),
                403: ("invalid_request_error", "permission_denied"), 404: ("invalid_request_error", "model_not_found"),
                422: ("invalid_request_error", None), 429: ("rate_limit_error", "rate_limit_exceeded")}


# How an OpenAI-wire server reports a failure after a 200 stream began: an error object as the data.
STREAM_ERROR = (b'data: {"error": {"message": "The server had an error while processing your request.", '
                b'"type": "server_error", "param": null, "code": null}}\n\n')


def error(status: int, headers: dict[str, str] | None = None, message: str | None = None,
          code: str | None = None, param: str | None = None) -> web.Response:
    kind, default_code = _ERROR_TYPES.get(status, ("server_error" if status >= 500 else "invalid_request_error", None))
    if code == "insufficient_quota":   # a key out of quota: OpenAI names the type after it too
        kind = "insufficient_quota"
    body = {"error": {"message": message or f"simulated error {status}", "type": kind, "param": param,
                      "code": code if code is not None else default_code}}
    return json_response(body, status, headers)


def _authorised(request: web.Request, state: SimState) -> bool:
    key = state.config.api_key
    if key is None:
        return True
    if state.config.wire == "azure":
        return request.headers.get("api-key") == key
    return request.headers.get("Authorization") == f"Bearer {key}"


async def _prologue(request: web.Request, state: SimState, required: str,
                    checks: Callable[[Any, bool], str | None] | None = None) -> tuple[dict[str, Any] | None, web.StreamResponse | None]:
    body, _ = await read_request(request, state)
    if state.config.client_credentials and presented(request) is None:
        return None, error(401, message=OPENAI_NO_KEY)
    if not _authorised(request, state):
        return None, error(401, message="Incorrect API key provided.")
    if state.config.wire == "azure" and not request.query.get("api-version"):
        return None, error(404, message="Resource not found: an Azure OpenAI path needs ?api-version=.")
    if not isinstance(body, dict):
        return None, error(400, message="The body is not a JSON object.", code="invalid_json")
    for name in ("model", required):
        if name not in body:
            return None, error(400, message=f"Missing required parameter: '{name}'.", code="missing_required_parameter",
                               param=name)
    # The sim stands for every OpenAI-wire server, most of which take fields they do not know:
    # it refuses wrong shapes and types, not unknown names (chat_checks.problem(body) alone does).
    found = checks(body, True) if checks is not None else None
    if found is not None:
        return None, error(400, message=found, code="invalid_request")
    if required == "messages" and not state.config.prefill and ends_with_prefill(body):
        return None, error(400, message="This model does not support assistant message prefill. "
                                        "The conversation must end with a user message.", code="invalid_request")
    # Some providers quote the key they were sent in an error: a gateway must not pass that on.
    quoted = f"Key used: {request.headers.get('Authorization', '')}" if state.fault.echo_key else None
    failed = await scripted_failure(
        state, lambda status, headers: error(status, headers, message=quoted or openai_fault_message(
            request, status, state.fault.error_code) if state.config.client_credentials else quoted,
            code=state.fault.error_code), presented(request))
    if failed is not None:
        return None, failed
    if state.first_delay():
        await asyncio.sleep(state.first_delay())
    if state.fault.malformed is not None:
        return None, await malformed_answer(request, state, body.get("stream") is True)
    return body, None


def _usage(prompt: int, completion: int, cached: int = 0) -> dict[str, Any]:
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion,
            "prompt_tokens_details": {"cached_tokens": cached}, "completion_tokens_details": {"reasoning_tokens": 0}}


async def chat(request: web.Request) -> web.StreamResponse:
    state = request.app[SIM]
    body, failure = await _prologue(request, state, "messages", chat_checks.problem)
    if failure is not None:
        return failure
    assert body is not None
    n = state.next_id()
    model, created = body["model"], int(time.time())
    limit = body.get("max_completion_tokens") or body.get("max_tokens")
    words, finish = answers.reply_words(state.first_word, state.config.reply_tokens, limit, body.get("messages"),
                                        state.dumb, state.broken)
    prompt = replies.prompt_tokens(body.get("messages") or [])
    tool = _tool_call(body, state)
    if state.config.agent:
        decided = decide(chat_situation(body), state.first_word)
        if decided.call is not None:
            tool = (decided.call.name, orjson.dumps(decided.call.arguments).decode())
        elif decided.text is not None:
            words, finish = decided.text.split(" "), "stop"
    base = {"id": f"chatcmpl-sim-{n}", "created": created, "model": model, "system_fingerprint": "fp_sim"}
    gpu = state.gpu
    if gpu is None:
        return await _chat_answer(request, state, body, _Reply(words, finish, tool, n, base, prompt))
    tools = body.get("tools") if isinstance(body.get("tools"), list) else None
    async with gpu.admitted(body.get("messages") or [], 10 if tool is not None else len(words), tools) as run:
        if run is None:
            waiting = gpu.load().waiting
            return error(refusal_status(gpu.model.cfg), {"Retry-After": "1"},
                         message=f"The server is overloaded: {waiting} requests are waiting. Retry later.",
                         code="overloaded")
        await run.prefill()
        return await _chat_answer(request, state, body, _Reply(words, finish, tool, n, base, prompt, run))


@dataclass(frozen=True)
class _Reply:
    words: list[str]
    finish: str
    tool: tuple[str, str] | None
    n: int
    base: dict[str, Any]
    prompt: int
    run: Run | None = None        # the request's place on a simulated GPU, which paces its tokens


async def _chat_answer(request: web.Request, state: SimState, body: dict[str, Any], r: _Reply) -> web.StreamResponse:
    words, finish, tool, n, base, prompt = r.words, r.finish, r.tool, r.n, r.base, r.prompt
    cached = r.run.cached_tokens if r.run is not None else 0
    if not body.get("stream"):
        if tool is not None:
            message = {"role": "assistant", "content": None, "refusal": None, "tool_calls": [{
                "id": f"call_sim_{n}", "type": "function", "function": {"name": tool[0], "arguments": tool[1]}}]}
            finish, completion = "tool_calls", 10
        else:
            message = {"role": "assistant", "content": " ".join(words), "refusal": None}
            completion = len(words)
        if r.run is not None:
            for _ in range(completion - 1):
                await r.run.next_token()
        return json_response({**base, "object": "chat.completion", "choices": [
            {"index": 0, "message": message, "finish_reason": finish, "logprobs": None}],
            "usage": _usage(prompt, completion, cached)})

    include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
    resp = sse_response()
    await resp.prepare(request)
    out = StreamWriter(request, resp, state, STREAM_ERROR)
    if r.run is not None:
        out.pace = r.run.next_token

    def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> bytes:
        data = {**base, "object": "chat.completion.chunk",
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason, "logprobs": None}]}
        if include_usage:
            data["usage"] = None
        return orjson.dumps(data)

    try:
        await _chat_events(out, chunk, tool, words, finish, n, include_usage, base, prompt, cached)
    except StreamEnded:
        return resp
    if not state.fault.no_done:
        await resp.write(b"data: [DONE]\n\n")
    await resp.write_eof()
    return resp


def _tool_call(body: dict[str, Any], state: SimState) -> tuple[str, str] | None:
    """The tool the plain sim calls (never in agent mode, which calls one only when asked): name, arguments."""
    tool = None if state.config.agent or state.broken == "empty" else replies.wants_tool_call(body)
    if tool is None:
        return None
    return str(tool["name"]), answers.tool_arguments_text(replies.tool_arguments(tool),
                                                          state.dumb or state.broken == "bad_tool_args")


async def _chat_events(out: StreamWriter, chunk: Callable[..., bytes], tool: tuple[str, str] | None, words: list[str],
                       finish: str, n: int, include_usage: bool, base: dict[str, Any], prompt: int,
                       cached: int = 0) -> None:
    await out.event(chunk({"role": "assistant", "content": "", "refusal": None}))
    if tool is not None:
        name, args = tool
        await out.event(chunk({"tool_calls": [{"index": 0, "id": f"call_sim_{n}", "type": "function",
                                               "function": {"name": name, "arguments": ""}}]}), content=True)
        await out.event(chunk({"tool_calls": [{"index": 0, "function": {"arguments": args}}]}), content=True)
        finish, completion = "tool_calls", 10
    else:
        for i, word in enumerate(words):
            await out.event(chunk({"content": word if i == 0 else " " + word}), content=True)
        completion = len(words)
    await out.event(chunk({}, finish))
    if include_usage:
        await out.event(orjson.dumps({**base, "object": "chat.completion.chunk", "choices": [],
                                      "usage": _usage(prompt, completion, cached)}))


async def completions(request: web.Request) -> web.StreamResponse:
    state = request.app[SIM]
    body, failure = await _prologue(request, state, "prompt")
    if failure is not None:
        return failure
    assert body is not None
    n = state.next_id()
    words, finish = replies.reply_words(state.first_word, state.config.reply_tokens, body.get("max_tokens"))
    prompt = replies.completion_prompt_tokens(body.get("prompt"))
    base = {"id": f"cmpl-sim-{n}", "object": "text_completion", "created": int(time.time()), "model": body["model"]}
    if not body.get("stream"):
        return json_response({**base, "choices": [{"index": 0, "text": " ".join(words), "logprobs": None,
                                                   "finish_reason": finish}], "usage": _usage(prompt, len(words))})
    include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
    resp = sse_response()
    await resp.prepare(request)
    out = StreamWriter(request, resp, state, STREAM_ERROR)
    for i, word in enumerate(words):
        await out.event(orjson.dumps({**base, "choices": [{"index": 0, "text": word if i == 0 else " " + word,
                                                           "logprobs": None, "finish_reason": None}]}), content=True)
    await out.event(orjson.dumps({**base, "choices": [{"index": 0, "text": "", "logprobs": None,
                                                       "finish_reason": finish}]}))
    if include_usage:
        await out.event(orjson.dumps({**base, "choices": [], "usage": _usage(prompt, len(words))}))
    await resp.write(b"data: [DONE]\n\n")
    await resp.write_eof()
    return resp


async def embeddings(request: web.Request) -> web.StreamResponse:
    state = request.app[SIM]
    body, failure = await _prologue(request, state, "input")
    if failure is not None:
        return failure
    assert body is not None
    texts = replies.embedding_inputs(body.get("input"))
    if not texts:
        return error(400, message="'input' must be a string or an array.", param="input", code="invalid_type")
    dim = body.get("dimensions") or state.config.embedding_dim
    encoding = body.get("encoding_format") or "float"
    data = []
    for i, text in enumerate(texts):
        vector = replies.embedding(text, dim)
        data.append({"object": "embedding", "index": i,
                     "embedding": replies.embedding_b64(vector) if encoding == "base64" else vector})
    tokens = sum(len(t.split()) for t in texts)
    return json_response({"object": "list", "data": data, "model": body["model"],
                          "usage": {"prompt_tokens": tokens, "total_tokens": tokens}})


async def models(request: web.Request) -> web.StreamResponse:
    state = request.app[SIM]
    await read_request(request, state)
    if not _authorised(request, state):
        return error(401, message="Incorrect API key provided.")
    names = list(state.config.models) or state.models_seen or [f"{state.config.name}-model"]
    return json_response({"object": "list", "data": [{"id": m, "object": "model", "created": 0,
                                                       "owned_by": state.config.name} for m in names]})


async def responses(request: web.Request) -> web.StreamResponse:
    async def prologue(request: web.Request, state: SimState,
                       required: str) -> tuple[dict[str, Any] | None, web.StreamResponse | None]:
        return await _prologue(request, state, required, responses_checks.problem)

    return await responses_wire.responses(request, prologue, error)


def add_azure_routes(app: web.Application) -> None:
    """Azure OpenAI's paths: the deployment in the path, the API version in the query."""
    base = "/openai/deployments/{deployment}"
    app.router.add_post(base + "/chat/completions", chat)
    app.router.add_post(base + "/completions", completions)
    app.router.add_post(base + "/embeddings", embeddings)


def add_routes(app: web.Application) -> None:
    app.router.add_post("/v1/chat/completions", chat)
    app.router.add_post("/v1/responses", responses)
    app.router.add_post("/v1/completions", completions)
    app.router.add_post("/v1/embeddings", embeddings)
    app.router.add_get("/v1/models", models)
