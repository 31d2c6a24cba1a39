"""Spend you can trust: every call's cost, attributed, in Prometheus and the ledger, and equal."""

from __future__ import annotations

import hashlib
import json
import random
import re
import string
from decimal import Decimal
from pathlib import Path

import httpx
import openai
import pytest

from gateway.serving.embedded import EmbeddedGateway
from gateway.metering.prices import MAP_FILE, bundled_cost_map
from gateway.sim import Fault
from tests.conftest import GatewayFactory

KEYS = {"search": "sk-search-web", "ads": "sk-ads-batch"}
HELLO = [{"role": "user", "content": "hello there"}]   # the sim counts 2 words + 1 per message = 3 tokens


def policy(ledger: Path, extra: str = "") -> str:
    return f"""
    version: 1
    providers:
      openai:
        kind: sim
        sim: {{reply_tokens: 8}}
        models:
          priced-model: {{input_usd_per_mtok: 2.5, output_usd_per_mtok: 10, cached_input_usd_per_mtok: 1.25}}
      cheap:
        kind: sim
        sim: {{reply_tokens: 4}}
        models:
          small-model: {{input_usd_per_mtok: 0.1, output_usd_per_mtok: 0.2}}
    routes:
      chat: {{targets: [{{provider: openai, model: priced-model}}]}}
      mini: {{targets: [{{provider: openai, model: gpt-4o-mini}}]}}
      cheap: {{targets: [{{provider: cheap, model: small-model}}]}}
    auth:
      keys:
        - {{id: search-web, sha256: {hashlib.sha256(KEYS["search"].encode()).hexdigest()}, team: search, app: web}}
        - {{id: ads-batch, sha256: {hashlib.sha256(KEYS["ads"].encode()).hexdigest()}, team: ads, app: batch}}
    metering:
      ledger: {{path: "{ledger}"}}
    {extra}
    """


def client(gw: EmbeddedGateway, team: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.base_url, api_key=KEYS[team], max_retries=0)


def ledger_lines(gw: EmbeddedGateway, path: Path) -> list[dict]:
    gw.run(gw.context.meter.drain())
    return [json.loads(line) for line in path.read_text().splitlines()]


def scrape(gw: EmbeddedGateway) -> str:
    return httpx.get(gw.url + "/metrics").text


def metric(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


@pytest.fixture
def ledger(tmp_path: Path) -> Path:
    return tmp_path / "spend" / "ledger.jsonl"


def test_cost_per_team_in_prometheus_equals_the_ledger_and_the_expected_value_exactly(
        start_gateway: GatewayFactory, ledger: Path) -> None:
    gw = start_gateway(policy(ledger))
    for _ in range(3):
        client(gw, "search").chat.completions.create(model="chat", messages=HELLO)
    for chunk in client(gw, "search").chat.completions.create(model="chat", messages=HELLO, stream=True):
        pass
    for _ in range(2):
        list(client(gw, "ads").chat.completions.create(model="chat", messages=HELLO, stream=True))
    per_request = (3 * Decimal("2.5") + 8 * Decimal("10")) / 1_000_000
    expected = {"search": 4 * per_request, "ads": 2 * per_request}

    lines = ledger_lines(gw, ledger)
    text = scrape(gw)
    for team, value in expected.items():
        in_ledger = sum(Decimal(l["cost_usd"]) for l in lines if l["team"] == team)
        assert in_ledger == value
        assert metric(text, "recloser_cost_usd_total", team=team) == float(value)
    assert metric(text, "recloser_tokens_total", team="search", type="input") == 12
    assert metric(text, "recloser_tokens_total", team="search", type="output") == 32
    assert metric(text, "recloser_requests_total", team="ads", app="batch", route="chat", status="200") == 2
    assert {(l["usage_source"], l["price_source"], l["kind"]) for l in lines} == {("reported", "policy", "request")}


def test_a_stream_is_charged_though_the_client_never_sees_a_usage_chunk(
        start_gateway: GatewayFactory, ledger: Path) -> None:
    gw = start_gateway(policy(ledger))
    chunks = list(client(gw, "search").chat.completions.create(model="chat", messages=HELLO, stream=True))
    assert all(c.usage is None for c in chunks) and all(c.choices for c in chunks)
    assert gw.sim("openai").requests[-1].body["stream_options"] == {"include_usage": True}
    [line] = ledger_lines(gw, ledger)
    assert (line["input_tokens"], line["output_tokens"], line["usage_source"]) == (3, 8, "reported")


def test_a_client_that_asks_for_usage_sees_the_usage_chunk(start_gateway: GatewayFactory, ledger: Path) -> None:
    gw = start_gateway(policy(ledger))
    chunks = list(client(gw, "search").chat.completions.create(
        model="chat", messages=HELLO, stream=True, stream_options={"include_usage": True}))
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 8
    assert ledger_lines(gw, ledger)[0]["output_tokens"] == 8


def test_a_stream_cut_after_five_chunks_is_charged_for_what_it_produced(
        start_gateway: GatewayFactory, ledger: Path) -> None:
    from gateway.metering.counting import TokenCounter

    gw = start_gateway(policy(ledger))
    gw.set_fault("openai", Fault(cut_after_chunks=5))
    with pytest.raises(openai.APIError):
        for _ in client(gw, "search").chat.completions.create(model="chat", messages=HELLO, stream=True):
            pass
    [line] = ledger_lines(gw, ledger)
    counter = TokenCounter()
    produced = gw.run(counter.count_text("openai t1 t2 t3 t4"))
    prompt = gw.run(counter.count_prompt({"messages": HELLO}))
    assert (line["output_tokens"], line["input_tokens"]) == (produced, prompt)
    assert line["usage_source"] == "counted" and line["outcome"] == "stream_broken"
    assert Decimal(line["cost_usd"]) == (prompt * Decimal("2.5") + produced * Decimal("10")) / 1_000_000
    assert metric(scrape(gw), "recloser_cost_usd_total", team="search") == float(Decimal(line["cost_usd"]))


def test_a_model_without_an_override_is_priced_from_litellms_map(start_gateway: GatewayFactory,
                                                                 ledger: Path) -> None:
    gw = start_gateway(policy(ledger))
    client(gw, "ads").chat.completions.create(model="mini", messages=HELLO)
    [line] = ledger_lines(gw, ledger)
    cost_map, version = bundled_cost_map()
    entry = cost_map["gpt-4o-mini"]
    expected = (3 * Decimal(str(entry["input_cost_per_token"])) + 8 * Decimal(str(entry["output_cost_per_token"])))
    assert Decimal(line["cost_usd"]) == expected.quantize(Decimal("1e-9"))
    assert line["price_source"] == version and version.startswith("litellm ")
    assert MAP_FILE.endswith(".json")


def test_random_unknown_model_names_add_no_series(start_gateway: GatewayFactory, ledger: Path) -> None:
    gw = start_gateway(policy(ledger))
    client(gw, "search").chat.completions.create(model="chat", messages=HELLO)
    http_404 = httpx.post(gw.base_url + "/chat/completions", json={"model": "no-such", "messages": HELLO},
                          headers={"Authorization": f"Bearer {KEYS['search']}"})
    assert http_404.status_code == 404

    def series(text: str) -> set[str]:
        return {line.rsplit(" ", 1)[0] for line in text.splitlines() if line and not line.startswith("#")}

    before = series(scrape(gw))
    rng = random.Random(7)
    with httpx.Client() as http:
        for _ in range(200):
            name = "".join(rng.choices(string.ascii_lowercase, k=12))
            r = http.post(gw.base_url + "/chat/completions", json={"model": name, "messages": HELLO},
                          headers={"Authorization": f"Bearer {KEYS['search']}"})
            assert r.status_code == 404
    text = scrape(gw)
    assert series(text) == before
    assert not re.search(r'"[a-z]{12}"', text)


def budget_policy(ledger: Path, action: str, limit: str = "0.0001") -> str:
    to = ", to: cheap" if action == "downgrade" else ""
    return policy(ledger, f"""budgets:
      - {{name: search-daily, team: search, period: day, limit_usd: {limit}, action: {action}{to}}}
    """)


def test_a_used_up_reject_budget_refuses_with_429_before_any_upstream_call(
        start_gateway: GatewayFactory, ledger: Path) -> None:
    gw = start_gateway(budget_policy(ledger, "reject"))
    c = client(gw, "search")
    c.chat.completions.create(model="chat", messages=HELLO)   # 0.0000875: under the limit
    c.chat.completions.create(model="chat", messages=HELLO)   # 0.000175: over it, now used up
    calls = gw.sim("openai").request_count()
    with pytest.raises(openai.RateLimitError) as info:
        c.chat.completions.create(model="chat", messages=HELLO)
    error = info.value.body
    assert isinstance(error, dict) and error["code"] == "budget_exceeded"
    assert "Budget 'search-daily'" in error["message"] and "resets at" in error["message"]
    assert gw.sim("openai").request_count() == calls
    client(gw, "ads").chat.completions.create(model="chat", messages=HELLO)  # another team is not held back
    assert metric(scrape(gw), "recloser_budget_actions_total", budget="search-daily", action="reject") == 1


def test_a_warn_budget_serves_with_a_warning_header(start_gateway: GatewayFactory, ledger: Path) -> None:
    gw = start_gateway(budget_policy(ledger, "warn", limit="0.0001"))
    c = client(gw, "search")
    first = c.chat.completions.with_raw_response.create(model="chat", messages=HELLO)
    assert "x-recloser-budget" not in first.headers
    second = c.chat.completions.with_raw_response.create(model="chat", messages=HELLO)   # 87.5 % used
    assert second.headers["x-recloser-budget"].startswith("warning: Budget 'search-daily'")
    third = c.chat.completions.with_raw_response.create(model="chat", messages=HELLO)    # used up, still served
    assert third.http_response.status_code == 200
    assert metric(scrape(gw), "recloser_budget_actions_total", budget="search-daily", action="warn") == 2


def test_a_downgrade_budget_serves_from_the_cheaper_route(start_gateway: GatewayFactory, ledger: Path) -> None:
    gw = start_gateway(budget_policy(ledger, "downgrade", limit="0.00005"))
    c = client(gw, "search")
    assert c.chat.completions.with_raw_response.create(model="chat", messages=HELLO) \
        .headers["x-recloser-provider"] == "openai"
    raw = c.chat.completions.with_raw_response.create(model="chat", messages=HELLO)
    assert raw.headers["x-recloser-provider"] == "cheap"
    assert raw.headers["x-recloser-budget"] == "downgraded to route 'cheap'"


def test_spend_totals_equal_the_ledger(start_gateway: GatewayFactory, ledger: Path) -> None:
    from tests.integration.test_cli import recloser

    gw = start_gateway(policy(ledger))
    for team in ("search", "ads", "search"):
        client(gw, team).chat.completions.create(model="chat", messages=HELLO)
    lines = ledger_lines(gw, ledger)
    result = recloser("spend", "--ledger", str(ledger), "--by", "team", "--json")
    assert result.returncode == 0, result.stderr
    rows = {r["team"]: r for r in json.loads(result.stdout)}
    for team in ("search", "ads"):
        assert Decimal(rows[team]["cost_usd"]) == sum(Decimal(l["cost_usd"]) for l in lines if l["team"] == team)
        assert rows[team]["requests"] == sum(1 for l in lines if l["team"] == team)
    assert Decimal(rows["TOTAL"]["cost_usd"]) == sum(Decimal(l["cost_usd"]) for l in lines)
    table = recloser("spend", "--ledger", str(ledger), "--by", "model")
    assert "priced-model" in table.stdout and "TOTAL" in table.stdout


def test_a_losing_hedge_leg_is_charged_for_its_prompt_and_shown_as_such(
        start_gateway: GatewayFactory, ledger: Path) -> None:
    gw = start_gateway(f"""
    version: 1
    providers:
      slow: {{kind: sim, sim: {{first_token_delay_s: 2}}, models: {{m: {{input_usd_per_mtok: 1, output_usd_per_mtok: 2}}}}}}
      fast: {{kind: sim, models: {{m: {{input_usd_per_mtok: 1, output_usd_per_mtok: 2}}}}}}
    routes:
      chat:
        hedge: {{after_s: 0.1, max_percent: 100}}
        targets: [{{provider: slow, model: m}}, {{provider: fast, model: m}}]
    metering: {{ledger: {{path: "{ledger}"}}}}
    """)
    openai.OpenAI(base_url=gw.base_url, api_key="k", max_retries=0).chat.completions.create(
        model="chat", messages=HELLO)
    lines = {l["kind"]: l for l in ledger_lines(gw, ledger)}
    assert lines["request"]["provider"] == "fast" and lines["request"]["hedged"] is True
    leg = lines["attempt"]
    assert (leg["provider"], leg["outcome"], leg["usage_source"], leg["output_tokens"]) == \
        ("slow", "hedge_lost", "counted", 0)
    assert leg["input_tokens"] > 0 and Decimal(leg["cost_usd"]) == Decimal(leg["input_tokens"]) / 1_000_000
