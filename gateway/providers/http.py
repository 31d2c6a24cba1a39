"""What the clients on the pooled session share: the failures of opening an attempt and of reading a
stream, each mapped to an `AttemptError` once, here."""

from __future__ import annotations

import asyncio
from types import TracebackType

import aiohttp

from gateway.core.deployment import Deployment
from gateway.providers.answer_check import broken, check_head
from gateway.providers.base import AttemptError, Call, Failure
from gateway.providers.stream_deadlines import Followed, StreamDeadlines

# identity: bytes are relayed as they come, and metering must be able to read them.
BASE_HEADERS = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream",
                "Accept-Encoding": "identity"}
# Error bodies are read for classification and to hand a caller's fault back: a real one is small.
ERROR_BODY_LIMIT = 256 * 1024
DEFAULT_BODY_LIMIT = 64 * 1024 * 1024


class ByteBound:
    """What more of one answer may be read: an upstream that sends more is a broken answer."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.left = limit

    def take(self, data: bytes) -> bytes:
        self.left -= len(data)
        if self.left < 0:
            raise broken(f"an answer over the {self.limit}-byte bound")
        return data


async def read_bounded(resp: aiohttp.ClientResponse, limit: int) -> bytes:
    """The body, or AttemptError once it passes `limit` bytes (never more than that held in memory)."""
    parts: list[bytes] = []
    size = 0
    while True:
        chunk = await resp.content.readany()
        if not chunk:
            return b"".join(parts)
        size += len(chunk)
        if size > limit:
            raise broken(f"an answer over the {limit}-byte bound")
        parts.append(chunk)


async def read_answer(resp: aiohttp.ClientResponse, stream: bool, limit: int, idle_s: float) -> bytes:
    """Checks a 200's headers against the wire; for a whole answer, reads its body too (b"" for a
    stream). The body of a whole answer was generated before its headers: once they are here it is
    due at once, and one that trickles is cut off after idle_s."""
    wrong = check_head(resp.content_type, resp.headers.get("Content-Encoding"), resp.content_length, stream, limit)
    if wrong is not None:
        raise wrong
    if stream:
        return b""
    async with asyncio.timeout(idle_s):
        return await read_bounded(resp, limit)


def bounds(d: Deployment, stream: bool, budget_s: float) -> tuple[aiohttp.ClientTimeout, float | None]:
    """The attempt's socket timeouts, and the bound on its opening (None: the socket timeouts alone).

    Non-stream answers arrive whole, after generation: only total_s bounds them. A stream must show
    its first chunk within first_token_s, then never stall longer than idle_s. No attempt outlives
    what is left of the request's time.
    """
    t = d.timeouts
    total = min(t.total_s, budget_s)
    if stream:   # bounded by the opening's timeout, then by the stream deadlines (`follow`)
        return aiohttp.ClientTimeout(sock_connect=t.connect_s, sock_read=t.idle_s), min(t.first_token_s, total)
    return aiohttp.ClientTimeout(total=total, sock_connect=t.connect_s), None


def follow(deadlines: StreamDeadlines, resp: aiohttp.ClientResponse, d: Deployment, budget_s: float,
           began: float) -> Followed:
    """A stream past its first event: its reads bounded by `idle_s` and its whole attempt (from `began`)
    by what `bounds` allowed, on the deadlines' one timer instead of aiohttp's timers per connection."""
    connection = resp.connection
    if connection is not None and connection.protocol is not None:
        connection.protocol.read_timeout = None   # no timer made anew per chunk from here on
    t = d.timeouts
    return deadlines.follow(resp.content, t.idle_s, began + min(t.total_s, budget_s))


def with_request_id(headers: dict[str, str], call: Call) -> dict[str, str]:
    """The request's ids for the upstream: X-Request-Id, and the attempt's traceparent when traced."""
    if call.traceparent:
        return {**headers, "X-Request-Id": call.request_id, "traceparent": call.traceparent}
    return {**headers, "X-Request-Id": call.request_id} if call.request_id else headers


def with_client_headers(own: dict[str, str], call: Call) -> dict[str, str]:
    """The client's own headers (a body passed through keeps its betas, session ids …), under the
    deployment's, which they never override."""
    if not call.client_headers:
        return own
    mine = {name.lower() for name in own}
    return {**{k: v for k, v in call.client_headers.items() if k not in mine}, **own}


def with_query(url: str, call: Call) -> str:
    """The upstream URL with the client's query string, where it passed one (`?beta=true`)."""
    if not call.query:
        return url
    return f"{url}{'&' if '?' in url else '?'}{call.query}"


class Opening:
    """Maps what goes wrong while an attempt opens, and never pools a connection left mid-answer.

        with Opening(call.stream) as opening:
            async with asyncio.timeout(first_token_s):
                opening.resp = await session.post(...)
                ...   # read the answer, or a stream's first event
    """

    def __init__(self, stream: bool) -> None:
        self.stream = stream
        self.resp: aiohttp.ClientResponse | None = None
        self.began = asyncio.get_running_loop().time()   # where the attempt's total bound counts from

    def __enter__(self) -> Opening:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        resp = self.resp
        if isinstance(exc, AttemptError):
            if resp is not None:   # a connection whose answer was not read to its end is closed, not pooled;
                if exc.failure is Failure.BROKEN:   # nor is one that carried a broken answer
                    resp.close()
                else:
                    resp.release()
            return
        if isinstance(exc, asyncio.CancelledError):   # a lost hedge, or a first token later than its baseline allows
            if resp is not None:
                resp.close()
            return
        if isinstance(exc, TimeoutError):   # before OSError: TimeoutError is one
            if resp is not None:
                resp.close()
            raise AttemptError(Failure.TIMEOUT, "no first token in time" if self.stream else "no answer in time") \
                from None
        if isinstance(exc, aiohttp.ClientConnectorError):
            raise AttemptError(Failure.CONNECT, "connection refused or unreachable") from None
        if isinstance(exc, (aiohttp.ClientError, OSError)):
            if resp is not None:
                resp.close()
            raise AttemptError(Failure.RESET if resp is None else Failure.BROKEN) from None


async def read_more(resp: aiohttp.ClientResponse, followed: Followed) -> bytes:
    """The next bytes of a stream after its first event (b"" at its end); a stall or a cut raises."""
    try:
        data = await resp.content.readany()
    except TimeoutError:
        raise AttemptError(Failure.IDLE, "the stream stalled") from None
    except (aiohttp.ClientError, OSError):
        raise AttemptError(Failure.BROKEN, "the stream broke off") from None
    followed.last_read = asyncio.get_running_loop().time()
    return data


def let_go(resp: aiohttp.ClientResponse, whole: bool, followed: Followed | None = None) -> None:
    """A connection whose stream ended cleanly goes back to the pool; any other is closed."""
    if followed is not None:
        followed.drop()
    if whole:
        resp.release()
    else:
        resp.close()
