"""OpenAI's rate-limit headers, as the limiter writes them."""

from __future__ import annotations

import pytest

from gateway.limiting.limiter import duration_text


@pytest.mark.parametrize(("seconds", "text"), [(0.02, "20ms"), (1.0, "1s"), (1.2, "2s"), (59.5, "1m0s"),
                                               (360.0, "6m0s")])
def test_reset_times_are_written_as_openai_writes_them(seconds: float, text: str) -> None:
    assert duration_text(seconds) == text
