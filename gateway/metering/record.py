"""What metering records: token usage, and one spend ledger line per request or charged attempt."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Literal

import orjson


@dataclass(frozen=True, slots=True)
class Usage:
    input_tokens: int = 0          # all prompt tokens, cached ones included
    output_tokens: int = 0
    cached_input_tokens: int = 0
    source: Literal["reported", "counted", "none"] = "reported"


@dataclass(frozen=True, slots=True)
class CallRecord:
    """One ledger line: a client request, or a failed attempt / losing hedge leg that consumed tokens."""

    ts: float
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
    outcome: str
    attempts: int
    fallback: bool
    hedged: bool
    stream: bool
    latency_s: float
    ttft_s: float | None
    kind: Literal["request", "attempt"] = "request"

    def to_json(self) -> bytes:
        data = asdict(self)
        data["ts"] = datetime.fromtimestamp(self.ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        data["cost_usd"] = format(self.cost_usd, "f")   # a string: exact, never a float
        data["latency_s"] = round(self.latency_s, 6)
        data["ttft_s"] = None if self.ttft_s is None else round(self.ttft_s, 6)
        return orjson.dumps(data)
