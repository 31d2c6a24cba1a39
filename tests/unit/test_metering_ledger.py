"""The spend ledger: exact JSON lines, written off the request path, flushed, rotated, read back."""

from __future__ import annotations

import json
import logging
import os
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from gateway.metering.ledger import LedgerWriter, ledger_files, read_ledger
from gateway.metering.record import CallRecord
from gateway.policy.metering import LedgerSettings

DAY = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def record(request_id: str = "r1", cost: str = "0.000087500", **kw: Any) -> CallRecord:
    fields: dict[str, Any] = dict(
        ts=DAY.timestamp(), request_id=request_id, team="search", app="web", key_id="k", route="chat",
        provider="openai", model="gpt-4o-mini", input_tokens=3, output_tokens=8, cached_input_tokens=0,
        cost_usd=Decimal(cost), price_source="policy", usage_source="reported", outcome="ok", attempts=1,
        fallback=False, hedged=False, stream=False, latency_s=0.01, ttft_s=None)
    return CallRecord(**{**fields, **kw})


class Clock:
    """An injected UTC clock the test moves by hand."""

    def __init__(self, now: datetime = DAY) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def writer(path: Path, clock: Clock | None = None, **settings: Any) -> LedgerWriter:
    return LedgerWriter(LedgerSettings(path=str(path), **settings), clock_utc=clock or Clock())


async def started(tmp_path: Path) -> tuple[Path, LedgerWriter]:
    """A writer at the usual ledger path, running."""
    path = tmp_path / "ledger.jsonl"
    w = writer(path)
    await w.start()
    return path, w


async def one_flush_a_second(w: LedgerWriter, clock: Clock, request_ids: list[str]) -> None:
    """Writes and flushes each record a second after the last, then closes the writer."""
    for rid in request_ids:
        w.write(record(rid))
        await w.flush()
        clock.now += timedelta(seconds=1)
    await w.close()


def ids(path: Path) -> list[str]:
    """Request ids in the ledger at `path`, its rotated files included."""
    return [line["request_id"] for line in read_ledger(ledger_files(path))]


def ids_in(file: Path) -> list[str]:
    """Request ids in this one file."""
    return [line["request_id"] for line in read_ledger([file])]


# Records


def test_a_record_is_one_json_object_with_an_exact_cost_string_and_an_iso_utc_time() -> None:
    data = json.loads(record(ts=DAY.timestamp() + 0.25).to_json())
    assert data["cost_usd"] == "0.000087500"
    assert data["ts"] == "2026-11-23T12:00:00.250Z"
    assert data["kind"] == "request" and data["ttft_s"] is None


def test_a_record_reads_back_from_its_json_line() -> None:
    original = record(cost="1.234567891", ttft_s=0.5, kind="attempt", outcome="hedge_lost")
    assert CallRecord.from_json(json.loads(original.to_json())) == original


# Writing


async def test_records_reach_the_disk_as_exact_json_lines_in_a_new_directory(tmp_path: Path) -> None:
    path = tmp_path / "spend" / "ledger.jsonl"
    w = writer(path)
    await w.start()
    w.write(record())
    await w.close()
    [line] = path.read_text().splitlines()
    assert json.loads(line)["cost_usd"] == "0.000087500"


async def test_write_only_queues_and_never_touches_the_disk(tmp_path: Path) -> None:
    path, w = await started(tmp_path)
    for i in range(500):
        w.write(record(f"r{i}"))
    assert not path.exists()   # nothing awaited yet, so the writer has not run: write() did no I/O
    await w.close()


async def test_flush_puts_everything_queued_on_disk_in_order(tmp_path: Path) -> None:
    path, w = await started(tmp_path)
    for i in range(50):
        w.write(record(f"r{i}"))
    await w.flush()
    assert ids(path) == [f"r{i}" for i in range(50)]
    await w.close()


async def test_close_writes_what_is_queued_and_later_records_are_dropped(tmp_path: Path) -> None:
    path, w = await started(tmp_path)
    w.write(record("before"))
    await w.close()
    w.write(record("after"))   # must not raise on the request path
    await w.flush()
    assert ids(path) == ["before"]


async def test_a_writer_never_started_still_flushes_on_close(tmp_path: Path) -> None:
    path = tmp_path / "ledger.jsonl"
    w = writer(path)
    w.write(record())
    await w.close()
    assert ids(path) == ["r1"]


async def test_appending_keeps_what_the_file_already_held(tmp_path: Path) -> None:
    path = tmp_path / "ledger.jsonl"
    path.write_bytes(record("old").to_json() + b"\n")
    os.utime(path, (DAY.timestamp(), DAY.timestamp()))
    w = writer(path)
    await w.start()
    w.write(record("new"))
    await w.close()
    assert ids(path) == ["old", "new"]


async def test_a_disk_error_loses_the_batch_but_not_the_writer(tmp_path: Path,
                                                                caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "ledger.jsonl"
    path.mkdir()   # a directory where the file should be: every append fails
    w = writer(path)
    await w.start()
    w.write(record())
    with caplog.at_level(logging.ERROR, logger="recloser.ledger"):
        await w.flush()
    assert "could not write 1 ledger records" in caplog.text
    await w.close()


# Rotation


async def test_size_rotation_starts_a_new_file_before_one_passes_the_limit(tmp_path: Path) -> None:
    path = tmp_path / "ledger.jsonl"
    clock = Clock()
    line_size = len(record("r00").to_json()) + 1
    w = writer(path, clock, rotate_mb=(3.5 * line_size) / (1024 * 1024), keep=100)
    await w.start()
    await one_flush_a_second(w, clock, [f"r{i:02d}" for i in range(10)])
    files = ledger_files(path)
    assert [len(f.read_bytes().splitlines()) for f in files] == [3, 3, 3, 1]
    assert ids(path) == [f"r{i:02d}" for i in range(10)]   # nothing lost, nothing split


async def test_a_batch_larger_than_the_limit_is_split_across_files(tmp_path: Path) -> None:
    path = tmp_path / "ledger.jsonl"
    line_size = len(record("r00").to_json()) + 1
    w = writer(path, rotate_mb=(2 * line_size) / (1024 * 1024), keep=100)
    await w.start()
    for i in range(6):
        w.write(record(f"r{i:02d}"))
    await w.close()   # one batch, rotated twice within the same second
    assert [len(f.read_bytes().splitlines()) for f in ledger_files(path)] == [2, 2, 2]
    assert ids(path) == [f"r{i:02d}" for i in range(6)]


async def test_rotation_keeps_only_the_newest_rotated_files(tmp_path: Path) -> None:
    path = tmp_path / "ledger.jsonl"
    clock = Clock()
    w = writer(path, clock, rotate_mb=1e-6, keep=2)   # every record rotates the one before out
    await w.start()
    await one_flush_a_second(w, clock, [f"r{i}" for i in range(6)])
    assert ids(path) == ["r3", "r4", "r5"]   # two rotated files kept, plus the current one


async def test_daily_rotation_follows_the_injected_clock(tmp_path: Path) -> None:
    path = tmp_path / "ledger.jsonl"
    clock = Clock(datetime(2026, 11, 23, 23, 59, 59, tzinfo=UTC))
    w = writer(path, clock)
    await w.start()
    w.write(record("late"))
    await w.flush()
    clock.now = datetime(2026, 11, 24, 0, 0, 1, tzinfo=UTC)
    w.write(record("early"))
    await w.close()
    rotated, current = ledger_files(path)
    assert rotated.name == "ledger.jsonl.20261124-000001" and current == path
    assert (ids_in(rotated), ids_in(current)) == (["late"], ["early"])


async def test_no_daily_rotation_when_it_is_turned_off(tmp_path: Path) -> None:
    path = tmp_path / "ledger.jsonl"
    clock = Clock()
    w = writer(path, clock, rotate_daily=False)
    await w.start()
    w.write(record("a"))
    await w.flush()
    clock.now += timedelta(days=2)
    w.write(record("b"))
    await w.close()
    assert ledger_files(path) == [path]


async def test_a_file_left_from_an_earlier_day_rotates_on_the_first_write(tmp_path: Path) -> None:
    path = tmp_path / "ledger.jsonl"
    path.write_bytes(record("yesterday").to_json() + b"\n")
    os.utime(path, ((DAY - timedelta(days=1)).timestamp(),) * 2)
    w = writer(path, Clock(DAY))
    await w.start()
    w.write(record("today"))
    await w.close()
    assert [ids_in(f) for f in ledger_files(path)] == [["yesterday"], ["today"]]


async def test_rotation_neither_counts_nor_deletes_unrelated_siblings(tmp_path: Path) -> None:
    path = tmp_path / "ledger.jsonl"
    backup = tmp_path / "ledger.jsonl.bak"
    backup.write_text("an operator's copy\n")
    clock = Clock()
    w = writer(path, clock, rotate_mb=1e-6, keep=1)
    await w.start()
    for i in range(4):
        w.write(record(f"r{i}"))
        await w.flush()
        clock.now += timedelta(seconds=1)
    await w.close()
    assert backup.read_text() == "an operator's copy\n"
    assert backup not in ledger_files(path)


# Reading


def test_rotated_files_are_read_oldest_first_then_the_current_one(tmp_path: Path) -> None:
    (tmp_path / "l.jsonl.20260102-000000").write_bytes(record("second").to_json() + b"\n")
    (tmp_path / "l.jsonl.20260101-000000").write_bytes(record("first").to_json() + b"\n")
    (tmp_path / "l.jsonl").write_bytes(record("current").to_json() + b"\n")
    assert ids(tmp_path / "l.jsonl") == ["first", "second", "current"]


def test_a_torn_last_line_is_skipped_with_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "l.jsonl"
    path.write_bytes(record("whole").to_json() + b"\n" + record("torn").to_json()[:40])
    with caplog.at_level(logging.WARNING, logger="recloser.ledger"):
        assert ids(path) == ["whole"]
    assert "l.jsonl:2: not a ledger record" in caplog.text
