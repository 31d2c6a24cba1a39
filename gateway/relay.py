"""Delivering an answer: a whole body, or a stream relayed event by event, and what happens when a
stream's upstream fails after bytes already reached the client (the route's `mid_stream`)."""

from __future__ import annotations

from collections.abc import Sequence

from aiohttp import web

from gateway.api.answer import open_stream, stream_error_event, whole
from gateway.api.errors import ApiError
from gateway.attempts import Attempts, RequestLog
from gateway.metrics import Metrics
from gateway.providers.base import AttemptError, Call, Reply
from gateway.providers.sse import chat_so_far
from gateway.routing.retry_budget import RetryBudget
from gateway.routing.table import Deployment


def answer_headers(log: RequestLog, d: Deployment) -> dict[str, str]:
    return {"x-request-id": log.call.request_id, "x-switchyard-provider": d.provider,
            "x-switchyard-model": d.model, "x-switchyard-attempts": str(len(log.attempts))}


def broken_stream(d: Deployment, err: AttemptError) -> ApiError:
    return ApiError(502, f"The upstream {d.provider}/{d.model} failed mid-stream ({err.describe()}); "
                         "the answer is incomplete.", "server_error", code="stream_interrupted")


def continuation(call: Call, so_far: str) -> Call:
    """The same chat with the partial answer as an assistant prefix, for the next deployment."""
    body = dict(call.body)
    body["messages"] = [*call.body["messages"], {"role": "assistant", "content": so_far}]
    return Call(call.endpoint, body, True, call.request_id)


class Relay:
    def __init__(self, attempts: Attempts, metrics: Metrics) -> None:
        self.attempts = attempts
        self.metrics = metrics

    async def deliver(self, request: web.Request, log: RequestLog, d: Deployment, reply: Reply,
                      fallbacks: Sequence[Deployment], budget: RetryBudget) -> web.StreamResponse:
        if reply.rest is None:
            return whole(reply.body, answer_headers(log, d))
        resp = await open_stream(request, answer_headers(log, d))
        try:
            await self._stream(resp, log, d, reply, list(fallbacks), budget)
            await resp.write_eof()
        except (ConnectionResetError, ConnectionError):
            pass  # the client went away; the upstream connection is released below
        return resp

    async def _stream(self, resp: web.StreamResponse, log: RequestLog, d: Deployment, reply: Reply,
                      fallbacks: list[Deployment], budget: RetryBudget) -> None:
        route = log.route
        record = log.attempts[-1] if log.attempts else None
        ttft = record.ttft_s if record else None
        try:
            log.relayed.append(reply.first)
            await resp.write(reply.first)
            while True:
                try:
                    assert reply.rest is not None
                    async for chunk in reply.rest:
                        log.relayed.append(chunk)
                        await resp.write(chunk)
                except AttemptError as err:
                    self.attempts.report(route, d, False, True, err=err)
                    if record is not None:
                        record.outcome, record.error = self.attempts.classify(route, err).reason, err
                    await reply.release()
                    resumed = await self._resume(log, fallbacks, budget) if route.config.mid_stream == "resume" \
                        else None
                    action = "resumed" if resumed else "error_event"
                    self.metrics.mid_stream(route.name, d.provider, action).inc()
                    if resumed is None:
                        await resp.write(stream_error_event(broken_stream(d, err)))
                        return
                    d, reply = resumed
                    record, ttft = log.attempts[-1], log.attempts[-1].ttft_s
                    log.relayed.append(reply.first)
                    await resp.write(reply.first)
                    continue
                self.attempts.report(route, d, True, True, ttft)
                return
        finally:
            await reply.release()

    async def _resume(self, log: RequestLog, fallbacks: list[Deployment],
                      budget: RetryBudget) -> tuple[Deployment, Reply] | None:
        """Continue on the next deployment with what the client already has as an assistant prefix."""
        if log.call.endpoint != "chat":
            return None
        so_far, had_tools = chat_so_far(log.relayed)
        if had_tools:
            return None  # half a tool call cannot be continued by another model
        call = continuation(log.call, so_far)
        while fallbacks:
            d = fallbacks.pop(0)
            try:
                return d, await self.attempts.with_retries(log, d, call, budget, role="resume")
            except AttemptError:
                continue
        return None
