"""The OpenAI-compatible endpoints, health checks and the models list."""

from __future__ import annotations

import asyncio
import functools
import itertools
import os
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import orjson
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_protocol import RequestPayloadError

from gateway.core.answer import whole
from gateway.api.chains import prior_for, references_for, remember
from gateway.core.logs import refused_line
from gateway.core.errors import (ApiError, body_too_large, body_too_slow, client_gone, error_response,
                            model_not_found, budget_exceeded, overloaded, rate_limited, undecodable_body,
                            unsupported_encoding)
from gateway.api.validate import check_body, parse_body
from gateway.api.callers import identify
from gateway.core.auth import Authenticator, Caller
from gateway.core.credentials import CREDENTIAL_BETA_PREFIX, ClientCredential, split_betas
from gateway.flow.context import CONTEXT, GatewayContext
from gateway.flow.runtime import Runtime
from gateway.routing.request_log import RequestLog
from gateway.flow.dispatch import TIMEOUT_HEADER, request_timeout
from gateway.providers.base import AttemptError, Call, Endpoint
from gateway.routing.breaker import State

# Client headers that stay here: the connection's own and the body's (the gateway sends a body of its
# own, never compressed), the client's key for the gateway (the deployment has its own), the gateway's
# own controls, and encodings the gateway must read.
_KEPT_HERE = frozenset({
    "host", "content-length", "content-type", "content-encoding", "transfer-encoding", "connection", "keep-alive",
    "te", "trailer", "upgrade", "expect", "proxy-authorization", "proxy-connection", "authorization", "x-api-key",
    "api-key", "cookie", "accept-encoding", "openai-organization", "openai-project", "x-request-id", "forwarded",
    "x-forwarded-for", "x-forwarded-host", "x-forwarded-proto", "x-real-ip",
})


def passed_headers(request: web.Request) -> dict[str, str]:
    """The client's headers that travel upstream with a body passed through (betas, versions, its
    session headers): everything but what belongs to the connection, the gateway or its key, and
    the beta flags bound to the client's own credential (they go only where it goes)."""
    out = {name.lower(): value for name, value in request.headers.items()
           if name.lower() not in _KEPT_HERE and not name.lower().startswith("x-recloser-")}
    beta = out.get("anthropic-beta")
    if beta is not None and CREDENTIAL_BETA_PREFIX in beta:
        free, _ = split_betas(beta)
        if free:
            out["anthropic-beta"] = ",".join(free)
        else:
            del out["anthropic-beta"]
    return out


_CLIENT_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


# Fresh ids: a random prefix per process and a counter; unique across workers and restarts,
# without a system call per request.
_ID_PREFIX = os.urandom(6).hex()
_ids = itertools.count(1)


def request_id(request: web.Request) -> str:
    """The client's own X-Request-Id when it is a sane token, else a fresh one."""
    given = request.headers.get("X-Request-Id")
    if given and _CLIENT_REQUEST_ID.match(given):
        return given
    return f"{_ID_PREFIX}{next(_ids):012x}"


def authenticate(auth: Authenticator, request: web.Request) -> Caller:
    """The caller by its gateway key (gateway/api/callers.py says where it is looked for)."""
    return identify(auth, request.headers)[0]


_ENCODINGS = frozenset({"", "identity", "gzip", "deflate"})
# Set while a request is admitted and its answer has not begun: what the loop-lag admission caps.
STARTING = web.RequestKey("recloser_starting", bool)


async def read_body(request: web.Request, limit: int) -> bytes:
    """The whole body, decoded, within `limits.request_read_timeout_s` and `limit` bytes; else the
    ApiError that says why."""
    timeout_s = request.app[CONTEXT].limits.request_read_timeout_s
    if request.content_length is not None and request.content_length > limit:
        raise body_too_large(limit)
    encoding = request.headers.get("Content-Encoding", "").strip().lower()
    if encoding not in _ENCODINGS:
        raise unsupported_encoding()
    try:
        async with asyncio.timeout(timeout_s):
            return await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise body_too_large(limit) from None
    except (HttpProcessingError, RequestPayloadError):  # a body that does not inflate, or broken chunking
        raise undecodable_body(encoding) from None
    except TimeoutError:
        raise body_too_slow(timeout_s) from None
    except ConnectionError:
        raise client_gone() from None


async def _proxy(request: web.Request, endpoint: Endpoint) -> web.StreamResponse:
    ctx = request.app[CONTEXT]
    rid = request_id(request)
    admission = ctx.admission
    if admission.admits():
        admission.admit()
    elif not admission.may_wait(wait_s := await _wait_for(request, ctx)):
        # Shed at once: a gateway past its limit must answer so, and cheaply.
        return _shed(ctx, rid, endpoint)
    else:   # the loop-lag cap: a burst's own lag clears soon, so wait in line for room, briefly
        admitted = await admission.wait_for_room(wait_s)
        ctx.metrics.admission_waits("admitted" if admitted else "shed").inc()
        if not admitted:
            return _shed(ctx, rid, endpoint)
    request[STARTING] = True    # until its answer's headers go out (answer_begins)
    ctx.metrics.in_flight.inc()
    try:
        # Served here, not in a function of its own: a stream holds each call level for minutes.
        prepared = await _prepare(request, ctx, endpoint, rid)
        if not isinstance(prepared, Prepared):
            return prepared
        rt, log, tracer = prepared.runtime, prepared.log, ctx.tracer
        tracer.request_started(log, request.headers)
        status = 499  # until it is known: the client went away, or the request was cancelled
        try:
            resp = await rt.dispatcher.dispatch(request, log)
            status = resp.status
            if not resp.prepared:
                # Send the answer before metering it: the client should not wait for the bookkeeping.
                await resp.prepare(request)
                await resp.write_eof()
            if endpoint == "responses" and status == 200 and log.outcome == "ok":
                await remember(ctx.responses, log)
            return resp
        except ApiError as err:
            status = err.status
            log.outcome = "error"
            return error_response(err, {"x-request-id": rid, **log.extra_headers}, endpoint)
        except asyncio.CancelledError:
            log.outcome = "cancelled"
            raise
        finally:
            ended = rt.dispatcher.clock()
            rt.meter.finish(log, status, ended)
            tracer.request_finished(log, status, ended)
    finally:
        # A whole answer is sent after the handler returns: it has left admission by then.
        starting, request[STARTING] = request[STARTING], False
        admission.leave(starting)
        ctx.metrics.in_flight.dec()


# A body asking for a stream, as a key anywhere in the JSON (a string's quotes inside it are escaped).
_ASKS_STREAM = re.compile(rb'"stream"\s*:\s*true')


async def _wait_for(request: web.Request, ctx: GatewayContext) -> float:
    """How long a newcomer the loop-lag cap refused may wait for room: a stream's wait when it asks for
    one (its body read now, and kept by aiohttp for the handler), else a whole answer's. A body that
    cannot be read here gets the shorter wait; the handler then says what is wrong with it."""
    admission = ctx.admission
    if not admission.streams_wait_longer or admission.in_flight >= admission.max_in_flight:
        return admission.wait_s
    try:
        raw = await read_body(request, ctx.runtime.limits.max_body_bytes)
    except ApiError:
        return admission.wait_s
    return admission.stream_wait_s if _ASKS_STREAM.search(raw) else admission.wait_s


async def answer_begins(request: web.Request, response: web.StreamResponse) -> None:
    """An answer's headers are going out (aiohttp's on_response_prepare): its request no longer counts
    as starting for the loop-lag admission."""
    if request.get(STARTING):
        request[STARTING] = False
        request.app[CONTEXT].admission.answering()


def _shed(ctx: GatewayContext, rid: str, endpoint: Endpoint) -> web.Response:
    limits, admission = ctx.limits, ctx.admission
    if admission.in_flight >= admission.max_in_flight:
        ctx.metrics.shed("max_in_flight").inc()
        error = overloaded(f"at its limit of {admission.max_in_flight} requests in flight", limits.shed_retry_after_s)
    else:
        ctx.metrics.shed("loop_lag").inc()
        error = overloaded(f"saturated (its event loop ran {1000 * admission.lag_s:.0f} ms late)",
                           limits.shed_retry_after_s)
    refused_line(rid, endpoint, "", 503, "", "", "shed")
    return error_response(error, {"x-request-id": rid}, endpoint)


@dataclass(slots=True)
class Prepared:
    """An admitted request, read, checked and let through by its budget and rate limits."""

    runtime: Runtime    # this request's policy, whatever a reload does meanwhile
    log: RequestLog


async def _prepare(request: web.Request, ctx: GatewayContext, endpoint: Endpoint,
                   rid: str) -> Prepared | web.StreamResponse:
    """The request read, checked against its route, budget and rate limits, and logged; else the error
    response that says why not (counted as refused)."""
    rt = ctx.runtime
    caller: Caller | None = None
    credential: ClientCredential | None = None
    route_name = ""
    try:
        caller, credential = identify(rt.auth, request.headers)
        raw = await read_body(request, rt.limits.max_body_bytes)
        body = parse_body(raw)
        stream = check_body(endpoint, body)
        route = rt.routing.routes.get(body["model"])
        if route is None:
            raise model_not_found(body["model"], rt.routing.names)
        route_name = route.name
        extra: dict[str, str] = {}
        decision = rt.meter.admit(caller)
        if decision.action == "reject":
            raise budget_exceeded(decision.message, rt.meter.seconds_until(decision.resets_at))
        if decision.action == "downgrade" and decision.route_to is not None and decision.route_to in rt.routing.routes:
            route = rt.routing.routes[decision.route_to]
            extra["x-recloser-budget"] = f"downgraded to route '{route.name}'"
        elif decision.action == "warn":
            extra["x-recloser-budget"] = "warning: " + decision.message
        if ctx.limiter is not None and ctx.limiter.limits:
            check = await ctx.limiter.admit(caller.team, caller.key_id)
            if check is not None:
                if not check.admitted:
                    raise rate_limited(check.message, check.kind, check.retry_after_s, check.headers)
                extra.update(check.headers)
        prior = await prior_for(ctx.responses, body) if endpoint == "responses" else None
        references = await references_for(ctx.responses, body) if endpoint == "responses" else {}
    except ApiError as err:
        rt.meter.refused(route_name, caller, err.status, endpoint)
        refused_line(rid, endpoint, route_name, err.status, caller.team if caller else "", caller.app if caller else "",
                     err.code or err.type)
        return error_response(err, {"x-request-id": rid}, endpoint)
    now = rt.dispatcher.clock()
    timeout = request_timeout(route, request.headers.get(TIMEOUT_HEADER))
    call = Call(endpoint, body, stream, rid, prior, passed_headers(request), request.query_string, references,
                len(raw), credential)
    return Prepared(rt, RequestLog(route, call, caller, now, now + timeout, extra_headers=extra))


def endpoint(name: Endpoint) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """The handler of one of the API's endpoints: `_proxy` with its endpoint bound, not a function
    that calls it (each call level is held suspended by every open stream, for minutes)."""
    return functools.partial(_proxy, endpoint=name)


async def count_tokens(request: web.Request) -> web.StreamResponse:
    """Anthropic's `/v1/messages/count_tokens`: Anthropic's own count when the route has an Anthropic
    target standing, else counted here (cl100k_base: an estimate) so any route can answer."""
    ctx = request.app[CONTEXT]
    rt = ctx.runtime
    try:
        _, credential = identify(rt.auth, request.headers)
        body = parse_body(await read_body(request, rt.limits.max_body_bytes))
        check_body("messages", {"max_tokens": 1, **body})
        route = rt.routing.routes.get(body["model"])
        if route is None:
            raise model_not_found(body["model"], rt.routing.names)
    except ApiError as err:
        return error_response(err, endpoint="messages")
    if ctx.anthropic_counts is not None:
        call = Call("messages", body, False, request_id(request), client_headers=passed_headers(request),
                    query=request.query_string, credential=credential)
        for d in route.deployments:
            if d.kind != "anthropic" or ctx.board.healths[d.key].state is State.EJECTED:
                continue
            try:
                counted = await ctx.anthropic_counts.count(d, call, d.timeouts.first_token_s)
            except AttemptError as err:
                if err.status == 400 and err.body:   # the caller's own mistake, in Anthropic's words
                    return whole(err.body, {"x-recloser-provider": d.provider}, status=400)
                continue
            return whole(counted, {"x-recloser-provider": d.provider, "x-recloser-model": d.model})
    tokens = await rt.meter.counter.count_prompt(body)
    if body.get("tools"):
        tokens += await rt.meter.counter.count_text(orjson.dumps(body["tools"]).decode())
    return whole(orjson.dumps({"input_tokens": tokens}), {})


async def list_models(request: web.Request) -> web.StreamResponse:
    ctx = request.app[CONTEXT]
    try:
        authenticate(ctx.auth, request)
    except ApiError as err:
        return error_response(err)
    data = [{"id": name, "object": "model", "created": 0, "owned_by": "recloser"} for name in ctx.routing.names]
    return whole(orjson.dumps({"object": "list", "data": data}), {})


async def healthz(request: web.Request) -> web.StreamResponse:
    # The pid tells which worker answered when several share the port.
    return whole(orjson.dumps({"status": "ok", "pid": os.getpid()}), {})


async def readyz(request: web.Request) -> web.StreamResponse:
    ctx = request.app.get(CONTEXT)
    if ctx is None or not ctx.ready:
        return whole(b'{"status":"draining"}' if ctx is not None and ctx.draining else b'{"status":"starting"}',
                     {}, status=503)
    policy = ctx.policy
    return whole(orjson.dumps({"status": "ready", "policy": policy.source, "sha256": policy.sha256,
                               "pid": os.getpid()}), {})


async def admin_deployments(request: web.Request) -> web.StreamResponse:
    """Per deployment: state and why, until when it is ejected, error rate, speed, ejection count.

    Admin keys only: gateway/api/access.py checks every /admin route before it gets here."""
    ctx = request.app[CONTEXT]
    rows = ctx.board.report(list(ctx.routing.routes.values()))
    if ctx.canaries is not None:
        for row in rows:
            row["canaries"] = ctx.canaries.report(f"{row['provider']}/{row['model']}")
    answers = ctx.dispatcher.attempts.answers
    for row in rows:
        key = f"{row['provider']}/{row['model']}" + (f"@{row['endpoint']}" if "endpoint" in row else "")
        row["answers"] = answers.report(key)   # the checks on its live answers
    return whole(orjson.dumps({"object": "list", "data": rows}), {})


async def admin_reload(request: web.Request) -> web.StreamResponse:
    """Reads the policy file again; answers what serves now, or why the file was refused (FILE:LINE: reason).

    Admin keys only: gateway/api/access.py checks every /admin route before it gets here."""
    ctx = request.app[CONTEXT]
    assert ctx.reloader is not None
    done = await ctx.reloader.reload("admin")
    if done.result == "error":
        return error_response(ApiError(422, f"Policy refused; the previous one keeps serving: {done.message}",
                                       "invalid_request_error", code="invalid_policy"))
    return whole(orjson.dumps({"status": "reloaded" if done.result == "ok" else "unchanged", "sha256": done.sha256,
                               "policy": ctx.policy.source, "warnings": list(done.warnings)}), {})


async def metrics(request: web.Request) -> web.StreamResponse:
    from gateway.core.metrics import exposition

    body, content_type = exposition(request.app[CONTEXT].metrics.registry)
    return web.Response(body=body, headers={"Content-Type": content_type})
