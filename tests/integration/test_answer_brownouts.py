"""Intelligence brownouts seen in live answers, end to end, with no canaries configured: a primary that
turns to answering in the wrong script, with nothing, in a loop, or with tool arguments that are not
JSON loses its traffic within 100 requests; a healthy one (Thai answers to Thai questions included)
keeps it; no client receives tool arguments that are not JSON; a recovered primary gets its traffic
back."""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from gateway.routing.breaker import State
from gateway.serving.embedded import EmbeddedGateway
from gateway.sim import Fault
from tests.conftest import GatewayFactory, sdk

PRIMARY = "primary/frontier"
# No `canaries:` and no `answer_checks:`: the defaults. Latency is not what these tests are about (a
# stall on a busy test machine must not make a simulator "slow"), and no request goes exploring.
POLICY = """
version: 1
breaker: {slow_min_s: 5, slow_ttft_factor: 1000, eject_ttft_factor: 10000, explore_percent: 0}
providers:
  primary: {kind: sim}
  secondary: {kind: sim}
routes:
  chat:
    targets:
      - {provider: primary, model: frontier}
      - {provider: secondary, model: small}
"""
WEATHER = {"type": "function", "function": {"name": "get_weather", "description": "The weather in a city",
                                            "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                                                           "required": ["city"]}}}
ENGLISH = [{"role": "user", "content": "What is the weather like in Oslo today?"}]
THAI = [{"role": "user", "content": "วันนี้อากาศที่ออสโลเป็นอย่างไรบ้าง"}]


def ask(client: openai.OpenAI, messages: list[dict[str, Any]], tools: bool = False) -> tuple[str, Any]:
    extra: dict[str, Any] = {"tools": [WEATHER]} if tools else {}
    raw = client.chat.completions.with_raw_response.create(model="chat", messages=messages, **extra)  # type: ignore[arg-type]
    return raw.headers["x-recloser-provider"], raw.parse()


def shares(gw: EmbeddedGateway, n: int, messages: list[dict[str, Any]] = ENGLISH, tools: bool = False) -> Counter[str]:
    client = sdk(gw)
    seen: Counter[str] = Counter()
    for _ in range(n):
        provider, completion = ask(client, messages, tools)
        seen[provider] += 1
        for call in completion.choices[0].message.tool_calls or ():
            json.loads(call.function.arguments)   # no client receives arguments that are not JSON
    client.close()
    return seen


def defects(gw: EmbeddedGateway) -> dict[str, float]:
    out = {}
    for line in httpx.get(gw.url + "/metrics").text.splitlines():
        if line.startswith("recloser_answer_defects_total{"):
            labels, value = line.rsplit(" ", 1)
            out[labels] = float(value)
    return out


@pytest.mark.parametrize("broken", ["wrong_script", "empty", "loop", "bad_tool_args"])
def test_a_primary_answering_broken_loses_its_traffic_within_100_requests(start_gateway: GatewayFactory,
                                                                         broken: str) -> None:
    gw = start_gateway(POLICY)
    tools = broken == "bad_tool_args"
    assert shares(gw, 20, tools=tools)["primary"] == 20
    gw.set_fault("primary", Fault(broken=broken))  # type: ignore[arg-type]
    seen = shares(gw, 100, tools=tools)
    assert seen["primary"] <= 20, seen
    assert gw.context.board.healths[PRIMARY].state is State.EJECTED
    # Relayed defects eject it for its answers' quality; rescued ones (never relayed) as failed attempts.
    health = gw.context.board.healths[PRIMARY]
    assert health.reason.startswith("quality:") or "defective_answer" in health.reason, health.reason
    assert health.quality.startswith("quality:")
    kind = {"loop": "repetition", "bad_tool_args": "tool_args_not_json"}.get(broken, broken)
    counted = {k: v for k, v in defects(gw).items() if f'defect="{kind}"' in k and 'provider="primary"' in k}
    assert counted and all(v >= 1 for v in counted.values()), defects(gw)


def test_a_healthy_primary_keeps_its_traffic_and_no_defect_is_counted(start_gateway: GatewayFactory) -> None:
    gw = start_gateway(POLICY)
    seen = shares(gw, 60) + shares(gw, 40, tools=True)
    assert seen["primary"] >= 90, seen
    assert defects(gw) == {}


def test_thai_answers_to_thai_questions_are_no_defect(start_gateway: GatewayFactory) -> None:
    gw = start_gateway(POLICY)
    gw.set_fault("primary", Fault(broken="wrong_script"))   # the simulator answers in Thai, whatever it is asked
    seen = shares(gw, 60, messages=THAI)
    assert seen["primary"] >= 54, seen
    assert defects(gw) == {}


def test_an_empty_answer_is_answered_by_the_next_target_instead(start_gateway: GatewayFactory) -> None:
    gw = start_gateway(POLICY)
    gw.set_fault("primary", Fault(broken="empty"))
    client = sdk(gw)
    provider, completion = ask(client, ENGLISH)
    client.close()
    assert provider == "secondary" and completion.choices[0].message.content


def test_with_no_other_target_the_defective_answer_is_still_relayed_and_charged_once(
        start_gateway: GatewayFactory, tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.jsonl"
    gw = start_gateway(POLICY.replace("      - {provider: secondary, model: small}\n", "")
                       + f'metering: {{ledger: {{path: "{ledger}"}}}}\n')
    gw.set_fault("primary", Fault(broken="empty"))
    client = sdk(gw)
    provider, completion = ask(client, ENGLISH)
    client.close()
    assert provider == "primary" and completion.choices[0].message.content == ""
    gw.run(gw.context.meter.drain())
    lines = [json.loads(line) for line in ledger.read_text().splitlines()]
    assert [(line["kind"], line["provider"]) for line in lines] == [("request", "primary")]


def test_answer_checks_turned_off_for_a_route_count_nothing(start_gateway: GatewayFactory) -> None:
    gw = start_gateway(POLICY + "    answer_checks: {enabled: false}\n")
    gw.set_fault("primary", Fault(broken="wrong_script"))
    assert shares(gw, 30)["primary"] == 30
    assert defects(gw) == {}


def test_a_looping_stream_is_counted_and_ejects_the_primary(start_gateway: GatewayFactory) -> None:
    gw = start_gateway(POLICY)
    gw.set_fault("primary", Fault(broken="loop"))
    client = sdk(gw)
    for _ in range(30):
        for _chunk in client.chat.completions.create(model="chat", messages=ENGLISH, stream=True):  # type: ignore[arg-type]
            pass
    client.close()
    assert gw.context.board.healths[PRIMARY].state is State.EJECTED
    assert any('defect="repetition"' in k for k in defects(gw))


def test_a_recovered_primary_gets_its_traffic_back_within_a_minute(start_gateway: GatewayFactory) -> None:
    gw = start_gateway(POLICY)
    gw.set_fault("primary", Fault(broken="wrong_script"))
    shares(gw, 40)
    assert gw.context.board.healths[PRIMARY].state is State.EJECTED
    gw.set_fault("primary", None)
    client = sdk(gw)
    recovered, started, last = False, time.monotonic(), []   # paced at 20 requests a second
    while time.monotonic() - started < 60:
        last = (last + [ask(client, ENGLISH)[0]])[-20:]
        if last.count("primary") >= 18:
            recovered = True
            break
        time.sleep(0.05)
    client.close()
    assert recovered, last
    assert gw.context.board.healths[PRIMARY].state is State.HEALTHY


def test_an_empty_responses_answer_is_answered_by_the_next_target_instead(start_gateway: GatewayFactory) -> None:
    gw = start_gateway(POLICY)
    gw.set_fault("primary", Fault(broken="empty"))
    r = httpx.post(gw.base_url + "/responses", json={"model": "chat", "input": "What is the weather in Oslo?"},
                   headers={"Authorization": "Bearer k"}, timeout=20)
    assert r.status_code == 200 and r.headers["x-recloser-provider"] == "secondary", r.text
    assert any(i.get("type") == "message" for i in r.json()["output"])
    assert any('defect="empty"' in k and 'provider="primary"' in k for k in defects(gw))


def test_a_messages_stream_in_the_wrong_script_is_counted(start_gateway: GatewayFactory) -> None:
    gw = start_gateway(POLICY)
    gw.set_fault("primary", Fault(broken="wrong_script"))
    body = {"model": "chat", "max_tokens": 100, "stream": True, "messages": ENGLISH}
    with httpx.stream("POST", gw.url + "/v1/messages", json=body, headers={"x-api-key": "k"}, timeout=20) as r:
        text = "".join(r.iter_text())
    assert r.status_code == 200 and "message_stop" in text
    assert any('defect="wrong_script"' in k and 'provider="primary"' in k for k in defects(gw))


def test_the_admin_view_shows_what_the_checks_found_in_each_deployments_answers(start_gateway: GatewayFactory) -> None:
    gw = start_gateway(POLICY)
    gw.set_fault("primary", Fault(broken="wrong_script"))
    shares(gw, 30)
    rows = {r["provider"]: r for r in httpx.get(gw.url + "/admin/deployments").json()["data"]}
    primary, secondary = rows["primary"], rows["secondary"]
    assert primary["state"] == "ejected" and primary["reason"].startswith("quality:")
    assert "wrong_script" in primary["reason"]
    assert primary["answers"]["signal"] == "ejected" and primary["answers"]["recent_defects"] == ["wrong_script"]
    assert secondary["answers"]["signal"] == "ok" and secondary["answers"]["defective"] == 0


def test_no_streaming_client_gets_a_finished_tool_call_whose_arguments_are_not_json(start_gateway: GatewayFactory) -> None:
    gw = start_gateway(POLICY)
    gw.set_fault("primary", Fault(broken="bad_tool_args"))
    client = sdk(gw)
    errors, calls = 0, 0
    for _ in range(30):
        try:
            stream = client.chat.completions.create(model="chat", messages=ENGLISH, tools=[WEATHER],  # type: ignore[list-item,arg-type]
                                                    stream=True)
            arguments, finished = "", False
            for chunk in stream:
                for choice in chunk.choices:
                    for call in choice.delta.tool_calls or ():
                        arguments += call.function.arguments or "" if call.function else ""
                    finished = finished or choice.finish_reason == "tool_calls"
        except openai.APIError:
            errors += 1       # the stream ended with an error event instead of its finish
            continue
        assert finished
        json.loads(arguments)     # every finished call's arguments are JSON
        calls += 1
    client.close()
    assert 1 <= errors <= 10 and calls == 30 - errors
    assert gw.context.board.healths[PRIMARY].state is State.EJECTED


def test_a_defective_answer_retried_elsewhere_is_still_charged_as_the_upstream_reported(
        start_gateway: GatewayFactory, tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.jsonl"
    gw = start_gateway(POLICY + f'metering: {{ledger: {{path: "{ledger}"}}}}\n')
    gw.set_fault("primary", Fault(broken="empty"))
    client = sdk(gw)
    assert ask(client, ENGLISH)[0] == "secondary"
    client.close()
    gw.run(gw.context.meter.drain())
    lines = [json.loads(line) for line in ledger.read_text().splitlines()]
    attempt = next(line for line in lines if line["kind"] == "attempt")
    request = next(line for line in lines if line["kind"] == "request")
    assert (attempt["provider"], attempt["outcome"], attempt["usage_source"]) == ("primary", "defective_answer", "reported")
    assert attempt["input_tokens"] > 0 and request["provider"] == "secondary"
