"""A Responses stream broken after bytes reached the client is restarted on the next target and
stitched into one stream: one Response, one message, contiguous sequence numbers, the whole text."""

from __future__ import annotations

import openai
import pytest

from gateway.sim import Fault
from tests.conftest import GatewayFactory


def policy(second_speaks_responses: bool, second_word: str = "same") -> str:
    return f"""
    version: 1
    providers:
      first: {{kind: sim, sim: {{wire: openai, reply_tokens: 8, reply_word: same}}}}
      second:
        kind: sim
        responses: {str(second_speaks_responses).lower()}
        sim: {{wire: openai, reply_tokens: 8, reply_word: {second_word}}}
    routes:
      gpt:
        targets: [{{provider: first, model: gpt-4.1}}, {{provider: second, model: gpt-4.1}}]
        retry: {{attempts: 1}}
    """


@pytest.mark.parametrize("second_speaks_responses", [True, False], ids=["responses", "chat-only"])
def test_a_broken_stream_is_restarted_and_stitched_into_one_response(start_gateway: GatewayFactory,
                                                                     second_speaks_responses: bool) -> None:
    gw = start_gateway(policy(second_speaks_responses))
    gw.set_fault("first", Fault(cut_after_chunks=3))
    client = openai.OpenAI(base_url=gw.base_url, api_key="k", max_retries=0)
    events = list(client.responses.create(model="gpt", input="hello there", stream=True))
    kinds = [e.type for e in events]
    assert kinds.count("response.created") == 1 and kinds.count("response.output_item.added") == 1
    assert kinds[-1] == "response.completed"
    assert [e.sequence_number for e in events] == list(range(len(events)))
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert text == "same t1 t2 t3 t4 t5 t6 t7"
    final = events[-1].response  # type: ignore[union-attr]
    assert final.id == events[0].response.id  # type: ignore[union-attr]
    assert final.output_text == text
    assert {e.item_id for e in events if e.type == "response.output_text.delta"} == {final.output[0].id}
    assert gw.sim("second").request_count() == 1


def test_a_restart_that_says_something_else_ends_in_an_error_event(start_gateway: GatewayFactory) -> None:
    gw = start_gateway(policy(True, second_word="other"))
    gw.set_fault("first", Fault(cut_after_chunks=3))
    client = openai.OpenAI(base_url=gw.base_url, api_key="k", max_retries=0)
    events = list(client.responses.create(model="gpt", input="hello there", stream=True))
    assert events[-1].type == "error" and "response.completed" not in [e.type for e in events]
