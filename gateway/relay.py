"""Delivering an answer: a whole body, or a stream relayed event by event, and what happens when a
stream's upstream fails after bytes already reached the client (the route's `mid_stream`)."""

from __future__ import annotations

from collections.abc import Sequence

from aiohttp import web

from gateway.answer import open_stream, stream_error_event, whole
from gateway.errors import ApiError
from gateway.attempts import Attempts
from gateway.request_log import AttemptRecord, RequestLog
from gateway.metering.usage import strip_usage_chunk
from gateway.metrics import Metrics
from gateway.providers.base import AttemptError, Call, Reply
from gateway.providers.sse import chat_so_far
from gateway.routing.retry_budget import RetryBudget
from gateway.deployment import Deployment


DEGRADED_HEADER = "x-recloser-degraded"


def answer_headers(log: RequestLog, d: Deployment) -> dict[str, str]:
    headers = {"x-request-id": log.call.request_id, "x-recloser-provider": d.provider,
               "x-recloser-model": d.model, "x-recloser-attempts": str(len(log.attempts)), **log.extra_headers}
    tier = log.route.degraded_tier(d)
    if tier is not None:   # served below the route's intended quality: the client may want to know
        headers[DEGRADED_HEADER] = f"tier={tier}"
    return headers


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
        log.answered_by = d
        if reply.rest is None:
            log.body = reply.body
            return whole(reply.body, answer_headers(log, d))
        resp = await open_stream(request, answer_headers(log, d))
        try:
            await self._stream(resp, log, d, reply, list(fallbacks), budget)
            await resp.write_eof()
        except (ConnectionResetError, ConnectionError):
            log.outcome = "client_gone"  # the upstream connection was released on the way out
        return resp

    @staticmethod
    async def _write(resp: web.StreamResponse, log: RequestLog, chunk: bytes) -> None:
        log.relayed.append(chunk)
        if log.usage_injected:
            chunk = strip_usage_chunk(chunk)
            if not chunk:
                return
        await resp.write(chunk)

    async def _stream(self, resp: web.StreamResponse, log: RequestLog, d: Deployment, reply: Reply,
                      fallbacks: list[Deployment], budget: RetryBudget) -> None:
        route = log.route
        record = log.attempts[-1] if log.attempts else None
        ttft = record.ttft_s if record else None
        try:
            await self._write(resp, log, reply.first)
            while True:
                try:
                    assert reply.rest is not None
                    async for chunk in reply.rest:
                        await self._write(resp, log, chunk)
                except AttemptError as err:
                    self.attempts.report(route, d, False, True, err=err)
                    if record is not None:
                        record.outcome, record.error = self.attempts.classify(route, err).reason, err
                    await reply.release()
                    resumed = await self._resume(log, record, fallbacks, budget) \
                        if route.config.mid_stream == "resume" else None
                    action = "resumed" if resumed else "error_event"
                    self.metrics.mid_stream(route.name, d.provider, action).inc()
                    if resumed is None:
                        log.outcome = "stream_broken"
                        events = sum(c.count(b"\n\n") for c in log.relayed)
                        await resp.write(stream_error_event(broken_stream(d, err), log.call.endpoint, events))
                        return
                    d, reply = resumed
                    log.answered_by = d
                    record, ttft = log.attempts[-1], log.attempts[-1].ttft_s
                    await self._write(resp, log, reply.first)
                    continue
                self.attempts.report(route, d, True, True, ttft)
                return
        finally:
            await reply.release()

    async def _resume(self, log: RequestLog, broken: AttemptRecord | None, fallbacks: list[Deployment],
                      budget: RetryBudget) -> tuple[Deployment, Reply] | None:
        """Continue on the next deployment with what the client already has as an assistant prefix."""
        if log.call.endpoint != "chat":
            return None
        so_far, had_tools = chat_so_far(log.relayed)
        if had_tools:
            return None  # half a tool call cannot be continued by another model
        if broken is not None:
            broken.partial = chat_so_far(log.relayed[log.resumed_at:])[0]
        call = continuation(log.call, so_far)
        while fallbacks:
            d = fallbacks.pop(0)
            try:
                reply = await self.attempts.with_retries(log, d, call, budget, role="resume")
            except AttemptError:
                continue
            log.resumed_at = len(log.relayed)
            return d, reply
        return None
