"""Rescuing answers: what the client gets when an upstream misbehaves the way real ones do.

Each scenario on a fresh gateway over real sockets, the route [A, B] of the chaos conftest.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import anthropic
import httpx
import openai
import pytest

from gateway.serving.embedded import EmbeddedGateway
from gateway.routing.breaker import BASELINE_SAMPLES
from gateway.sim import Fault
from tests.chaos.conftest import HELLO, Result, chat, client, open_loop, stream

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


# 4. A recovered provider gets its traffic back soon, however long it was down
# Scaled down ten times: a 45 s outage is 4.5 s, "within 30 s" is 3 s, two requests a second are twenty,
# the base ejection 30 s is 3 s, probes every 5 s are every 0.5 s, a 10 s slow start is 1 s.

async def test_a_primary_back_after_a_long_outage_gets_its_traffic_back_within_the_bound(
        chaos: Start, tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.jsonl"
    gw = chaos(breaker="max_ejection_s: 30, probe_interval_s: 0.5, slow_start_s: 1", top=ledger_of(ledger))
    c = client(gw)
    outage_s, after_s, rate = 4.5, 4.5, 20
    gw.set_fault("A", Fault(status=503, duration_s=outage_s))
    recovered = time.monotonic() + outage_s

    async def timed(i: int) -> tuple[float, Result]:
        started = time.monotonic()
        return started, await chat(c)

    results = await open_loop(int((outage_s + after_s) * rate), rate, timed)
    assert [r.error for _, r in results if not r.ok] == []
    late = [(round(t - recovered, 2), r.provider) for t, r in results if t > recovered + 3.0]
    assert late and all(provider == "A" for _, provider in late), late
    during = sum(1 for q in gw.sim("A").requests if q.at < recovered)
    assert during <= 30, during   # of some 90 client requests while it was down
    probes = [line for line in ledger_lines(gw, ledger) if line["outcome"] == "probe"]
    assert probes and all(line["provider"] == "A" and line["events"] == ["probe"] for line in probes)
    assert float(gw.context.metrics.probes("A", "a-model", "server_error")._value.get()) >= 3


# 6. Resume is the default, and it knows what each target can take

SAME_TEXT = "same t1 t2 t3 t4 t5 t6 t7 t8 t9 t10 t11"


def mid_stream_metric(gw: EmbeddedGateway, provider: str, action: str) -> float:
    child = gw.context.metrics.mid_stream.children.get(("chat", provider, action))
    return 0.0 if child is None else float(child._value.get())


async def test_by_default_a_cut_stream_is_resumed_on_the_next_target_with_a_prefill(
        chaos: Start, tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.jsonl"
    gw = chaos(mid_stream="", top=ledger_of(ledger))
    gw.set_fault("A", Fault(cut_after_chunks=5))
    r = await stream(client(gw))
    assert r.ok, r.error
    assert r.text == "A t1 t2 t3 t4" + FULL_TEXT["B"]   # B's sim ignores the prefix it was given
    assert gw.sim("B").requests[0].body["messages"][-1] == {"role": "assistant", "content": "A t1 t2 t3 t4"}
    assert mid_stream_metric(gw, "A", "resumed") == 1
    [record] = [line for line in ledger_lines(gw, ledger) if line["kind"] == "request"]
    assert (record["provider"], record["events"]) == ("B", ["resumed"])


async def test_a_stalled_stream_is_resumed_like_a_cut_one(chaos: Start) -> None:
    gw = chaos(mid_stream="")
    gw.set_fault("A", Fault(stall_after_chunks=5))   # nothing more for idle_s (2 s)
    r = await stream(client(gw))
    assert r.ok, r.error
    assert r.text.startswith("A t1 t2 t3 t4") and r.text.endswith(FULL_TEXT["B"])


async def test_a_target_that_refuses_a_prefill_is_restarted_and_only_the_new_text_is_relayed(
        chaos: Start, tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.jsonl"
    gw = chaos(mid_stream="", a_sim="reply_word: same", b_sim="reply_word: same, prefill: false",
               top=ledger_of(ledger))
    gw.set_fault("A", Fault(cut_after_chunks=5))
    c = client(gw)
    first = await stream(c)
    assert first.ok, first.error
    assert first.text == SAME_TEXT                       # seamless: no 400, nothing twice
    prefilled, restarted = gw.sim("B").requests
    assert prefilled.body["messages"][-1]["role"] == "assistant"
    assert restarted.body["messages"][-1]["role"] == "user"
    assert attempts_metric(gw, "B", "prefill_rejected") == 1
    assert mid_stream_metric(gw, "A", "restarted") == 1
    second = await stream(c)                              # learnt: B is restarted at once
    assert second.text == SAME_TEXT and gw.sim("B").request_count() == 3
    records = [line for line in ledger_lines(gw, ledger) if line["kind"] == "request"]
    assert [line["events"] for line in records] == [["prefill_rejected", "restarted"], ["restarted"]]


async def test_a_target_known_not_to_take_a_prefill_is_restarted_without_trying_one(chaos: Start) -> None:
    gw = chaos(mid_stream="", a_sim="reply_word: same", b_sim="reply_word: same",
               b_provider="models: {b-model: {prefill: false}}")
    gw.set_fault("A", Fault(cut_after_chunks=5))
    r = await stream(client(gw))
    assert r.ok and r.text == SAME_TEXT
    [restarted] = gw.sim("B").requests
    assert restarted.body["messages"][-1]["role"] == "user"


async def test_a_restarted_answer_that_goes_another_way_ends_with_the_error_event(chaos: Start) -> None:
    gw = chaos(mid_stream="", b_sim="prefill: false")
    gw.set_fault("A", Fault(cut_after_chunks=5))
    r = await stream(client(gw))
    assert not r.ok and "mid-stream" in str(r.error)
    assert r.text == "A t1 t2 t3 t4"                      # nothing of B's different answer


async def test_a_stream_cut_inside_a_tool_call_is_never_stitched(chaos: Start) -> None:
    gw = chaos(mid_stream="")
    gw.set_fault("A", Fault(cut_after_chunks=1))
    tools = [{"type": "function", "function": {"name": "lookup", "parameters": {
        "type": "object", "properties": {"q": {"type": "string"}}}}}]
    with pytest.raises(openai.APIError, match="mid-stream"):
        async for _ in await client(gw).chat.completions.create(  # type: ignore[call-overload]
                model="chat", messages=HELLO, tools=tools, stream=True):
            pass
    assert gw.sim("B").request_count() == 0


# 5. A slow first token is judged against the deployment's own baseline; slow tokens are a brownout

async def test_a_first_token_far_later_than_the_deployment_s_baseline_fails_over_long_before_the_cap(
        chaos: Start) -> None:
    gw = chaos(a_first_token_s=0.02, route="timeouts: {first_token_s: 5, first_token_floor_s: 0.3}")
    c = client(gw)
    for _ in range(30):                      # A's baseline: first tokens in about 20 ms
        assert (await stream(c)).ok
    gw.set_fault("A", Fault(first_token_delay_s=2.0))
    r = await stream(c)
    assert r.ok and r.provider == "B"
    assert r.first_content_s is not None and r.first_content_s < 1.0   # not 2 s (A), nor 5 s (the cap)
    [attempt] = [a for a in gw.context.board.report([gw.context.routing.routes["chat"]]) if a["provider"] == "A"]
    assert attempt["ttft_baseline_s"] < 0.3


async def test_a_cold_deployment_that_stalls_before_its_first_token_fails_over_well_before_the_cap(
        chaos: Start) -> None:
    gw = chaos(a_first_token_s=30, route="timeouts: {first_token_s: 15}")   # a fresh gateway: no baseline anywhere
    r = await stream(client(gw))
    assert r.ok and r.provider == "B"
    assert r.first_content_s is not None and r.first_content_s < 5.0   # the cold limit (4 s), not the 15 s cap


async def test_a_stream_whose_tokens_come_far_slower_than_usual_degrades_its_deployment(chaos: Start) -> None:
    gw = chaos()
    c = client(gw)
    on_a = 0
    for _ in range(2 * BASELINE_SAMPLES):     # A's token-rate baseline: the streams it takes to judge one
        first = await stream(c)
        assert first.ok
        on_a += first.provider == "A"
        if on_a == BASELINE_SAMPLES:
            break
    assert on_a == BASELINE_SAMPLES
    gw.set_fault("A", Fault(chunk_delay_s=0.05))   # from thousands of tokens a second to twenty
    slow_streams_on_a = 0
    async with httpx.AsyncClient() as admin:
        while slow_streams_on_a < 5:
            r = await stream(c)
            assert r.ok
            slow_streams_on_a += r.provider == "A"
            rows = (await admin.get(gw.url + "/admin/deployments")).json()["data"]
            a = next(row for row in rows if row["provider"] == "A")
            if a["state"] == "degraded":
                break
    assert a["state"] == "degraded" and "tokens" in a["reason"], a
    assert slow_streams_on_a <= 3


@pytest.mark.parametrize("via", ["native", "litellm"])
async def test_a_claude_target_that_refuses_a_prefill_is_restarted_through_either_anthropic_wire(
        chaos: Start, via: str) -> None:
    # litellm's first call on a busy machine may take over a second: a roomy first-token bound.
    gw = chaos(mid_stream="", a_sim="reply_word: same", b_sim="reply_word: same, prefill: false, wire: anthropic",
               b_provider=f"via: {via}", route="timeouts: {first_token_s: 10}")
    gw.set_fault("A", Fault(cut_after_chunks=5))
    r = await stream(client(gw))
    assert r.ok, r.error
    assert r.text == SAME_TEXT
    prefilled, restarted = gw.sim("B").requests
    assert prefilled.body["messages"][-1]["role"] == "assistant"
    assert restarted.body["messages"][-1]["role"] == "user"
    assert attempts_metric(gw, "B", "prefill_rejected") == 1


# 6, for the Messages API (Claude Code and the anthropic SDK): the same rescues, in Anthropic's events

async def messages_stream(gw: EmbeddedGateway) -> tuple[str, anthropic.types.Message]:
    c = anthropic.AsyncAnthropic(base_url=gw.url, api_key="k", max_retries=0)
    async with c.messages.stream(model="chat", max_tokens=100, messages=HELLO) as s:  # type: ignore[arg-type]
        text = "".join([t async for t in s.text_stream])
        return text, await s.get_final_message()


async def test_a_cut_messages_stream_is_resumed_into_one_message(chaos: Start) -> None:
    gw = chaos(mid_stream="")
    gw.set_fault("A", Fault(cut_after_chunks=5))
    text, message = await messages_stream(gw)
    assert text == "A t1 t2 t3 t4" + FULL_TEXT["B"]
    assert [block.type for block in message.content] == ["text"] and message.content[0].text == text  # type: ignore[union-attr]
    assert message.stop_reason == "end_turn" and message.usage.input_tokens > 0
    assert mid_stream_metric(gw, "A", "resumed") == 1


@pytest.mark.parametrize("b_wire", ["openai", "anthropic"])
async def test_a_cut_messages_stream_on_a_target_without_prefill_is_restarted_seamlessly(
        chaos: Start, b_wire: str) -> None:
    gw = chaos(mid_stream="", a_sim="reply_word: same", b_sim=f"reply_word: same, prefill: false, wire: {b_wire}")
    gw.set_fault("A", Fault(cut_after_chunks=5))
    text, message = await messages_stream(gw)
    assert text == SAME_TEXT
    assert len(message.content) == 1 and message.content[0].text == SAME_TEXT  # type: ignore[union-attr]
    assert mid_stream_metric(gw, "A", "restarted") == 1
