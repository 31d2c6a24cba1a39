"""What every upstream adapter speaks: a call going out, a reply coming back, or a failed attempt."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Literal, Protocol

import orjson

from gateway.core.credentials import ClientCredential
from gateway.core.deployment import Deployment

# The inbound APIs: OpenAI chat, completions, embeddings and Responses, and Anthropic Messages.
Endpoint = Literal["chat", "completions", "embeddings", "responses", "messages"]

PATHS: dict[str, str] = {"chat": "/chat/completions", "completions": "/completions", "embeddings": "/embeddings",
                         "responses": "/responses", "messages": "/v1/messages"}


@dataclass(frozen=True, slots=True)
class Prior:
    """The earlier turns a Responses request continues (`previous_response_id`), as the gateway kept
    them: the provider that wrote the last one, and every input and output item of the chain."""

    response_id: str
    origin: str
    items: tuple[dict[str, Any], ...]


@dataclass(slots=True)
class Call:
    """One client request on its way to the upstreams: the body as the client sent it."""

    endpoint: Endpoint
    body: dict[str, Any]
    stream: bool
    request_id: str
    prior: Prior | None = None
    # The client's own headers and query string, carried upstream when its body passes through
    # (anthropic-version, anthropic-beta, `?beta=true`, a client's session headers …).
    client_headers: Mapping[str, str] = field(default_factory=dict)
    query: str = ""
    # Stored items an `item_reference` in a Responses input names, for targets that cannot look them up.
    references: Mapping[str, dict[str, Any]] = field(default_factory=dict)
    size: int = 0                  # the client's body as received, in bytes (0: a call the gateway made)
    # The caller's own credential, for `credentials: client` deployments only (None: it sent none).
    credential: ClientCredential | None = field(default=None, repr=False)
    traceparent: str = ""          # the attempt's W3C traceparent, sent upstream when traces are on

    @property
    def model(self) -> str:
        return self.body["model"]  # type: ignore[no-any-return]

    def upstream_body(self, model: str) -> bytes:
        """The client's body, untouched but for the model name the deployment knows."""
        body = dict(self.body)
        body["model"] = model
        # orjson's bytes sit in a buffer of at least 4 KB, and the client holds the body it sent until
        # the answer ends: a stream's minutes. A copy of its own size keeps 4 KB per open stream free.
        return memoryview(orjson.dumps(body)).tobytes()


class Failure(Enum):
    CONNECT = "connect"            # refused or unreachable: nothing is listening there
    RESET = "reset"                # the connection dropped before a reply began
    TIMEOUT = "timeout"            # no first token (or no answer) within the bound
    IDLE = "idle"                  # a stream stalled between chunks
    STATUS = "status"              # the upstream answered with an error status
    BROKEN = "broken"              # the reply broke off or was not the protocol we speak
    UNFIT = "unfit"                # this target cannot take this request (a crossing it cannot carry,
                                   # an endpoint it does not serve): skipped, no fault of its own
    CREDENTIAL = "credential"      # the caller's own credential was refused (401/403) or is out of
                                   # quota (429): that caller fails over, the deployment is not at fault
    DEFECTIVE = "defective"        # a 200 whose answer is of no use: empty, or tool arguments not JSON
    PAUSED = "paused"              # timed out while the gateway's own event loop was paused for most of
                                   # the wait (flow/loop_pauses.py): the gateway's overload, not the deployment's


_FAILURE_WORDS = {
    Failure.CONNECT: "connection refused",
    Failure.RESET: "connection reset",
    Failure.TIMEOUT: "timed out",
    Failure.IDLE: "stream stalled",
    Failure.BROKEN: "reply broke off",
    Failure.UNFIT: "cannot take this request",
    Failure.CREDENTIAL: "the client's credential was refused",
    Failure.DEFECTIVE: "a defective answer",
    Failure.PAUSED: "timed out while the gateway was overloaded",
}


class AttemptError(Exception):
    """An upstream attempt that did not produce an answer. `detail` is safe to show a client."""

    def __init__(self, failure: Failure, detail: str = "", status: int | None = None,
                 retry_after_s: float | None = None, body: bytes | None = None,
                 content_type: str = "application/json", param: str | None = None,
                 limit_reset_s: float | None = None) -> None:
        super().__init__(detail or failure.value)
        self.failure = failure
        self.detail = detail
        self.status = status
        self.retry_after_s = retry_after_s
        self.body = body
        self.content_type = content_type
        self.param = param               # the request field at fault, where one is (UNFIT)
        self.limit_reset_s = limit_reset_s   # a usage limit's reset, in seconds from now (429s that say so)

    def describe(self) -> str:
        """A short reason for error messages and logs: 'HTTP 503', 'connection failed', …"""
        if self.failure in (Failure.STATUS, Failure.CREDENTIAL):
            return f"HTTP {self.status}"
        if self.failure in (Failure.BROKEN, Failure.UNFIT, Failure.DEFECTIVE) and self.detail:
            return self.detail
        return _FAILURE_WORDS[self.failure]


def unfit(message: str, param: str | None = None) -> AttemptError:
    """This target cannot take this request (a crossing it cannot carry, an endpoint it does not
    serve): the attempt loop goes on to the next target, and no breaker hears of it."""
    return AttemptError(Failure.UNFIT, message, status=400, param=param)   # the 400 it is, were it the only target


@dataclass(slots=True)
class Reply:
    """An answer that began: a whole body, or a stream whose first chunk has arrived."""

    status: int
    body: bytes = b""
    first: bytes = b""
    rest: AsyncIterator[bytes] | None = None
    close: Callable[[], Awaitable[None] | None] = field(default=lambda: None)
    dropped: tuple[str, ...] = ()   # features of the request this target could not carry (wires/features.py)

    async def release(self) -> None:
        if self.rest is not None:
            aclose = getattr(self.rest, "aclose", None)
            if aclose is not None:
                await aclose()
        result = self.close()
        if result is not None:
            await result


class UpstreamClient(Protocol):
    async def open(self, deployment: Deployment, call: Call, budget_s: float) -> Reply:
        """Start an attempt; returns once the answer (or a stream's first chunk) is here, else raises AttemptError.

        `budget_s` is what is left of the request's time: no attempt outlives it.
        """
        ...


def parse_retry_after(value: str | None) -> float | None:
    """Retry-After in seconds (the HTTP-date form is rare from LLM APIs and read as absent)."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    return seconds if seconds >= 0 else None


def usage_limit_reset_s(headers: Mapping[str, str], wall_now: float) -> float | None:
    """Seconds until a refused usage limit resets: Anthropic's `anthropic-ratelimit-unified-status:
    rejected` with `anthropic-ratelimit-unified-reset` (unix seconds); None when the answer says none."""
    if headers.get("anthropic-ratelimit-unified-status") != "rejected":
        return None
    try:
        reset = float(headers.get("anthropic-ratelimit-unified-reset", ""))
    except ValueError:
        return None
    return max(0.0, reset - wall_now)
