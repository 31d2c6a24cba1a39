"""What metering records: token usage, and one spend ledger line per request or charged attempt."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Literal

import orjson


@dataclass(frozen=True, slots=True)
class Usage:
    input_tokens: int = 0          # all prompt tokens, cached ones included
    output_tokens: int = 0
    cached_input_tokens: int = 0   # prompt-cache reads, a part of input_tokens
    source: Literal["reported", "counted", "none"] = "reported"
    cache_write_input_tokens: int = 0   # prompt-cache writes (Anthropic's cache_creation), a part of input_tokens


@dataclass(frozen=True, slots=True)
class CallRecord:
    """One ledger line: a client request, a failed attempt / losing hedge leg that consumed tokens, a
    quality canary call (team `recloser-canary`, never charged to a team's budget), or an attempt a
    killed gateway left in flight (`outcome: interrupted`, written at the next start)."""

    ts: float                  # wall-clock seconds since the epoch; written as ISO-8601 UTC
    request_id: str
    team: str
    app: str
    key_id: str
    route: str
    provider: str
    model: str
    input_tokens: int
    output_tokens: int
    cached_input_tokens: int
    cost_usd: Decimal
    price_source: str
    usage_source: str
    outcome: str               # "ok", "error", "cancelled", "client_gone", "hedge_lost", "failed_attempt", …
    attempts: int
    fallback: bool
    hedged: bool
    stream: bool
    latency_s: float
    ttft_s: float | None
    kind: Literal["request", "attempt", "canary"] = "request"
    # How the gateway rescued (or refused) the answer: refused, prefill_rejected, resumed, restarted, probe.
    events: tuple[str, ...] = ()
    degraded_tier: int | None = None   # the answer came from a target of this tier, below the route's best
    cache_write_input_tokens: int = 0   # a part of input_tokens, priced at the cache-write price
    attempt: int | None = None   # an interrupted attempt's index (see interrupted.py); absent from other lines
    # A local pool's answer: what its tokens would have cost at the route's first frontier target
    # (gateway/metering/savings.py); absent from other lines.
    savings_usd: Decimal | None = None
    # Whose money: the gateway's keys, or the caller's own credentials (`credentials: client`), in
    # which case cost_usd is the list price the caller's subscription or key paid, not the organisation.
    paid_by: Literal["gateway", "client"] = "gateway"
    held_s: float | None = None   # how long a held request waited for a target to come back; absent from other lines

    def to_json(self) -> bytes:
        """One JSON object; the cost is a decimal string (exact, never a float), the time ISO-8601 UTC."""
        data: dict[str, Any] = {name: getattr(self, name) for name in _FIELDS}
        data["ts"] = iso_utc(self.ts)
        data["cost_usd"] = format(self.cost_usd, "f")
        data["latency_s"] = round(self.latency_s, 6)
        data["ttft_s"] = None if self.ttft_s is None else round(self.ttft_s, 6)
        if self.attempt is None:
            del data["attempt"]
        if self.held_s is None:
            del data["held_s"]
        else:
            data["held_s"] = round(self.held_s, 3)
        if self.savings_usd is None:
            del data["savings_usd"]
        else:
            data["savings_usd"] = format(self.savings_usd, "f")
        return orjson.dumps(data)

    @classmethod
    def from_json(cls, line: Mapping[str, Any]) -> CallRecord:
        """The record a parsed ledger line describes (times are kept to the millisecond written)."""
        values = {name: line[name] for name in _FIELDS if name in line}
        values["ts"] = parse_ts(line["ts"])
        values["cost_usd"] = Decimal(str(line["cost_usd"]))
        values["events"] = tuple(line.get("events") or ())
        if line.get("savings_usd") is not None:
            values["savings_usd"] = Decimal(str(line["savings_usd"]))
        return cls(**values)


_FIELDS = tuple(f.name for f in fields(CallRecord))


def iso_utc(ts: float) -> str:
    """`2026-11-23T12:00:00.000Z`: sortable as text, so a day is its first ten characters."""
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_ts(value: Any) -> float:
    """Seconds since the epoch from a ledger `ts`: an ISO-8601 string (ours) or a number."""
    if isinstance(value, (int, float)):
        return float(value)
    moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    if moment.tzinfo is None:   # a ledger time without a zone is UTC: that is what we write
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()
