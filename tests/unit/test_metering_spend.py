"""`recloser spend`: totals from the ledger by team, app, route, provider, model or day."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from gateway.metering.record import CallRecord
from gateway.metering.spend import Row, format_table, main, spend_report, to_json

NOV_23 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC).timestamp()
NOV_24 = datetime(2026, 11, 24, 12, 0, tzinfo=UTC).timestamp()


def record(team: str = "search", cost: str = "0.000087500", ts: float = NOV_23, **kw: Any) -> CallRecord:
    fields: dict[str, Any] = dict(
        ts=ts, request_id="r", team=team, app="web", key_id="k", route="chat", provider="openai", model="m",
        input_tokens=3, output_tokens=8, cached_input_tokens=1, cost_usd=Decimal(cost), price_source="policy",
        usage_source="reported", outcome="ok", attempts=1, fallback=False, hedged=False, stream=False,
        latency_s=0.01, ttft_s=None)
    return CallRecord(**{**fields, **kw})


def lines(*records: CallRecord) -> list[dict[str, Any]]:
    """Records as the report meets them: parsed ledger lines."""
    return [json.loads(r.to_json()) for r in records]


def by_key(rows: list[Row]) -> dict[str, Row]:
    return {r.key: r for r in rows}


def test_totals_by_team_are_costliest_first_with_a_total_last() -> None:
    rows = spend_report(lines(record("search"), record("ads", "0.1"), record("search", "0.000000500")), "team")
    assert [r.key for r in rows] == ["ads", "search", "TOTAL"]
    assert by_key(rows)["search"].cost_usd == Decimal("0.000088000")
    assert (rows[-1].requests, rows[-1].input_tokens, rows[-1].cost_usd) == (3, 9, Decimal("0.100088000"))


def test_a_charged_attempt_adds_cost_and_tokens_but_not_a_request() -> None:
    rows = by_key(spend_report(lines(record(), record(cost="0.5", kind="attempt", outcome="hedge_lost")), "team"))
    assert rows["search"].requests == 1
    assert rows["search"].output_tokens == 16 and rows["search"].cost_usd == Decimal("0.500087500")


def test_totals_by_day_use_the_utc_day() -> None:
    rows = by_key(spend_report(lines(record(ts=NOV_23), record(ts=NOV_24, cost="1")), "day"))
    assert rows["2026-11-23"].cost_usd == Decimal("0.000087500") and rows["2026-11-24"].cost_usd == 1


@pytest.mark.parametrize("by,value", [("app", "web"), ("route", "chat"), ("provider", "openai"), ("model", "m")])
def test_totals_by_any_attribute(by: str, value: str) -> None:
    assert [r.key for r in spend_report(lines(record()), by)] == [value, "TOTAL"]


def test_since_keeps_that_day_and_later() -> None:
    rows = spend_report(lines(record(ts=NOV_23), record(ts=NOV_24, cost="1")), "day", since=date(2026, 11, 24))
    assert [r.key for r in rows] == ["2026-11-24", "TOTAL"] and rows[-1].cost_usd == 1


def test_grouping_by_an_unknown_attribute_is_refused() -> None:
    with pytest.raises(ValueError, match="choose one of"):
        spend_report([], "user")


def test_json_output_keeps_costs_exact_as_strings() -> None:
    data = json.loads(to_json(spend_report(lines(record(cost="0.123456789")), "team"), "team"))
    assert data == [{"team": "search", "requests": 1, "input_tokens": 3, "output_tokens": 8, "cached_input_tokens": 1,
                     "cost_usd": "0.123456789", "savings_usd": "0", "client_paid_usd": "0"}] + [{**data[0], "team": "TOTAL"}]


def test_the_table_aligns_its_columns_and_shows_cost_to_six_places() -> None:
    table = format_table(spend_report(lines(record("search"), record("advertising", "12.5")), "team"), "team")
    widths = {len(line) for line in table.splitlines()}
    assert len(widths) == 1
    assert "12.500088" in table.splitlines()[-1] and table.splitlines()[-1].startswith("TOTAL")


def test_main_reports_from_a_ledger_and_its_rotated_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ledger = tmp_path / "ledger.jsonl"
    (tmp_path / "ledger.jsonl.20261123-235959").write_bytes(record("ads", "2", ts=NOV_23).to_json() + b"\n")
    ledger.write_bytes(record("search", "1", ts=NOV_24).to_json() + b"\n")
    assert main(["--ledger", str(ledger), "--by", "team", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [(r["team"], r["cost_usd"]) for r in data] == [("ads", "2"), ("search", "1"), ("TOTAL", "3")]


def test_main_prints_a_table_filtered_by_since(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ledger = tmp_path / "ledger.jsonl"
    ledger.write_bytes(b"".join(r.to_json() + b"\n" for r in (record(ts=NOV_23), record(ts=NOV_24, cost="1"))))
    assert main(["--ledger", str(ledger), "--by", "day", "--since", "2026-11-24"]) == 0
    out = capsys.readouterr().out
    assert "2026-11-24" in out and "2026-11-23" not in out and "1.000000" in out


def test_main_on_a_missing_ledger_says_so_and_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--ledger", str(tmp_path / "none.jsonl")]) == 2
    assert "no ledger at" in capsys.readouterr().err


def test_main_with_a_bad_date_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--ledger", str(tmp_path / "l.jsonl"), "--since", "yesterday"]) == 2
    assert "--since" in capsys.readouterr().err


def test_savings_of_pool_answers_are_summed_beside_the_cost() -> None:
    rows = spend_report(lines(record("search", "0.000002", savings_usd=Decimal("0.000450")),
                              record("search", "0.000003", savings_usd=Decimal("0.000000001")),
                              record("ads", "0.5")), "team")
    found = by_key(rows)
    assert found["search"].savings_usd == Decimal("0.000450001") and found["ads"].savings_usd == 0
    assert rows[-1].savings_usd == Decimal("0.000450001")
    data = json.loads(to_json(rows, "team"))
    assert [(r["team"], r["savings_usd"]) for r in data] == [("ads", "0"), ("search", "0.000450001"),
                                                             ("TOTAL", "0.000450001")]
    table = format_table(rows, "team").splitlines()
    assert table[0].split()[-4:-2] == ["savings", "USD"]
    assert table[-1].split()[-3:-1] == ["0.500005", "0.000450"]
