"""The Anthropic fidelity corpus covers what applications send: enough cases, streams, faults and parallel tools."""

from __future__ import annotations

from tests.fidelity.corpus import CASES


def test_the_corpus_covers_what_applications_send() -> None:
    assert len(CASES) >= 30
    bodies = [c.body for c in CASES]
    assert sum(bool(b.get("stream")) for b in bodies) >= 8
    assert sum(c.fault is not None for c in CASES) >= 6
    assert any(len(c.expect.tool_calls) > 1 for c in CASES)
