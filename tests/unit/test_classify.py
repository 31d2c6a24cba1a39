"""Every failed attempt is classified once: retry the same deployment, fail over, or the caller's fault."""

from __future__ import annotations

import pytest

from gateway.providers.base import AttemptError, Failure
from gateway.routing.classify import Verdict, classify


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
        (status(500), Verdict.FAIL_OVER, "server_error"),
        (status(529), Verdict.FAIL_OVER, "server_error"),
        (status(429, retry_after=1), Verdict.RETRY_SAME, "rate_limited"),
        (status(429, retry_after=30), Verdict.FAIL_OVER, "rate_limited"),
        (status(429), Verdict.FAIL_OVER, "rate_limited"),
        (status(401), Verdict.FAIL_OVER, "upstream_config"),
        (status(404), Verdict.FAIL_OVER, "upstream_config"),
        (status(400, b'{"error": {"code": "context_length_exceeded"}}'), Verdict.FAIL_OVER, "context_window"),
        (status(400, b'{"error": {"code": "content_filter"}}'), Verdict.FAIL_OVER, "content_policy"),
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
