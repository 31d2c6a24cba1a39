"""Every failed attempt is classified here, once: retry the same deployment, fail over, or hand the
caller's own mistake back as is."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from gateway.providers.base import AttemptError, Failure
from gateway.routing.breaker import State


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


def classify(err: AttemptError, short_retry_after_s: float = 2.0, on_content_filter: str = "answer") -> Classification:
    """What to do after `err`. A safety refusal is the provider's answer unless the route chose
    `on_content_filter: fail_over`: routing around one provider's safety system is the policy
    owner's decision, never a default."""
    f = err.failure
    if f is Failure.RESET:
        return Classification(Verdict.RETRY_SAME, "reset")
    if f is Failure.CONNECT:
        return Classification(Verdict.FAIL_OVER, "connect")
    if f is Failure.TIMEOUT:
        return Classification(Verdict.FAIL_OVER, "timeout")
    if f is Failure.PAUSED:   # the gateway's own pauses took the time: the same deployment may well answer
        return Classification(Verdict.RETRY_SAME, "gateway_paused", penalise=False)
    if f is Failure.IDLE:
        return Classification(Verdict.FAIL_OVER, "stalled")
    if f is Failure.BROKEN:
        return Classification(Verdict.FAIL_OVER, "broken")
    if f is Failure.DEFECTIVE:   # another target may well answer: the same one would likely answer the same
        return Classification(Verdict.FAIL_OVER, "defective_answer")
    if f is Failure.UNFIT:   # the request, not the deployment: the next target may well take it
        return Classification(Verdict.FAIL_OVER, "unfit", penalise=False)
    if f is Failure.CREDENTIAL:   # the caller's own credential, not the deployment: that caller goes elsewhere
        return Classification(Verdict.FAIL_OVER, "credential_limited" if err.status == 429 else "credential_refused",
                              penalise=False)
    status = err.status or 0
    if status == 429:
        if err.retry_after_s is not None and err.retry_after_s <= short_retry_after_s:
            return Classification(Verdict.RETRY_SAME, "rate_limited")
        return Classification(Verdict.FAIL_OVER, "rate_limited")
    if status >= 500:  # retried once where the deployment is healthy (see worth_another_try)
        return Classification(Verdict.RETRY_SAME, "server_error")
    if status in _CONFIG_STATUSES:
        return Classification(Verdict.FAIL_OVER, "upstream_config")
    if status == 408:
        return Classification(Verdict.RETRY_SAME, "timeout")
    body = err.body or b""
    if b"context_length_exceeded" in body or b"context window" in body.lower():
        # Another target with a larger window may take it; no fault of the deployment.
        return Classification(Verdict.FAIL_OVER, "context_window", penalise=False)
    if b"content_filter" in body or b"content_policy" in body:
        verdict = Verdict.FAIL_OVER if on_content_filter == "fail_over" else Verdict.CALLER_FAULT
        return Classification(verdict, "refused", penalise=False)
    if status == 400 and b"prefill" in body:
        # The target does not continue a trailing assistant message (newer Claude models).
        return Classification(Verdict.FAIL_OVER, "prefill_rejected", penalise=False)
    return Classification(Verdict.CALLER_FAULT, "caller", penalise=False)


def worth_another_try(c: Classification, state: State, tries: int, max_tries: int) -> bool:
    """May the same deployment be tried again after `tries` tries of this request failed?

    A 5xx on a healthy deployment is most often a one-off: one more try there keeps the
    conversation on its model. A second 5xx, or one from a deployment already degraded, fails over.
    Other blips (a reset, a short 429, a 408) are retried up to `max_tries`, unless it is ejected."""
    if c.verdict is not Verdict.RETRY_SAME or state is State.EJECTED or tries >= max_tries:
        return False
    if c.reason == "server_error":
        return state is State.HEALTHY and tries < 2
    return True
