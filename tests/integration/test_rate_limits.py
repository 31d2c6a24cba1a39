"""Rate limits through a running gateway: tokens counted from what answers used, OpenAI's 429 and headers."""

from __future__ import annotations

import openai
import pytest

from tests.conftest import GatewayFactory

POLICY = """
version: 1
providers:
  up:
    kind: sim
    sim: {reply_tokens: 8}
routes:
  chat: {targets: [{provider: up, model: m}]}
rate_limits:
  - {name: default-tpm, team: default, tpm: 40}
"""
HELLO = [{"role": "user", "content": "hello"}]


def test_tpm_counts_the_tokens_each_answer_used_and_then_refuses(start_gateway: GatewayFactory) -> None:
    gw = start_gateway(POLICY)
    c = openai.OpenAI(base_url=gw.base_url, api_key="k", max_retries=0)
    used = 0
    remaining = []
    while used < 40:
        raw = c.chat.completions.with_raw_response.create(model="chat", messages=HELLO)  # type: ignore[arg-type]
        remaining.append(int(raw.headers["x-ratelimit-remaining-tokens"]))
        usage = raw.parse().usage
        assert usage is not None
        used += usage.prompt_tokens + usage.completion_tokens
        assert len(remaining) < 10
    # Each answer's headers speak of the tokens used before it: what the earlier answers reported.
    assert remaining[0] == 40 and remaining[1] < 40
    with pytest.raises(openai.RateLimitError) as refused:
        c.chat.completions.create(model="chat", messages=HELLO)  # type: ignore[arg-type]
    assert refused.value.type == "tokens" and refused.value.code == "rate_limit_exceeded"
    assert refused.value.response.headers["x-ratelimit-remaining-tokens"] == "0"
    assert 1 <= int(refused.value.response.headers["retry-after"]) <= 60


def test_a_stream_is_counted_too(start_gateway: GatewayFactory) -> None:
    gw = start_gateway(POLICY)
    c = openai.OpenAI(base_url=gw.base_url, api_key="k", max_retries=0)
    for _ in range(10):
        try:
            for _chunk in c.chat.completions.create(model="chat", messages=HELLO, stream=True):  # type: ignore[call-overload]
                pass
        except openai.RateLimitError as exc:
            assert exc.type == "tokens"
            return
    pytest.fail("ten streams of about 17 tokens each never reached a limit of 40 tokens a minute")
