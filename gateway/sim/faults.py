"""Scripted faults for simulated upstreams, and the pure decision of what one request gets."""

from __future__ import annotations

import random
from dataclasses import dataclass


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
    dumb: bool = False                     # fast, status 200, fluent but wrong answers and broken tool calls
    duration_s: float | None = None        # revert to healthy by itself after this long
    times: int | None = None               # with status: only the next N requests fail, then healthy
    error_code: str | None = None          # with status: the error body's `code` (e.g. content_filter)
    no_done: bool = False                  # end streams cleanly after the finish reason, without [DONE]
    end_early_after_chunks: int | None = None  # end the body cleanly after N content chunks, no finish

    @property
    def healthy(self) -> bool:
        return self == Fault()


HEALTHY = Fault()


def fails_now(fault: Fault, rng: random.Random, failed_so_far: int = 0) -> bool:
    """Does this request get the scripted error status? (`failed_so_far`: under this fault)"""
    if fault.status is None:
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
