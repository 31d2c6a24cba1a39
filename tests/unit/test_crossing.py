"""The crossing between a client's API and a deployment's wire, with a recording upstream client."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from gateway.core.deployment import Deployment
from gateway.policy.schema import Timeouts
from gateway.providers.base import AttemptError, Call, Failure, Prior, Reply
from gateway.providers.crossing import Crossing

CHAT_ANSWER = orjson.dumps({"id": "c", "model": "up", "choices": [
    {"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 3, "completion_tokens": 1}})
PRIOR = Prior("resp_1", "openai", (
    {"type": "message", "role": "user", "content": "one"},
    {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "enc:openai:1"},
    {"type": "message", "id": "msg_1", "role": "assistant", "content": [{"type": "output_text", "text": "two"}]}))


class Recorder:
    def __init__(self, body: bytes = CHAT_ANSWER) -> None:
        self.body = body
        self.calls: list[Call] = []

    async def open(self, deployment: Deployment, call: Call, budget_s: float) -> Reply:
        self.calls.append(call)
        return Reply(200, body=self.body)


def deployment(provider: str, responses: bool) -> Deployment:
    return Deployment(provider, "m", "openai", "http://127.0.0.1:1/v1", Timeouts(), responses=responses)


def responses_call(**fields: Any) -> Call:
    return Call("responses", {"model": "route", "input": "three", **fields}, False, "rid")


async def test_the_origin_gets_previous_response_id_as_the_client_sent_it() -> None:
    upstream = Recorder(b'{"object": "response"}')
    call = Call("responses", {"model": "route", "input": "three", "previous_response_id": "resp_1"}, False, "r", PRIOR)
    await Crossing(lambda d: upstream, upstream).open(deployment("openai", True), call, 10)
    assert upstream.calls[0] is call


async def test_another_responses_provider_gets_the_chain_without_the_origins_reasoning() -> None:
    upstream = Recorder(b'{"object": "response"}')
    call = Call("responses", {"model": "route", "input": "three", "previous_response_id": "resp_1"}, False, "r", PRIOR)
    await Crossing(lambda d: upstream, upstream).open(deployment("azure", True), call, 10)
    sent = upstream.calls[0].body
    assert "previous_response_id" not in sent
    assert [item.get("type") for item in sent["input"]] == ["message", "message", None]
    assert not any("id" in item for item in sent["input"])
    assert sent["input"][-1] == {"role": "user", "content": "three"}


async def test_a_chat_only_target_gets_chat_and_the_client_gets_a_response() -> None:
    upstream = Recorder()
    reply = await Crossing(lambda d: upstream, upstream).open(deployment("local", False), responses_call(), 10)
    assert upstream.calls[0].endpoint == "chat"
    assert upstream.calls[0].body["messages"] == [{"role": "user", "content": "three"}]
    answer = orjson.loads(reply.body)
    assert answer["object"] == "response" and answer["output"][0]["content"][0]["text"] == "hi"


async def test_a_chat_answer_that_is_not_one_is_a_broken_attempt() -> None:
    upstream = Recorder(b"<html>oops</html>")
    with pytest.raises(AttemptError) as caught:
        await Crossing(lambda d: upstream, upstream).open(deployment("local", False), responses_call(), 10)
    assert caught.value.failure is Failure.BROKEN


async def test_a_request_the_crossing_cannot_carry_makes_the_target_unfit_and_is_never_sent() -> None:
    upstream = Recorder()
    with pytest.raises(AttemptError) as caught:
        await Crossing(lambda d: upstream, upstream).open(deployment("local", False),
                                                responses_call(background=True), 10)
    assert caught.value.failure is Failure.UNFIT and upstream.calls == []
    assert caught.value.param == "background"


async def test_a_crossed_answer_names_what_it_dropped() -> None:
    upstream = Recorder()
    reply = await Crossing(lambda d: upstream, upstream).open(
        deployment("local", False), responses_call(tools=[{"type": "web_search"}], include=["reasoning.encrypted_content"]), 10)
    assert set(reply.dropped) == {"web_search", "reasoning"}
    assert "tools" not in upstream.calls[0].body


async def test_a_messages_request_crosses_to_chat_and_back_with_anthropics_error_shape() -> None:
    upstream = Recorder()
    call = Call("messages", {"model": "route", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]},
                False, "r")
    reply = await Crossing(lambda d: upstream, upstream).open(deployment("local", False), call, 10)
    assert orjson.loads(reply.body)["content"] == [{"type": "text", "text": "hi"}]

    class Failing:
        async def open(self, deployment: Deployment, call: Call, budget_s: float) -> Reply:
            raise AttemptError(Failure.STATUS, status=429, body=b'{"error": {"message": "slow down"}}')

    with pytest.raises(AttemptError) as caught:
        await Crossing(lambda d: Failing(), Failing()).open(deployment("local", False), call, 10)
    assert orjson.loads(caught.value.body or b"") == {"type": "error", "error": {"type": "rate_limit_error",
                                                                                 "message": "slow down"}}


class SealedReasoning(Recorder):
    """A Responses server that cannot read another organisation's encrypted reasoning."""

    async def open(self, deployment: Deployment, call: Call, budget_s: float) -> Reply:
        self.calls.append(call)
        if any(item.get("type") == "reasoning" for item in call.body["input"]):
            raise AttemptError(Failure.STATUS, status=400, body=b'{"error": {"code": "invalid_encrypted_content", '
                                                                b'"message": "could not be verified"}}')
        return Reply(200, body=b'{"object": "response"}')


CODEX_TURN = [{"type": "message", "role": "user", "content": "one"},
              {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "sealed-by-openai"},
              {"type": "function_call", "call_id": "c1", "name": "exec_command", "arguments": "{}"},
              {"type": "function_call_output", "call_id": "c1", "output": "done"}]


async def test_reasoning_another_deployment_sealed_is_left_out_on_a_second_try_and_named() -> None:
    upstream = SealedReasoning()
    call = Call("responses", {"model": "route", "store": False, "input": CODEX_TURN}, False, "r")
    reply = await Crossing(lambda d: upstream, upstream).open(deployment("azure", True), call, 10)
    assert len(upstream.calls) == 2 and reply.dropped == ("reasoning",)
    assert [i["type"] for i in upstream.calls[1].body["input"]] == ["message", "function_call", "function_call_output"]


async def test_a_400_about_something_else_is_not_tried_again() -> None:
    call = Call("responses", {"model": "route", "input": CODEX_TURN}, False, "r")
    failing = AttemptError(Failure.STATUS, status=400, body=b'{"error": {"message": "bad temperature"}}')

    class Refusing(Recorder):
        async def open(self, deployment: Deployment, call: Call, budget_s: float) -> Reply:
            self.calls.append(call)
            raise failing

    refusing = Refusing()
    with pytest.raises(AttemptError):
        await Crossing(lambda d: refusing, refusing).open(deployment("azure", True), call, 10)
    assert len(refusing.calls) == 1
