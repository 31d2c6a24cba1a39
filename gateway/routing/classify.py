"""Every failed attempt is classified here, once: retry the same deployment, fail over, or hand the
caller's own mistake back as is."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from gateway.providers.base import AttemptError, Failure


class Verdict(Enum):
    RETRY_SAME = "retry_same"       # a blip: reset, 502/503/504, 429 with a short Retry-After
    FAIL_OVER = "fail_over"         # this deployment cannot answer now: try the next one
    CALLER_FAULT = "caller_fault"   # the request itself is wrong: return it as is, no penalty


@dataclass(frozen=True, slots=True)
class Classification:
    verdict: Verdict
    reason: str                     # a bounded word for metrics and messages
    penalise: bool = True           # does it count against the deployment's health?


# Upstream 401/403/404 are the gateway's configuration at fault (its key, its model name), not the
# caller's: another deployment may well answer.
_CONFIG_STATUSES = frozenset({401, 403, 404})
_BLIP_STATUSES = frozenset({502, 503, 504})


def classify(err: AttemptError, short_retry_after_s: float = 2.0) -> Classification:
    f = err.failure
    if f is Failure.RESET:
        return Classification(Verdict.RETRY_SAME, "reset")
    if f is Failure.CONNECT:
        return Classification(Verdict.FAIL_OVER, "connect")
    if f is Failure.TIMEOUT:
        return Classification(Verdict.FAIL_OVER, "timeout")
    if f is Failure.IDLE:
        return Classification(Verdict.FAIL_OVER, "stalled")
    if f is Failure.BROKEN:
        return Classification(Verdict.FAIL_OVER, "broken")
    status = err.status or 0
    if status == 429:
        if err.retry_after_s is not None and err.retry_after_s <= short_retry_after_s:
            return Classification(Verdict.RETRY_SAME, "rate_limited")
        return Classification(Verdict.FAIL_OVER, "rate_limited")
    if status in _BLIP_STATUSES:
        return Classification(Verdict.RETRY_SAME, "server_error")
    if status >= 500:
        return Classification(Verdict.FAIL_OVER, "server_error")
    if status in _CONFIG_STATUSES:
        return Classification(Verdict.FAIL_OVER, "upstream_config")
    if status == 408:
        return Classification(Verdict.RETRY_SAME, "timeout")
    body = err.body or b""
    if b"context_length_exceeded" in body or b"context window" in body.lower():
        # Another target with a larger window may take it; no fault of the deployment.
        return Classification(Verdict.FAIL_OVER, "context_window", penalise=False)
    if b"content_filter" in body or b"content_policy" in body:
        return Classification(Verdict.FAIL_OVER, "content_policy", penalise=False)
    return Classification(Verdict.CALLER_FAULT, "caller", penalise=False)
