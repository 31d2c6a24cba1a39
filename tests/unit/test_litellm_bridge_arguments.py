"""What a client's body may set in a call through litellm: the OpenAI request fields, never litellm's own
configuration (where to send the request, with which credential, with which headers)."""

from __future__ import annotations

import typing

from openai.types import completion_create_params, embedding_create_params
from openai.types.chat import completion_create_params as chat_create_params

from gateway.core.deployment import Deployment
from gateway.policy.schema import Timeouts
from gateway.providers.base import Call
from gateway.providers.litellm_bridge import CLIENT_FIELDS, LitellmBridge

BEDROCK = Deployment(provider="bedrock", model="anthropic.claude-v2", kind="bedrock", base_url="",
                     timeouts=Timeouts(), api_key=None)


def arguments(body: dict[str, typing.Any], deployment: Deployment = BEDROCK) -> dict[str, typing.Any]:
    call = Call(endpoint="chat", body={"model": "chat", "messages": [{"role": "user", "content": "hi"}], **body},
                stream=False, request_id="r1")
    return LitellmBridge._arguments(deployment, call, 10.0)


def test_a_client_cannot_point_litellm_at_another_host_or_hand_it_headers_or_credentials() -> None:
    kwargs = arguments({"api_base": "http://127.0.0.1:9/steal", "base_url": "http://127.0.0.1:9",
                        "extra_headers": {"x-leak": "1"}, "api_key": "theirs", "aws_region_name": "xx",
                        "mock_response": "free", "callbacks": ["x"], "custom_llm_provider": "openai",
                        "num_retries": 9, "temperature": 0.2})
    assert kwargs["temperature"] == 0.2 and kwargs["num_retries"] == 0
    for key in ("api_base", "base_url", "extra_headers", "api_key", "aws_region_name", "mock_response",
                "callbacks", "custom_llm_provider"):
        assert key not in kwargs, key
    assert kwargs["model"] == "bedrock/anthropic.claude-v2"


def test_the_deployment_s_own_key_and_base_are_what_litellm_gets() -> None:
    own = Deployment(provider="cohere", model="command-r", kind="cohere", base_url="http://127.0.0.1:1/v1",
                     timeouts=Timeouts(), api_key="sk-own")
    kwargs = arguments({"api_base": "http://127.0.0.1:9", "api_key": "theirs"}, own)
    assert kwargs["api_base"] == "http://127.0.0.1:1/v1" and kwargs["api_key"] == "sk-own"


def test_every_openai_request_field_passes() -> None:
    own = {"model", "messages", "prompt", "input", "stream"}
    documented = set()
    for params in (chat_create_params.CompletionCreateParamsBase, completion_create_params.CompletionCreateParamsBase,
                   embedding_create_params.EmbeddingCreateParams):
        documented |= set(typing.get_type_hints(params)) - own
    assert documented <= CLIENT_FIELDS, sorted(documented - CLIENT_FIELDS)
    body = {name: 1 for name in sorted(documented)}
    assert set(arguments(body)) >= documented
