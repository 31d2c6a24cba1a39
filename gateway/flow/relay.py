"""Delivering an answer: a whole body, or a stream relayed event by event, and what happens when a
stream's upstream fails after bytes already reached the client (the route's `mid_stream`)."""

from __future__ import annotations

from collections.abc import Sequence

from aiohttp import web

from gateway.core.answer import open_stream, stream_error_event, whole
from gateway.core.errors import ApiError
from gateway.flow.attempts import Attempts
from gateway.flow.loop_pauses import provider_seconds
from gateway.wires.features import DROPPED_HEADER
from gateway.routing.request_log import AttemptRecord, RequestLog
from gateway.metering.usage import strip_usage_chunk
from gateway.core.metrics import Metrics
from gateway.providers.base import AttemptError, Failure, Reply
from gateway.providers.transcript import EventFold, Transcript
from gateway.quality.answer_read import StreamWatch
from gateway.flow.resume.chat import Diverged, after_prefix, continuation
from gateway.flow.resume.messages import MessagesFold, spliced
from gateway.flow.resume.responses import ResponsesFold, responses_spliced
from gateway.routing.retry_budget import RetryBudget
from gateway.core.deployment import Deployment
from gateway.routing.stream_speed import token_gap


DEGRADED_HEADER = "x-recloser-degraded"


def answer_headers(log: RequestLog, d: Deployment) -> dict[str, str]:
    headers = {"x-request-id": log.call.request_id, "x-recloser-provider": d.provider,
               "x-recloser-model": d.model, "x-recloser-attempts": str(len(log.attempts)), **log.extra_headers}
    tier = log.route.degraded_tier(d)
    if tier is not None:   # served below the route's intended quality: the client may want to know
        headers[DEGRADED_HEADER] = f"tier={tier}"
    if log.dropped:        # served across wires without some of what the client asked for
        headers[DROPPED_HEADER] = ",".join(log.dropped)
    return headers


def fold_for(endpoint: str) -> EventFold | None:
    """What a resume of a stream in this API needs beyond its text, folded as it is relayed."""
    if endpoint == "messages":
        return MessagesFold()
    if endpoint == "responses":
        return ResponsesFold()
    return None


def broken_stream(d: Deployment, err: AttemptError) -> ApiError:
    return ApiError(502, f"The upstream {d.provider}/{d.model} failed mid-stream ({err.describe()}); "
                         "the answer is incomplete.", "server_error", code="stream_interrupted")


class Relay:
    def __init__(self, attempts: Attempts, metrics: Metrics) -> None:
        self.attempts = attempts
        self.metrics = metrics
        self.prefills = attempts.prefills   # what was learnt outlives a policy reload

    async def deliver(self, request: web.Request, log: RequestLog, d: Deployment, reply: Reply,
                      fallbacks: Sequence[Deployment], budget: RetryBudget,
                      opened: web.StreamResponse | None = None) -> web.StreamResponse:
        """`opened`: the stream of a request that was held, its headers already sent."""
        log.answered_by = d
        if reply.dropped:
            log.dropped = reply.dropped
            for feature in reply.dropped:
                self.metrics.dropped_features(log.route.name, feature).inc()
        if reply.rest is None:
            log.body = reply.body
            return whole(reply.body, answer_headers(log, d))
        watch = self.attempts.watch(log)   # the answer checks, reading what the transcript parses and keeps
        log.transcript = Transcript(log.call.endpoint, fold_for(log.call.endpoint), watch)
        if watch is not None:
            watch.text, watch.text_bytes = log.transcript.text, log.transcript.text_bytes
        resp = opened or await open_stream(request, answer_headers(log, d))
        try:
            await self._stream(resp, log, d, reply, list(fallbacks), budget)
            await resp.write_eof()
        except (ConnectionResetError, ConnectionError):
            log.outcome = "client_gone"  # the upstream connection was released on the way out
        finally:
            # The watch reads the transcript's text, the transcript feeds the watch: a cycle, broken here
            # so that a stream's objects go when it ends, not at a collection (thousands end a minute).
            log.transcript.watch = None
        return resp

    @staticmethod
    async def _write(resp: web.StreamResponse, log: RequestLog, chunk: bytes) -> None:
        if not chunk:
            return
        log.transcript.add(chunk)
        watch = log.transcript.watch
        if isinstance(watch, StreamWatch) and watch.broken_call:
            return   # a tool call finished with arguments that are not JSON: the client never gets its finish
        if log.usage_injected:
            chunk = strip_usage_chunk(chunk)
            if not chunk:
                return
        await resp.write(chunk)

    async def _stream(self, resp: web.StreamResponse, log: RequestLog, d: Deployment, reply: Reply,
                      fallbacks: list[Deployment], budget: RetryBudget) -> None:
        route = log.route
        record = log.attempts[-1] if log.attempts else None
        ttft = record.provider_ttft_s if record else None
        watch = log.transcript.watch if isinstance(log.transcript.watch, StreamWatch) else None   # the answer checks
        try:
            await self._write(resp, log, reply.first)
            if watch is not None:
                self._watched(watch, log, d, watch.look())
            # The stream's flow, for its token rate: events counted, timed from the first.
            flow_from, paused, events = self.attempts.clock(), self.attempts.paused(), reply.first.count(b"data:")
            while True:
                try:
                    assert reply.rest is not None
                    async for chunk in reply.rest:
                        events += chunk.count(b"data:")
                        await self._write(resp, log, chunk)
                        if watch is not None:
                            self._watched(watch, log, d, watch.look())
                except AttemptError as err:
                    diverged = isinstance(err, Diverged)
                    if not diverged:  # a restart that went another way is no fault of the deployment's
                        self.attempts.report(route, d, False, True, err=err)
                    if record is not None:
                        record.outcome, record.error = self.attempts.classify(route, err).reason, err
                        self.attempts.tracer.attempt_failed(log, record)
                    await reply.release()
                    resumed = await self._resume(log, record, fallbacks, budget) \
                        if route.config.mid_stream == "resume" and not diverged else None
                    action = resumed[2] if resumed else "error_event"
                    self.metrics.mid_stream(route.name, d.provider, action).inc()
                    if resumed is None:
                        log.outcome = "stream_broken"
                        await resp.write(stream_error_event(broken_stream(d, err), log.call.endpoint,
                                                            log.transcript.events))
                        return
                    d, reply, _ = resumed
                    watch = log.transcript.watch = None   # an answer of two deployments: neither's alone to judge
                    log.events.append(action)
                    log.answered_by = d
                    record, ttft = log.attempts[-1], log.attempts[-1].provider_ttft_s
                    await self._write(resp, log, reply.first)
                    flow_from, paused, events = self.attempts.clock(), self.attempts.paused(), reply.first.count(b"data:")
                    continue
                # The stream's pace, less the gateway's own pauses: a loaded gateway is not a slow provider.
                gap = token_gap(events, provider_seconds(self.attempts.clock() - flow_from,
                                                         self.attempts.paused() - paused))
                if watch is not None and watch.broken_call:
                    await self._end_broken_call(resp, log, d, record)
                else:
                    self.attempts.report(route, d, True, True, ttft, token_gap_s=gap)
                if watch is not None:
                    self._watched(watch, log, d, watch.end(), ended=True)
                return
        finally:
            await reply.release()

    async def _end_broken_call(self, resp: web.StreamResponse, log: RequestLog, d: Deployment,
                               record: AttemptRecord | None) -> None:
        """A stream whose tool call finished with arguments that are not JSON ends with an error event
        instead of its finish: the client's SDK raises rather than hand its agent a call it cannot run.
        (A half-written tool call cannot be continued elsewhere.) A failed attempt, like a broken stream."""
        err = AttemptError(Failure.DEFECTIVE, "tool call arguments that are not JSON")
        self.attempts.report(log.route, d, False, True, err=err)
        if record is not None:
            record.outcome, record.error = "defective_answer", err
            self.attempts.tracer.attempt_failed(log, record)
        self.metrics.mid_stream(log.route.name, d.provider, "error_event").inc()
        log.outcome = "stream_broken"
        await resp.write(stream_error_event(broken_stream(d, err), log.call.endpoint, log.transcript.events))

    def _watched(self, watch: StreamWatch, log: RequestLog, d: Deployment, found: list[str],
                 ended: bool = False) -> None:
        """A stream's answer is judged once: at its first defect, or at its end when it had none."""
        if found and not watch.judged:
            watch.judged = True
            self.attempts.answers.judged(log.route, d, found)
        elif found:
            self.attempts.answers.counted(log.route, d, found)
        elif ended and not watch.judged:
            self.attempts.answers.judged(log.route, d, found)

    async def _resume(self, log: RequestLog, broken: AttemptRecord | None, fallbacks: list[Deployment],
                      budget: RetryBudget) -> tuple[Deployment, Reply, str] | None:
        """Continue on the next deployment that can: with the partial answer as a prefill where the
        target takes one, else by restarting and relaying only what the client does not have yet.
        Returns the deployment, its reply and how (`resumed` or `restarted`). Chat and Messages
        streams of text only: a half-written tool call cannot be continued by another model."""
        endpoint, transcript = log.call.endpoint, log.transcript
        if endpoint == "chat":
            so_far, had_tools = transcript.text(), transcript.had_tools
            messages = None
        elif endpoint == "messages" and isinstance(transcript.fold, MessagesFold):
            messages = transcript.fold.so_far(transcript.text())
            so_far, had_tools = messages.text, not messages.stitchable
        elif endpoint == "responses":
            return await self._restart_responses(log, broken, fallbacks, budget)
        else:
            return None
        if had_tools:
            return None
        if broken is not None:
            broken.partial = transcript.answering_text()
        route = log.route
        while fallbacks:
            d = fallbacks.pop(0)
            if self.prefills.accepts(d):
                try:
                    reply = await self.attempts.with_retries(log, d, continuation(log.call, so_far), budget,
                                                             role="resume")
                except AttemptError as err:
                    if self.attempts.classify(route, err).reason != "prefill_rejected":
                        continue
                    self.prefills.learn_refusal(d)   # the client never sees this 400
                    log.events.append("prefill_rejected")
                else:
                    transcript.answering_from_here()
                    if messages is not None:
                        reply = Reply(reply.status, rest=spliced(reply.first, reply.rest, messages),
                                      close=reply.release)
                    return d, reply, "resumed"
            try:
                reply = await self.attempts.with_retries(log, d, log.call, budget, role="restart")
            except AttemptError:
                continue
            transcript.answering_from_here()
            rest = after_prefix(reply.first, reply.rest, so_far) if messages is None \
                else spliced(reply.first, reply.rest, messages, skip=so_far)
            return d, Reply(reply.status, rest=rest, close=reply.release), "restarted"
        return None

    async def _restart_responses(self, log: RequestLog, broken: AttemptRecord | None, fallbacks: list[Deployment],
                                 budget: RetryBudget) -> tuple[Deployment, Reply, str] | None:
        """A Responses stream has no prefill: the next deployment answers the same request again and
        the client gets only what follows the text it has (resume_responses.py)."""
        transcript = log.transcript
        if not isinstance(transcript.fold, ResponsesFold):
            return None
        so_far = transcript.fold.so_far(transcript.text())
        if not so_far.stitchable:
            return None
        if broken is not None:
            broken.partial = transcript.answering_text()
        while fallbacks:
            d = fallbacks.pop(0)
            try:
                reply = await self.attempts.with_retries(log, d, log.call, budget, role="restart")
            except AttemptError:
                continue
            transcript.answering_from_here()
            rest = responses_spliced(reply.first, reply.rest, so_far)
            return d, Reply(reply.status, rest=rest, close=reply.release), "restarted"
        return None
