"""Every provider that does not speak the OpenAI wire protocol, through litellm's adapters.

litellm is heavy (seconds and ~165 MB to import), so it is imported only when a policy has such a
provider, off the event loop, with the bundled price map (no network at run time). Its answers are
turned back into exact OpenAI shapes; streams become OpenAI SSE ending in `data: [DONE]`.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator
from types import ModuleType
from typing import Any

import orjson

from gateway.wires.openai_error import error_body
from gateway.providers.base import AttemptError, Call, Failure, Reply, parse_retry_after
from gateway.core.deployment import Deployment

log = logging.getLogger("recloser.litellm")

_DONE = b"data: [DONE]\n\n"
# Request fields that become litellm's own arguments rather than pass-through parameters.
# What a client's body may set in litellm's call: the OpenAI request fields of chat, completions and
# embeddings, and the sampling settings litellm maps for the long tail. Any other key is litellm's own
# configuration (api_base, api_key, extra_headers, aws_*, vertex_*, callbacks, mock_response …): taken
# from a client it could send the gateway's credential to a host of the client's choosing.
CLIENT_FIELDS = frozenset({
    "audio", "best_of", "dimensions", "echo", "encoding_format", "frequency_penalty", "function_call",
    "functions", "logit_bias", "logprobs", "max_completion_tokens", "max_tokens", "metadata", "modalities",
    "moderation", "n", "parallel_tool_calls", "prediction", "presence_penalty", "prompt_cache_key",
    "prompt_cache_options", "prompt_cache_retention", "reasoning_effort", "response_format",
    "safety_identifier", "seed", "service_tier", "stop", "store", "stream_options", "suffix", "temperature",
    "thinking", "tool_choice", "tools", "top_k", "top_logprobs", "top_p", "user", "verbosity",
    "web_search_options",
})


def import_litellm() -> ModuleType:
    """Import litellm for offline use: the bundled price map, no telemetry, no retries of its own."""
    os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
    os.environ.setdefault("LITELLM_LOG", "ERROR")
    import litellm

    litellm.telemetry = False
    litellm.suppress_debug_info = True
    litellm.drop_params = True  # fields a provider cannot take are dropped, as OpenAI clients expect
    litellm.num_retries = 0
    return litellm


class LitellmBridge:
    def __init__(self) -> None:
        self._litellm: ModuleType | None = None
        self._loading: asyncio.Future[ModuleType] | None = None

    async def load(self) -> ModuleType:
        if self._litellm is None:
            if self._loading is None:
                self._loading = asyncio.get_running_loop().run_in_executor(None, import_litellm)
            self._litellm = await self._loading
        return self._litellm

    async def close(self) -> None:
        """Stop litellm's background logging worker, which lives on this event loop."""
        if self._litellm is None:
            return
        from litellm.litellm_core_utils.logging_worker import GLOBAL_LOGGING_WORKER

        await GLOBAL_LOGGING_WORKER.stop()

    async def open(self, deployment: Deployment, call: Call, budget_s: float) -> Reply:
        litellm = await self.load()
        t = deployment.timeouts
        total = min(t.total_s, budget_s)
        kwargs = self._arguments(deployment, call, total)
        try:
            async with asyncio.timeout(min(t.first_token_s, total) if call.stream else total):
                if call.endpoint == "chat":
                    result = await litellm.acompletion(messages=call.body.get("messages"), **kwargs)
                elif call.endpoint == "completions":
                    result = await litellm.atext_completion(prompt=call.body.get("prompt"), **kwargs)
                else:
                    result = await litellm.aembedding(input=call.body.get("input"), **kwargs)
                if not call.stream:
                    return Reply(status=200, body=orjson.dumps(_plain(result)))
                chunks = result.__aiter__()
                first = await chunks.__anext__()
                if _finished_empty(_plain(first)):
                    # What litellm makes of a 200 it could not read as the provider's stream (an HTML
                    # page, plain words): one finished chunk with nothing in it. Not an answer.
                    raise AttemptError(Failure.BROKEN, "the stream finished before any answer")
        except AttemptError:
            raise
        except StopAsyncIteration:
            raise AttemptError(Failure.BROKEN, "the stream ended before its first chunk") from None
        except TimeoutError:
            raise AttemptError(Failure.TIMEOUT, "no first token in time" if call.stream else "no answer in time") from None
        except Exception as exc:  # litellm raises its own hierarchy; map it once, here
            raise _attempt_error(litellm, exc, deployment) from None
        return Reply(status=200, first=_sse(first), rest=_relay(litellm, chunks, t.idle_s, deployment))

    @staticmethod
    def _arguments(d: Deployment, call: Call, timeout_s: float) -> dict[str, Any]:
        kwargs = {k: v for k, v in call.body.items() if k in CLIENT_FIELDS}
        kwargs.update(model=f"{d.kind}/{d.model}", timeout=timeout_s, num_retries=0)
        if call.endpoint != "embeddings":
            kwargs["stream"] = call.stream
        if d.api_key:
            kwargs["api_key"] = d.api_key
        if d.base_url:
            kwargs["api_base"] = d.base_url
        if d.kind == "azure" and d.api_version:
            kwargs["api_version"] = d.api_version
        if call.traceparent and call.endpoint == "chat":   # the attempt's span, as the native wires send it
            kwargs["extra_headers"] = {"traceparent": call.traceparent}
        return kwargs


def _plain(obj: Any) -> Any:
    dump = getattr(obj, "model_dump", None)
    return dump() if dump is not None else obj


def _finished_empty(chunk: Any) -> bool:
    """A chunk whose every choice is already finished, without text or a tool call (nor usage)."""
    choices = chunk.get("choices") if isinstance(chunk, dict) else None
    if not choices or (chunk.get("usage") or {}).get("completion_tokens"):
        return False
    for choice in choices:
        delta = choice.get("delta") or {}
        if not choice.get("finish_reason") or delta.get("content") or delta.get("tool_calls") or choice.get("text"):
            return False
    return True


def _sse(chunk: Any) -> bytes:
    return b"data: " + orjson.dumps(_plain(chunk)) + b"\n\n"


async def _relay(litellm: ModuleType, chunks: AsyncIterator[Any], idle_s: float, d: Deployment) -> AsyncIterator[bytes]:
    while True:
        try:
            async with asyncio.timeout(idle_s):
                chunk = await chunks.__anext__()
        except StopAsyncIteration:
            break
        except TimeoutError:
            raise AttemptError(Failure.IDLE, "the stream stalled") from None
        except Exception as exc:
            raise _attempt_error(litellm, exc, d, mid_stream=True) from None
        yield _sse(chunk)
    yield _DONE


def _scrub(text: str, d: Deployment) -> str:
    if d.api_key and d.api_key in text:
        text = text.replace(d.api_key, "***")
    return text


def _attempt_error(litellm: ModuleType, exc: Exception, d: Deployment, mid_stream: bool = False) -> AttemptError:
    if isinstance(exc, litellm.Timeout):
        return AttemptError(Failure.IDLE if mid_stream else Failure.TIMEOUT, "timed out")
    status = getattr(exc, "status_code", None)
    if isinstance(exc, litellm.APIConnectionError):
        return AttemptError(Failure.BROKEN if mid_stream else Failure.CONNECT, "connection failed")
    if not isinstance(status, int):
        # Not the upstream's doing: litellm itself failed. Say so, and keep the details in the log.
        log.error("litellm failed on %s/%s: %s", d.provider, d.model, type(exc).__name__, exc_info=exc)
        return AttemptError(Failure.BROKEN, f"the provider adapter failed ({type(exc).__name__})")
    # litellm's `response` is one it made up, without the upstream's headers; it keeps those apart.
    headers: Any = getattr(exc, "litellm_response_headers", None) or getattr(getattr(exc, "response", None), "headers", None)
    retry_after = parse_retry_after(headers.get("retry-after") if hasattr(headers, "get") else None)
    message = _scrub(str(getattr(exc, "message", "") or exc), d)
    if status == 500 and "overloaded" in message.lower():
        # litellm reports Anthropic's 529 as a 500 (keeping `overloaded_error` in the message), and an
        # `overloaded_error` event in a stream as a 500 with only its message, "Overloaded": the
        # breaker must see the overload the provider reported.
        status = 529
    kind = "invalid_request_error" if 400 <= status < 500 else "server_error"
    code = "context_length_exceeded" if isinstance(exc, litellm.ContextWindowExceededError) else None
    return AttemptError(Failure.STATUS, status=status, retry_after_s=retry_after,
                        body=error_body(message, kind, code))
