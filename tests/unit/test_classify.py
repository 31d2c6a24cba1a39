"""Every failed attempt is classified once: retry the same deployment, fail over, or the caller's fault."""

from __future__ import annotations

import pytest

from gateway.providers.base import AttemptError, Failure
from gateway.routing.breaker import State
from gateway.routing.classify import Classification, Verdict, classify, worth_another_try


def status(code: int, body: bytes = b"", retry_after: float | None = None) -> AttemptError:
    return AttemptError(Failure.STATUS, status=code, body=body, retry_after_s=retry_after)


@pytest.mark.parametrize(
    ("err", "verdict", "reason"),
    [
        (AttemptError(Failure.RESET), Verdict.RETRY_SAME, "reset"),
        (AttemptError(Failure.CONNECT), Verdict.FAIL_OVER, "connect"),
        (AttemptError(Failure.TIMEOUT), Verdict.FAIL_OVER, "timeout"),
        (AttemptError(Failure.IDLE), Verdict.FAIL_OVER, "stalled"),
        (AttemptError(Failure.BROKEN), Verdict.FAIL_OVER, "broken"),
        (status(502), Verdict.RETRY_SAME, "server_error"),
        (status(503), Verdict.RETRY_SAME, "server_error"),
        (status(504), Verdict.RETRY_SAME, "server_error"),
        (status(500), Verdict.RETRY_SAME, "server_error"),
        (status(529), Verdict.RETRY_SAME, "server_error"),
        (status(429, retry_after=1), Verdict.RETRY_SAME, "rate_limited"),
        (status(429, retry_after=30), Verdict.FAIL_OVER, "rate_limited"),
        (status(429), Verdict.FAIL_OVER, "rate_limited"),
        (status(401), Verdict.FAIL_OVER, "upstream_config"),
        (status(404), Verdict.FAIL_OVER, "upstream_config"),
        (status(400, b'{"error": {"code": "context_length_exceeded"}}'), Verdict.FAIL_OVER, "context_window"),
        (status(400, b'{"error": {"code": "content_filter"}}'), Verdict.CALLER_FAULT, "refused"),
        (status(400, b'{"error": {"code": "content_policy_violation"}}'), Verdict.CALLER_FAULT, "refused"),
        (status(400, b'{"error": {"message": "does not support assistant message prefill"}}'), Verdict.FAIL_OVER,
         "prefill_rejected"),
        (status(400, b'{"error": {"code": null}}'), Verdict.CALLER_FAULT, "caller"),
        (status(422), Verdict.CALLER_FAULT, "caller"),
    ],
)
def test_classification(err: AttemptError, verdict: Verdict, reason: str) -> None:
    c = classify(err, short_retry_after_s=2.0)
    assert (c.verdict, c.reason) == (verdict, reason)


def test_caller_faults_and_context_limits_do_not_count_against_the_deployment() -> None:
    assert not classify(status(400)).penalise
    assert not classify(status(400, b"context_length_exceeded")).penalise
    assert classify(status(503)).penalise


def test_a_content_filter_refusal_fails_over_only_where_the_route_chose_it() -> None:
    refusal = status(400, b'{"error": {"code": "content_filter"}}')
    assert classify(refusal, on_content_filter="fail_over").verdict is Verdict.FAIL_OVER
    assert classify(refusal).verdict is Verdict.CALLER_FAULT
    assert not classify(refusal).penalise


SERVER_ERROR = Classification(Verdict.RETRY_SAME, "server_error")
RESET = Classification(Verdict.RETRY_SAME, "reset")


def test_a_5xx_on_a_healthy_deployment_is_tried_there_once_more() -> None:
    assert worth_another_try(SERVER_ERROR, State.HEALTHY, tries=1, max_tries=3)
    assert not worth_another_try(SERVER_ERROR, State.HEALTHY, tries=2, max_tries=3)


def test_a_5xx_on_a_degraded_or_probing_deployment_fails_over_at_once() -> None:
    assert not worth_another_try(SERVER_ERROR, State.DEGRADED, tries=1, max_tries=3)
    assert not worth_another_try(SERVER_ERROR, State.PROBING, tries=1, max_tries=3)


def test_other_blips_are_retried_up_to_the_route_s_attempts_unless_ejected() -> None:
    assert worth_another_try(RESET, State.DEGRADED, tries=2, max_tries=3)
    assert not worth_another_try(RESET, State.DEGRADED, tries=3, max_tries=3)
    assert not worth_another_try(RESET, State.EJECTED, tries=1, max_tries=3)
    assert not worth_another_try(Classification(Verdict.FAIL_OVER, "timeout"), State.HEALTHY, 1, 3)
