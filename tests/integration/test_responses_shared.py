"""With shared state, a conversation started on one replica continues with `previous_response_id`
on another: the Responses the gateway served are kept in Redis (a real redis-server here)."""

from __future__ import annotations

import openai

from tests.conftest import GatewayFactory
from tests.redis_server import RedisServer


def policy(redis: RedisServer) -> str:
    return f"""
    version: 1
    state: {{redis_url: "{redis.url}", timeout_ms: 200}}
    providers:
      local:
        kind: sim
        responses: false
        sim: {{wire: openai, reply_tokens: 4}}
    routes:
      local: {{targets: [{{provider: local, model: llama}}]}}
    """


def test_a_conversation_continues_on_another_replica(start_gateway: GatewayFactory, redis_server: RedisServer) -> None:
    one, two = start_gateway(policy(redis_server)), start_gateway(policy(redis_server))
    first = openai.OpenAI(base_url=one.base_url, api_key="k", max_retries=0).responses.create(
        model="local", input="my name is Ada")
    second = openai.OpenAI(base_url=two.base_url, api_key="k", max_retries=0).responses.create(
        model="local", input="what is my name?", previous_response_id=first.id)
    assert second.previous_response_id == first.id
    sent = two.sim("local").requests[-1].body["messages"]
    assert [m["content"] for m in sent] == ["my name is Ada", first.output_text, "what is my name?"]


def test_while_redis_is_down_a_replica_continues_the_conversations_it_served(
        start_gateway: GatewayFactory, redis_server: RedisServer) -> None:
    gw = start_gateway(policy(redis_server))
    client = openai.OpenAI(base_url=gw.base_url, api_key="k", max_retries=0)
    first = client.responses.create(model="local", input="my name is Ada")
    redis_server.pause()
    try:
        second = client.responses.create(model="local", input="what is my name?", previous_response_id=first.id)
    finally:
        redis_server.resume()
    assert second.output_text.split()[0] == "local"
    assert "my name is Ada" in str(gw.sim("local").requests[-1].body["messages"])
