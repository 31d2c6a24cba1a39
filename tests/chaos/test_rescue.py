"""Rescuing answers: what the client gets when an upstream misbehaves the way real ones do.

Each scenario on a fresh gateway over real sockets, the route [A, B] of the chaos conftest.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import httpx
import openai
import pytest

from gateway.embedded import EmbeddedGateway
from gateway.sim import Fault
from tests.chaos.conftest import HELLO, chat, client, stream

Start = Callable[..., EmbeddedGateway]
FULL_TEXT = {"A": "A t1 t2 t3 t4 t5 t6 t7 t8 t9 t10 t11", "B": "B t1 t2 t3 t4 t5 t6 t7 t8 t9 t10 t11"}


def ledger_of(path: Path) -> str:
    return f'metering: {{ledger: {{path: "{path}"}}}}'


def ledger_lines(gw: EmbeddedGateway, path: Path) -> list[dict]:  # type: ignore[type-arg]
    gw.run(gw.context.meter.drain())
    return [json.loads(line) for line in path.read_text().splitlines()]


def attempts_metric(gw: EmbeddedGateway, provider: str, outcome: str) -> float:
    child = gw.context.metrics.attempts.children.get(("chat", provider, f"{provider.lower()}-model", outcome))
    return 0.0 if child is None else float(child._value.get())


# 1. A complete stream without `data: [DONE]`

async def test_a_stream_that_ends_cleanly_after_its_finish_reason_but_without_done_is_a_whole_answer(
        chaos: Start, tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.jsonl"
    gw = chaos(top=ledger_of(ledger))
    gw.set_fault("A", Fault(no_done=True))
    r = await stream(client(gw))
    assert r.ok, r.error
    assert (r.provider, r.text) == ("A", FULL_TEXT["A"])
    async with httpx.AsyncClient() as http:
        raw = await http.post(gw.base_url + "/chat/completions", json={"model": "chat", "messages": HELLO,
                                                                       "stream": True})
    assert raw.text.endswith("data: [DONE]\n\n") and '"error"' not in raw.text
    assert gw.sim("B").request_count() == 0
    records = [line for line in ledger_lines(gw, ledger) if line["kind"] == "request"]
    assert [(line["outcome"], line["usage_source"], line["output_tokens"]) for line in records] == \
        [("ok", "reported", 12)] * 2


async def test_a_stream_that_ends_cleanly_without_a_finish_reason_is_broken(chaos: Start) -> None:
    gw = chaos()
    gw.set_fault("A", Fault(end_early_after_chunks=5, no_done=True))
    r = await stream(client(gw))
    assert not r.ok and "mid-stream" in str(r.error)
    assert r.text == "A t1 t2 t3 t4"


# 2. Safety refusals are not laundered

async def test_a_content_filter_refusal_is_answered_as_the_provider_said_and_recorded_as_refused(
        chaos: Start, tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.jsonl"
    gw = chaos(top=ledger_of(ledger))
    gw.set_fault("A", Fault(status=400, error_code="content_filter"))
    with pytest.raises(openai.BadRequestError) as caught:
        await client(gw).chat.completions.create(model="chat", messages=HELLO)  # type: ignore[arg-type]
    assert caught.value.code == "content_filter"
    assert gw.sim("B").request_count() == 0
    assert attempts_metric(gw, "A", "refused") == 1
    [record] = ledger_lines(gw, ledger)
    assert (record["outcome"], record["provider"], record["events"]) == ("refused", "A", ["refused"])
    assert gw.context.board.healths["A/a-model"].consecutive_failures == 0  # no penalty to A


async def test_a_route_that_chose_fail_over_sends_a_refused_prompt_to_the_next_target(
        chaos: Start, tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.jsonl"
    gw = chaos(route="on_content_filter: fail_over", top=ledger_of(ledger))
    gw.set_fault("A", Fault(status=400, error_code="content_policy_violation"))
    r = await chat(client(gw))
    assert r.ok and r.provider == "B"
    [record] = ledger_lines(gw, ledger)
    assert (record["outcome"], record["provider"], record["events"]) == ("ok", "B", ["refused"])


# 3. A one-off 5xx on a healthy deployment is retried there once

async def test_a_one_off_500_on_a_healthy_deployment_is_retried_there_and_stays_on_its_model(chaos: Start) -> None:
    gw = chaos()
    gw.set_fault("A", Fault(status=500, times=1))
    async with httpx.AsyncClient() as http:
        r = await http.post(gw.base_url + "/chat/completions", json={"model": "chat", "messages": HELLO})
    assert r.status_code == 200
    assert (r.headers["x-recloser-provider"], r.headers["x-recloser-attempts"]) == ("A", "2")
    assert (gw.sim("A").request_count(), gw.sim("B").request_count()) == (2, 0)


async def test_a_second_500_fails_over(chaos: Start) -> None:
    gw = chaos()
    gw.set_fault("A", Fault(status=500, times=2))
    r = await chat(client(gw))
    assert r.ok and r.provider == "B"
    assert gw.sim("A").request_count() == 2
