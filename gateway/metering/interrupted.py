"""Calls a killed gateway left in flight: what was started, which never ended, and what each costs.

Before each upstream attempt the meter journals an `AttemptStarted` (with the worst case the call
could cost); an attempt that fails before any answer journals an `AttemptFailed` (it cost nothing,
as the ledger has always held). Every other attempt ends in the ledger: a request record closes all
of its attempts (`attempts` of them, by index). At the next start, an attempt started and never
closed is written to the ledger as interrupted, charged its worst case: the provider bills the
tokens it produced, nobody saw how many, and a budget must not be told less than it may owe.

Pure: journal and ledger lines in, records out; the files are handled in `journal.py`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from decimal import Decimal
from typing import Any, Literal

import orjson

from gateway.metering.record import CallRecord, iso_utc, parse_ts

BYTES_PER_TOKEN = 4            # OpenAI's rule of thumb; the body's JSON keys make it lean high
DEFAULT_MAX_OUTPUT_TOKENS = 4096   # when neither the request nor the model says (Anthropic's default too)
# A ledger record older than the start by more than this is another request that reused the id.
CLOCK_SLACK_S = 1.0
INTERRUPTED = "interrupted"


@dataclass(frozen=True, slots=True)
class AttemptStarted:
    """One journal line: an upstream attempt about to be made, and the most it could cost."""

    ts: float
    request_id: str
    attempt: int               # its index among the request's attempts (the request record's `attempts` counts them)
    team: str
    app: str
    key_id: str
    route: str
    provider: str
    model: str
    endpoint: str
    stream: bool
    body_bytes: int
    input_tokens: int          # estimated from body_bytes
    max_output_tokens: int
    worst_cost_usd: Decimal
    price_source: str
    kind: Literal["started"] = "started"
    paid_by: Literal["gateway", "client"] = "gateway"   # the caller's own credentials pay a client-credential target

    def to_json(self) -> bytes:
        return orjson.dumps({**{name: getattr(self, name) for name in _STARTED_FIELDS},
                             "ts": iso_utc(self.ts), "worst_cost_usd": format(self.worst_cost_usd, "f")})

    @classmethod
    def from_json(cls, line: Mapping[str, Any]) -> AttemptStarted:
        return cls(ts=parse_ts(line["ts"]), request_id=str(line["request_id"]), attempt=int(line["attempt"]),
                   team=str(line["team"]), app=str(line["app"]), key_id=str(line["key_id"]),
                   route=str(line["route"]), provider=str(line["provider"]), model=str(line["model"]),
                   endpoint=str(line["endpoint"]), stream=bool(line["stream"]), body_bytes=int(line["body_bytes"]),
                   input_tokens=int(line["input_tokens"]), max_output_tokens=int(line["max_output_tokens"]),
                   worst_cost_usd=Decimal(str(line["worst_cost_usd"])), price_source=str(line["price_source"]),
                   paid_by="client" if line.get("paid_by") == "client" else "gateway")


_STARTED_FIELDS = tuple(f.name for f in fields(AttemptStarted))


@dataclass(frozen=True, slots=True)
class AttemptFailed:
    """One journal line: an attempt that ended without an answer (refused, reset, timed out …)."""

    ts: float
    request_id: str
    attempt: int
    outcome: str
    kind: Literal["failed"] = "failed"

    def to_json(self) -> bytes:
        return orjson.dumps({"kind": self.kind, "ts": iso_utc(self.ts), "request_id": self.request_id,
                             "attempt": self.attempt, "outcome": self.outcome})


JournalEntry = AttemptStarted | AttemptFailed


def estimate_input_tokens(body_bytes: int) -> int:
    """Prompt tokens from the request body's size: counting them exactly costs too much before a call."""
    return math.ceil(body_bytes / BYTES_PER_TOKEN)


def requested_max_output(body: Mapping[str, Any]) -> int | None:
    """The output cap the request itself sets (chat, Messages, Responses), if any."""
    for name in ("max_completion_tokens", "max_tokens", "max_output_tokens"):
        value = body.get(name)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return None


def max_output_tokens(endpoint: str, body: Mapping[str, Any], model_max: int | None) -> int:
    """The most output tokens the attempt can be billed: the request's cap, the model's, or a default."""
    if endpoint == "embeddings":
        return 0
    return requested_max_output(body) or model_max or DEFAULT_MAX_OUTPUT_TOKENS


def still_open(journal: Iterable[Mapping[str, Any]], ledger: Iterable[Mapping[str, Any]]) -> list[AttemptStarted]:
    """Started attempts with no end: neither failed in the journal nor closed by a ledger record.

    A request record closes its attempts with index below its `attempts`; an interrupted attempt
    record closes its own index. Records written before the start (less a clock slack) belong to an
    earlier request that used the same id and close nothing.
    """
    starts: dict[tuple[str, int], list[AttemptStarted]] = {}
    for line in journal:
        kind = line.get("kind")
        key = (str(line.get("request_id")), _int(line.get("attempt")))
        if kind == "started":
            starts.setdefault(key, []).append(AttemptStarted.from_json(line))
        elif kind == "failed" and starts.get(key):
            starts[key].pop(0)
    by_request: dict[str, list[AttemptStarted]] = {}
    for waiting in starts.values():
        for s in waiting:
            by_request.setdefault(s.request_id, []).append(s)
    for line in ledger:
        pending = by_request.get(str(line.get("request_id")))
        if not pending:
            continue
        ts = parse_ts(line["ts"])
        if line.get("kind", "request") == "request":
            below = _int(line.get("attempts"))
            closes = [s for s in pending if s.attempt < below and ts >= s.ts - CLOCK_SLACK_S]
        elif line.get("outcome") == INTERRUPTED:
            closes = [s for s in pending if s.attempt == _int(line.get("attempt"))][:1]
        else:
            continue
        for s in closes:
            pending.remove(s)
    return sorted((s for waiting in by_request.values() for s in waiting), key=lambda s: (s.ts, s.attempt))


def interrupted_charge(started: AttemptStarted) -> tuple[int, int, Decimal]:
    """(input tokens, output tokens, cost) of an interrupted attempt: its worst case, as journalled."""
    return started.input_tokens, started.max_output_tokens, started.worst_cost_usd


def interrupted_records(attempts: Iterable[AttemptStarted]) -> list[CallRecord]:
    """One ledger record per interrupted attempt, dated when it started (its spend belongs to that day).

    The request's latest attempt is its `kind: request` record (the client did make the request);
    any earlier one still open (a hedge's other leg) is a `kind: attempt` record.
    """
    attempts = list(attempts)
    last: dict[str, int] = {}
    for s in attempts:
        last[s.request_id] = max(last.get(s.request_id, -1), s.attempt)
    out = []
    for s in attempts:
        input_tokens, output_tokens, cost = interrupted_charge(s)
        is_request = last[s.request_id] == s.attempt
        out.append(CallRecord(
            ts=s.ts, request_id=s.request_id, team=s.team, app=s.app, key_id=s.key_id, route=s.route,
            provider=s.provider, model=s.model, input_tokens=input_tokens, output_tokens=output_tokens,
            cached_input_tokens=0, cost_usd=cost, price_source=s.price_source, usage_source=INTERRUPTED,
            outcome=INTERRUPTED, attempts=s.attempt + 1, fallback=False, hedged=False, stream=s.stream,
            latency_s=0.0, ttft_s=None, kind="request" if is_request else "attempt", attempt=s.attempt,
            paid_by=s.paid_by))
    return out


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else -1
