"""Scripted faults for simulated upstreams, and the pure decision of what one request gets."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Literal

# Answers that are not an outage but are not what the wire promises either: each comes with a 200.
Malformed = Literal[
    "html",                 # an HTML error page (a proxy or load balancer in front of the model)
    "truncated",            # JSON (or a stream's first event) cut off half-way
    "not_json",             # plain words where JSON (or SSE events of JSON) belongs
    "garbage_sse",          # a stream whose lines are not server-sent events at all
    "silent",               # headers, then nothing at all
    "trickle",              # one valid event, then a byte every `trickle_s`, never a whole event again
    "oversized",            # a valid-looking answer `oversize_bytes` long
    "wrong_content_type",   # a correct body under a Content-Type that is not the wire's
    "gzip",                 # a correct body, gzip-compressed though identity was asked for
]
# Answers that are a 200 of the right shape but of no use: what the answer checks look for.
Broken = Literal[
    "wrong_script",         # fluent Thai, whatever the language of the question
    "empty",                # no text and no tool call, finish `stop`
    "loop",                 # one word over and over to the token limit
    "bad_tool_args",        # tool calls whose arguments are cut off mid-object (not JSON)
]


@dataclass(frozen=True)
class Fault:
    """How a simulated upstream misbehaves; `Fault()` is healthy."""

    status: int | None = None              # answer with this HTTP status and a wire-correct error body
    retry_after_s: float | None = None     # with status: a Retry-After header (whole seconds, rounded up)
    error_rate: float = 1.0                # with status: the share of requests that fail (seeded)
    refuse: bool = False                   # connections refused: listener closed, open connections aborted
    hang: bool = False                     # accept the request, never send headers
    first_token_delay_s: float = 0.0       # before headers (non-stream) or before the first event (stream)
    chunk_delay_s: float = 0.0             # between stream events
    cut_after_chunks: int | None = None    # abort the connection after N content chunks
    stall_after_chunks: int | None = None  # after N content chunks, send nothing more but stay open
    error_event_after_chunks: int | None = None  # after N content chunks, the wire's error event ends a 200 stream
    # Fast, status 200, fluent but wrong answers and broken tool calls; None: as the sim was started
    # (so `{"dumb": false}` mends a sim started dumb, and `{}` gives it back its start-up mode).
    dumb: bool | None = None
    broken: Broken | None = None           # fast, status 200, answers broken this way (see Broken)
    duration_s: float | None = None        # revert to healthy by itself after this long
    times: int | None = None               # with status: only the next N requests fail, then healthy
    error_code: str | None = None          # with status: the error body's `code` (e.g. content_filter)
    no_done: bool = False                  # end streams cleanly after the finish reason, without [DONE]
    end_early_after_chunks: int | None = None  # end the body cleanly after N content chunks, no finish
    echo_key: bool = False                 # with status: the error message quotes the key it was sent
    malformed: Malformed | None = None     # answer 200 with a body the wire does not allow
    trickle_s: float = 0.1                 # with malformed="trickle": the pause between bytes
    oversize_bytes: int = 2 * 1024 * 1024  # with malformed="oversized": how long the answer is
    # With status: only requests presenting this client credential fail (one caller's subscription
    # expired or out of quota while everyone else's works).
    only_credential: str | None = None
    # With status 429 on the Anthropic wire: a subscription's usage limit, as Anthropic says it
    # (`anthropic-ratelimit-unified-status: rejected`, `-unified-reset` this many seconds ahead, `retry-after`).
    usage_limit_reset_s: float | None = None

    @property
    def healthy(self) -> bool:
        return self == Fault()


HEALTHY = Fault()


def fails_now(fault: Fault, rng: random.Random, failed_so_far: int = 0, credential: str | None = None) -> bool:
    """Does this request get the scripted error status? (`failed_so_far`: under this fault;
    `credential`: the client credential the request presented, if any)"""
    if fault.status is None:
        return False
    if fault.only_credential is not None and credential != fault.only_credential:
        return False
    if fault.times is not None and failed_so_far >= fault.times:
        return False
    return fault.error_rate >= 1.0 or rng.random() < fault.error_rate


def fault_from_json(data: dict[str, object]) -> Fault:
    known = set(Fault.__dataclass_fields__)
    unknown = set(data) - known
    if unknown:
        raise ValueError(f"unknown fault fields: {', '.join(sorted(unknown))}")
    return Fault(**data)  # type: ignore[arg-type]
