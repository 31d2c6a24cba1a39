"""Native Azure OpenAI (kind: azure): the OpenAI fast path at Azure's paths, with Azure's key header."""

from __future__ import annotations

import pytest

from gateway.serving.embedded import EmbeddedGateway
from gateway.sim import Fault
from tests.conftest import UPSTREAM_KEY, GatewayFactory, sdk

POLICY = f"""
version: 1
providers:
  azure:
    kind: sim
    api_key: {UPSTREAM_KEY}
    api_version: "2024-10-21"
    sim: {{wire: azure, reply_tokens: 5}}
  backup:
    kind: sim
    sim: {{wire: openai, reply_tokens: 3}}
routes:
  chat:
    targets:
      - {{provider: azure, model: my-gpt4o-deployment}}
      - {{provider: backup, model: small}}
  embed:
    targets:
      - {{provider: azure, model: my-embedding-deployment}}
"""
HELLO = [{"role": "user", "content": "hello"}]


@pytest.fixture
def gw(start_gateway: GatewayFactory) -> EmbeddedGateway:
    return start_gateway(POLICY)



def test_a_chat_goes_to_the_deployment_path_with_the_api_version_and_api_key(gw: EmbeddedGateway) -> None:
    raw = sdk(gw).chat.completions.with_raw_response.create(model="chat", messages=HELLO)
    assert raw.headers["x-recloser-provider"] == "azure"
    assert raw.parse().choices[0].message.content == "azure t1 t2 t3 t4"
    seen = gw.sim("azure").requests[-1]
    assert seen.path == "/openai/deployments/my-gpt4o-deployment/chat/completions"
    assert seen.headers["api-key"] == UPSTREAM_KEY and "Authorization" not in seen.headers


def test_a_stream_is_relayed_from_azure(gw: EmbeddedGateway) -> None:
    chunks = list(sdk(gw).chat.completions.create(model="chat", messages=HELLO, stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "azure t1 t2 t3 t4"


def test_embeddings_go_to_the_embedding_deployment(gw: EmbeddedGateway) -> None:
    result = sdk(gw).embeddings.create(model="embed", input="hi")
    assert len(result.data[0].embedding) == 8
    assert gw.sim("azure").requests[-1].path == "/openai/deployments/my-embedding-deployment/embeddings"


def test_an_azure_outage_fails_over(gw: EmbeddedGateway) -> None:
    gw.set_fault("azure", Fault(status=503))
    raw = sdk(gw).chat.completions.with_raw_response.create(model="chat", messages=HELLO)
    assert raw.headers["x-recloser-provider"] == "backup"
