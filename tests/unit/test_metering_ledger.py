"""The ledger writer: exact lines, off the request path, flushed, rotated; and the spend report."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from gateway.metering.ledger import LedgerWriter, ledger_files, read_ledger
from gateway.metering.record import CallRecord
from gateway.metering.schema import LedgerSettings
from gateway.metering.spend import main as spend_main
from gateway.metering.spend import spend_report


def record(team: str = "search", cost: str = "0.000087500", kind: str = "request", ts: float = 1795400000.0,
           request_id: str = "r1") -> CallRecord:
    return CallRecord(ts=ts, request_id=request_id, team=team, app="web", key_id="k", route="chat", provider="openai",
                      model="m", input_tokens=3, output_tokens=8, cached_input_tokens=0, cost_usd=Decimal(cost),
                      price_source="policy", usage_source="reported", outcome="ok", attempts=1, fallback=False,
                      hedged=False, stream=False, latency_s=0.01, ttft_s=None, kind=kind)  # type: ignore[arg-type]


async def test_records_reach_the_disk_as_exact_json_lines(tmp_path: Path) -> None:
    w = LedgerWriter(LedgerSettings(path=str(tmp_path / "l" / "ledger.jsonl")))
    await w.start()
    w.write(record())
    await w.close()
    [line] = (tmp_path / "l" / "ledger.jsonl").read_text().splitlines()
    data = json.loads(line)
    assert data["cost_usd"] == "0.000087500" and data["ts"].endswith("Z") and data["kind"] == "request"


async def test_write_returns_before_anything_is_on_disk(tmp_path: Path) -> None:
    path = tmp_path / "ledger.jsonl"
    w = LedgerWriter(LedgerSettings(path=str(path)))
    await w.start()
    w.write(record())
    assert not path.exists()  # queued only: the loop has not run the writer yet
    await w.flush()
    assert path.read_text().count("\n") == 1
    await w.close()


async def test_rotation_by_size_keeps_only_the_newest_files(tmp_path: Path) -> None:
    path = tmp_path / "ledger.jsonl"
    moments = iter(datetime(2026, 11, 23, tzinfo=UTC) + timedelta(seconds=i) for i in range(1000))
    w = LedgerWriter(LedgerSettings(path=str(path), rotate_mb=0.0003, keep=2), clock_utc=lambda: next(moments))
    await w.start()
    for i in range(12):
        w.write(record(request_id=f"r{i}"))
        await w.flush()
    await w.close()
    files = ledger_files(path)
    assert len(files) == 3 and files[-1] == path  # two rotated, one current
    assert all(f.stat().st_size <= 0.0003 * 1024 * 1024 + 600 for f in files)


async def test_rotation_by_day(tmp_path: Path) -> None:
    path = tmp_path / "ledger.jsonl"
    now = [datetime(2026, 11, 23, 23, 59, tzinfo=UTC)]
    w = LedgerWriter(LedgerSettings(path=str(path)), clock_utc=lambda: now[0])
    await w.start()
    w.write(record())
    await w.flush()
    now[0] = datetime(2026, 11, 24, 0, 1, tzinfo=UTC)
    w.write(record(request_id="r2"))
    await w.close()
    files = ledger_files(path)
    assert [len(f.read_text().splitlines()) for f in files] == [1, 1]
    assert files[0].name.startswith("ledger.jsonl.20261124")


def test_spend_report_totals_by_team_and_counts_attempts_in_cost_only() -> None:
    lines = [json.loads(r.to_json()) for r in (record("search"), record("ads", "0.1"),
                                                 record("search", "0.000000500", kind="attempt"))]
    rows = {r.key: r for r in spend_report(lines, "team")}
    assert rows["search"].cost_usd == Decimal("0.000088") and rows["search"].requests == 1
    assert rows["TOTAL"].cost_usd == Decimal("0.100088") and rows["TOTAL"].requests == 2
    assert next(iter(rows)) == "ads"  # costliest first


def test_spend_report_by_day_and_since() -> None:
    lines = [json.loads(record(ts=1795400000.0).to_json()), json.loads(record(ts=1795400000.0 + 86400).to_json())]
    by_day = [r.key for r in spend_report(lines, "day")]
    assert len(by_day) == 3 and by_day[-1] == "TOTAL"
    later = spend_report(lines, "day", since=datetime.fromtimestamp(1795400000.0 + 86400, UTC).date())
    assert [r.key for r in later][:-1] == [by_day[1] if by_day[1] > by_day[0] else by_day[0]]


def test_spend_on_a_missing_ledger_is_a_clear_error(tmp_path: Path, capsys: object) -> None:
    assert spend_main(["--ledger", str(tmp_path / "none.jsonl")]) == 2


def test_read_ledger_reads_rotated_files_first(tmp_path: Path) -> None:
    (tmp_path / "l.jsonl.20260101-000000").write_bytes(record(request_id="old").to_json() + b"\n")
    (tmp_path / "l.jsonl").write_bytes(record(request_id="new").to_json() + b"\n")
    ids = [line["request_id"] for line in read_ledger(ledger_files(tmp_path / "l.jsonl"))]
    assert ids == ["old", "new"]
