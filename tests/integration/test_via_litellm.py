"""`via: litellm` takes a kind the gateway speaks natively through litellm's adapter instead."""

from __future__ import annotations

from pathlib import Path

import openai
import pytest

from gateway.serving.embedded import EmbeddedGateway
from gateway.policy.load import PolicyError, load_policy
from tests.conftest import UPSTREAM_KEY, GatewayFactory, write_policy

POLICY = f"""
version: 1
providers:
  native:
    kind: sim
    api_key: {UPSTREAM_KEY}
    sim: {{wire: anthropic, reply_tokens: 5}}
  adapted:
    kind: sim
    via: litellm
    api_key: {UPSTREAM_KEY}
    sim: {{wire: anthropic, reply_tokens: 5}}
routes:
  native: {{targets: [{{provider: native, model: claude-haiku-4-5}}]}}
  adapted: {{targets: [{{provider: adapted, model: claude-haiku-4-5}}]}}
"""


@pytest.fixture
def gw(start_gateway: GatewayFactory) -> EmbeddedGateway:
    return start_gateway(POLICY)


def test_both_routes_answer_the_same_and_only_one_goes_through_litellm(gw: EmbeddedGateway) -> None:
    client = openai.OpenAI(base_url=gw.base_url, api_key="k", max_retries=0)
    answers = [client.chat.completions.create(model=route, messages=[{"role": "user", "content": "hi"}])
               for route in ("native", "adapted")]
    assert [a.choices[0].message.content for a in answers] == ["native t1 t2 t3 t4", "adapted t1 t2 t3 t4"]
    native, adapted = gw.sim("native").requests[-1], gw.sim("adapted").requests[-1]
    # litellm fills in max_tokens from its price map (claude-haiku-4-5: 64,000); the native wire's
    # default is 4096; and litellm names itself in User-Agent.
    assert (native.body["max_tokens"], adapted.body["max_tokens"]) == (4096, 64000)
    assert "User-Agent" not in native.headers and adapted.headers["User-Agent"].startswith("litellm/")


def test_via_litellm_on_a_kind_litellm_already_serves_is_refused(tmp_path: Path) -> None:
    path = write_policy(tmp_path, """
version: 1
providers:
  bed: {kind: bedrock, via: litellm}
routes:
  chat: {targets: [{provider: bed, model: m}]}
""")
    with pytest.raises(PolicyError, match=r"policy.yaml:3: providers.bed.via: 'via: litellm' is for kinds"):
        load_policy(path)
