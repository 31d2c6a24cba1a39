"""What the clients on the pooled session share: the failures of opening an attempt and of reading a
stream, each mapped to an `AttemptError` once, here."""

from __future__ import annotations

import asyncio
from types import TracebackType

import aiohttp

from gateway.deployment import Deployment
from gateway.providers.base import AttemptError, Call, Failure

# identity: bytes are relayed as they come, and metering must be able to read them.
BASE_HEADERS = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream",
                "Accept-Encoding": "identity"}


def bounds(d: Deployment, stream: bool, budget_s: float) -> tuple[aiohttp.ClientTimeout, float | None]:
    """The attempt's socket timeouts, and the bound on its opening (None: the socket timeouts alone).

    Non-stream answers arrive whole, after generation: only total_s bounds them. A stream must show
    its first chunk within first_token_s, then never stall longer than idle_s. No attempt outlives
    what is left of the request's time.
    """
    t = d.timeouts
    total = min(t.total_s, budget_s)
    timeout = aiohttp.ClientTimeout(total=total, sock_connect=t.connect_s, sock_read=t.idle_s if stream else None)
    return timeout, (min(t.first_token_s, total) if stream else None)


def with_request_id(headers: dict[str, str], call: Call) -> dict[str, str]:
    return {**headers, "X-Request-Id": call.request_id} if call.request_id else headers


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

    def __enter__(self) -> Opening:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        resp = self.resp
        if isinstance(exc, AttemptError):
            if resp is not None:
                resp.release()   # a connection whose answer was not read to its end is closed, not pooled
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


async def read_more(resp: aiohttp.ClientResponse) -> bytes:
    """The next bytes of a stream after its first event (b"" at its end); a stall or a cut raises."""
    try:
        return await resp.content.readany()
    except TimeoutError:
        raise AttemptError(Failure.IDLE, "the stream stalled") from None
    except (aiohttp.ClientError, OSError):
        raise AttemptError(Failure.BROKEN, "the stream broke off") from None


def let_go(resp: aiohttp.ClientResponse, whole: bool) -> None:
    """A connection whose stream ended cleanly goes back to the pool; any other is closed."""
    if whole:
        resp.release()
    else:
        resp.close()
