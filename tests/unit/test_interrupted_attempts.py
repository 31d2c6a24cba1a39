"""Calls in flight when the gateway died: which started attempts never ended, and what each is charged."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from gateway.metering import journal
from gateway.metering.interrupted import (DEFAULT_MAX_OUTPUT_TOKENS, AttemptFailed, AttemptStarted,
                                          estimate_input_tokens, interrupted_records, max_output_tokens,
                                          still_open)
from gateway.metering.ledger import LedgerWriter, ledger_files, read_ledger
from gateway.metering.record import CallRecord
from gateway.metering.spend import spend_report
from gateway.metering.budgets import BudgetBook
from gateway.policy.metering import Budget, LedgerSettings

T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC).timestamp()


def started(rid: str = "r1", attempt: int = 0, ts: float = T0, cost: str = "0.002", **kw: Any) -> AttemptStarted:
    fields: dict[str, Any] = dict(
        ts=ts, request_id=rid, attempt=attempt, team="search", app="web", key_id="k", route="chat",
        provider="openai", model="gpt-4o-mini", endpoint="chat", stream=True, body_bytes=400, input_tokens=100,
        max_output_tokens=1000, worst_cost_usd=Decimal(cost), price_source="policy")
    return AttemptStarted(**{**fields, **kw})


def done(rid: str = "r1", attempts: int = 1, ts: float = T0 + 1, kind: str = "request", cost: str = "0.0001",
         **kw: Any) -> dict[str, Any]:
    """A ledger line as read back: the record that ends a request (or one of its attempts)."""
    fields: dict[str, Any] = dict(
        ts=ts, request_id=rid, team="search", app="web", key_id="k", route="chat", provider="openai",
        model="gpt-4o-mini", input_tokens=10, output_tokens=20, cached_input_tokens=0, cost_usd=Decimal(cost),
        price_source="policy", usage_source="reported", outcome="ok", attempts=attempts, fallback=False,
        hedged=False, stream=True, latency_s=1.0, ttft_s=0.1, kind=kind)
    return line(CallRecord(**{**fields, **kw}))


def line(entry: AttemptStarted | AttemptFailed | CallRecord) -> dict[str, Any]:
    return json.loads(entry.to_json())  # type: ignore[no-any-return]


def keys(attempts: list[AttemptStarted]) -> list[tuple[str, int]]:
    return [(s.request_id, s.attempt) for s in attempts]


# Which attempts are still open


def test_a_started_attempt_with_no_record_is_open() -> None:
    assert keys(still_open([line(started())], [])) == [("r1", 0)]


def test_a_request_record_closes_every_attempt_it_counts() -> None:
    journal_lines = [line(started(attempt=0)), line(started(attempt=1))]
    assert still_open(journal_lines, [done(attempts=2)]) == []


def test_a_request_record_leaves_open_an_attempt_started_after_it_counted() -> None:
    journal_lines = [line(started(attempt=0)), line(started(attempt=1))]
    assert keys(still_open(journal_lines, [done(attempts=1)])) == [("r1", 1)]


def test_an_attempt_that_failed_without_an_answer_is_closed_by_its_failure() -> None:
    journal_lines = [line(started(attempt=0)), line(AttemptFailed(T0 + 0.1, "r1", 0, "server_error")),
                     line(started(attempt=1))]
    assert keys(still_open(journal_lines, [])) == [("r1", 1)]


def test_a_record_written_before_the_start_is_another_request_that_reused_the_id() -> None:
    assert keys(still_open([line(started(ts=T0))], [done(ts=T0 - 3600)])) == [("r1", 0)]


def test_charged_attempt_records_do_not_close_anything_the_request_record_would_not() -> None:
    assert keys(still_open([line(started())], [done(kind="attempt", outcome="hedge_lost")])) == [("r1", 0)]


def test_an_interrupted_record_closes_its_attempt_so_recovery_is_done_once() -> None:
    journal_lines = [line(started(attempt=0)), line(started(attempt=1))]
    ledger = [line(r) for r in interrupted_records(still_open(journal_lines, []))]
    assert still_open(journal_lines, ledger) == []


# What an interrupted attempt is charged


def test_an_interrupted_attempt_is_charged_its_input_and_its_worst_case_as_journalled() -> None:
    [record] = interrupted_records([started(cost="0.0123")])
    assert (record.input_tokens, record.output_tokens, record.cost_usd) == (100, 1000, Decimal("0.0123"))
    assert (record.outcome, record.usage_source, record.kind, record.attempt) == \
        ("interrupted", "interrupted", "request", 0)
    assert (record.team, record.key_id, record.provider, record.ts) == ("search", "k", "openai", T0)


def test_a_request_with_two_legs_in_flight_is_one_request_and_one_charged_attempt() -> None:
    records = interrupted_records([started(attempt=0, provider="a"), started(attempt=1, provider="b")])
    assert [(r.provider, r.kind, r.attempts) for r in records] == [("a", "attempt", 1), ("b", "request", 2)]


def test_spend_counts_an_interrupted_request_and_its_cost() -> None:
    lines = [done(rid="r0", cost="0.5")] + [line(r) for r in interrupted_records([started(cost="0.25")])]
    total = spend_report(lines, "team")[-1]
    assert (total.requests, total.cost_usd, total.output_tokens) == (2, Decimal("0.75"), 1020)


def test_budgets_rebuilt_from_the_ledger_count_interrupted_spend() -> None:
    book = BudgetBook([Budget(name="daily", team="search", period="day", limit_usd=Decimal(1), action="reject")])
    book.load([line(r) for r in interrupted_records([started(cost="0.25")])],
              datetime.fromtimestamp(T0 + 60, UTC))
    assert book.spent(book.budgets[0], datetime.fromtimestamp(T0 + 60, UTC)) == Decimal("0.25")


def test_an_interrupted_attempt_on_a_callers_own_credentials_stays_the_callers_to_pay() -> None:
    journalled = AttemptStarted.from_json(line(started(cost="0.25", paid_by="client")))
    [record] = interrupted_records([journalled])
    assert record.paid_by == "client"
    lines = [done(rid="r0", cost="0.5"), line(record)]
    total = spend_report(lines, "team")[-1]
    assert (total.requests, total.cost_usd, total.client_paid_usd) == (2, Decimal("0.5"), Decimal("0.25"))
    book = BudgetBook([Budget(name="daily", team="search", period="day", limit_usd=Decimal(1), action="reject")])
    book.load(lines, datetime.fromtimestamp(T0 + 60, UTC))
    assert book.spent(book.budgets[0], datetime.fromtimestamp(T0 + 60, UTC)) == Decimal("0.5")


# The worst case, from the request


def test_the_output_cap_is_the_requests_then_the_models_then_a_default() -> None:
    assert max_output_tokens("chat", {"max_tokens": 50}, 8000) == 50
    assert max_output_tokens("responses", {"max_output_tokens": 70}, None) == 70
    assert max_output_tokens("chat", {}, 8000) == 8000
    assert max_output_tokens("chat", {}, None) == DEFAULT_MAX_OUTPUT_TOKENS
    assert max_output_tokens("embeddings", {"max_tokens": 50}, 8000) == 0


def test_input_tokens_are_estimated_from_the_body_size_rounding_up() -> None:
    assert (estimate_input_tokens(0), estimate_input_tokens(1), estimate_input_tokens(400)) == (0, 1, 100)


# The journal on disk


def test_recovery_charges_a_dead_processs_open_attempts_once_and_deletes_its_journal(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.jsonl"
    ledger.write_bytes(CallRecord.from_json(done(rid="r0")).to_json() + b"\n")
    dead = journal.journal_path(ledger, 999_999)
    dead.write_bytes(started(rid="r0").to_json() + b"\n" + started(rid="r1").to_json() + b"\n")
    records = journal.recover(ledger, os.getpid(), read_ledger, ledger_files, alive=lambda pid: False)
    assert [r.request_id for r in records] == ["r1"]
    assert [(x["request_id"], x["outcome"]) for x in read_ledger([ledger])] == [("r0", "ok"), ("r1", "interrupted")]
    assert not dead.exists()
    assert journal.recover(ledger, os.getpid(), read_ledger, ledger_files, alive=lambda pid: False) == []


def test_recovery_leaves_a_live_sibling_workers_journal_alone(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.jsonl"
    sibling = journal.journal_path(ledger, 4242)
    sibling.write_bytes(started().to_json() + b"\n")
    assert journal.recover(ledger, os.getpid(), read_ledger, ledger_files, alive=lambda pid: pid == 4242) == []
    assert sibling.exists() and not ledger.exists()


def test_recovery_takes_a_journal_with_its_own_pid_as_a_previous_life(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.jsonl"
    journal.journal_path(ledger, os.getpid()).write_bytes(started().to_json() + b"\n")
    records = journal.recover(ledger, os.getpid(), read_ledger, ledger_files, alive=lambda pid: True)
    assert [r.outcome for r in records] == ["interrupted"]


async def test_the_writer_journals_starts_ahead_of_the_records_that_end_them(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.jsonl"
    w = LedgerWriter(LedgerSettings(path=str(ledger)))
    await w.start()
    w.journal(started(rid="r1"))
    w.write(CallRecord.from_json(done(rid="r1")))
    w.journal(started(rid="r2"))
    await w.flush()
    own = journal.journal_path(ledger, os.getpid())
    assert [x["request_id"] for x in read_ledger([own])] == ["r1", "r2"]
    assert keys(still_open(read_ledger([own]), read_ledger([ledger]))) == [("r2", 0)]
    w.write(CallRecord.from_json(done(rid="r2")))
    await w.close()
    assert not own.exists()   # every attempt ended: nothing left to recover


async def test_a_full_journal_is_rewritten_with_only_the_attempts_still_open(tmp_path: Path,
                                                                             monkeypatch: Any) -> None:
    monkeypatch.setattr(journal, "COMPACT_BYTES", 2000)
    ledger = tmp_path / "ledger.jsonl"
    w = LedgerWriter(LedgerSettings(path=str(ledger)))
    await w.start()
    w.journal(started(rid="open"))
    for i in range(20):
        w.journal(started(rid=f"r{i}"))
        w.write(CallRecord.from_json(done(rid=f"r{i}")))
        await w.flush()
    own = journal.journal_path(ledger, os.getpid())
    assert own.stat().st_size < 2000 + 600
    assert keys(still_open(read_ledger([own]), read_ledger([ledger]))) == [("open", 0)]
    await w.close()
    assert own.exists()   # an attempt never ended: the next start charges it
