"""The attempt journal: `<ledger>.attempts.<pid>`, one per gateway process, beside the ledger.

It holds the `started` and `failed` lines of `interrupted.py`, so the ledger itself keeps its one
line per charged call. The ledger writer appends a batch's journal lines before its ledger lines,
so a start is on disk no later than its end. While running, the writer knows which attempts are
still open and, once the journal passes `COMPACT_BYTES`, rewrites it with just those: its size
stays bounded by what is in flight. A clean shutdown deletes it.

At the next start `recover()` takes, under a lock, every journal whose process is gone (or has
our pid: a previous life of ours), writes an interrupted record to the ledger for each attempt no
ledger record closed, then deletes those journals. A crash half-way is harmless: the interrupted
records already written close their attempts the next time.
"""

from __future__ import annotations

import fcntl
import logging
import os
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from gateway.metering.interrupted import (AttemptFailed, AttemptStarted, JournalEntry, interrupted_records,
                                          still_open)
from gateway.metering.record import CallRecord

log = logging.getLogger("recloser.ledger")

COMPACT_BYTES = 4 * 1024 * 1024
_JOURNAL = re.compile(r"\.attempts\.(\d+)$")


def journal_path(ledger: Path, pid: int) -> Path:
    return ledger.with_name(f"{ledger.name}.attempts.{pid}")


def journals(ledger: Path) -> list[tuple[int, Path]]:
    """Every process's journal beside the ledger, with its pid."""
    try:
        siblings = list(ledger.parent.iterdir())
    except OSError:
        return []
    found = []
    for p in siblings:
        if p.name.startswith(ledger.name + "."):
            m = _JOURNAL.fullmatch(p.name[len(ledger.name):])
            if m is not None:
                found.append((int(m.group(1)), p))
    return sorted(found)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True            # someone else's process: alive
    return True


@contextmanager
def recovery_lock(ledger: Path) -> Iterator[None]:
    """One process recovers at a time: two workers starting together must not both charge an attempt."""
    ledger.parent.mkdir(parents=True, exist_ok=True)
    with open(ledger.with_name(ledger.name + ".attempts.lock"), "a+b") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def recover(ledger: Path, own_pid: int, read: Callable[[list[Path]], Iterator[dict[str, Any]]],
            ledger_files: Callable[[Path], list[Path]],
            alive: Callable[[int], bool] = pid_alive) -> list[CallRecord]:
    """Closes the attempts dead processes left open; returns the interrupted records it appended."""
    with recovery_lock(ledger):
        dead = [p for pid, p in journals(ledger) if pid == own_pid or not alive(pid)]
        if not dead:
            return []
        started = list(read(dead))
        waiting = still_open(started, ())
        records: list[CallRecord] = []
        if waiting:
            oldest = min(s.ts for s in waiting)
            # Ledger files rotated before the oldest start cannot hold its end: spare reading them.
            records = interrupted_records(still_open(started, read(_files_since(ledger_files(ledger), oldest))))
        if records:
            with ledger.open("ab") as f:
                f.write(b"".join(r.to_json() + b"\n" for r in records))
            log.warning("%d upstream calls were in flight when the gateway last stopped; written to %s as "
                        "interrupted, charged their worst case", len(records), ledger)
        for p in dead:
            p.unlink(missing_ok=True)
        return records


def _files_since(files: list[Path], ts: float) -> list[Path]:
    """The ledger files that may hold a line written at or after `ts` (a rotated file's mtime is its last line)."""
    out = []
    for p in files:
        try:
            if p.stat().st_mtime >= ts - 60:
                out.append(p)
        except OSError:
            continue
    return out


class OpenAttempts:
    """The journal's started lines not yet closed, for compaction. Touched only by the writer's batches."""

    def __init__(self) -> None:
        self._lines: dict[tuple[str, int], bytes] = {}
        self._by_request: dict[str, set[int]] = {}

    def __len__(self) -> int:
        return len(self._lines)

    def journal(self, entry: JournalEntry, line: bytes) -> None:
        if isinstance(entry, AttemptStarted):
            self._lines[(entry.request_id, entry.attempt)] = line
            self._by_request.setdefault(entry.request_id, set()).add(entry.attempt)
        elif isinstance(entry, AttemptFailed):
            self._close(entry.request_id, [entry.attempt])

    def ledger(self, record: CallRecord) -> None:
        """A request record ends all its attempts."""
        if record.kind == "request" and record.request_id in self._by_request:
            self._close(record.request_id, [i for i in self._by_request[record.request_id] if i < record.attempts])

    def lines(self) -> list[bytes]:
        return list(self._lines.values())

    def _close(self, request_id: str, indices: list[int]) -> None:
        held = self._by_request.get(request_id)
        if held is None:
            return
        for i in indices:
            self._lines.pop((request_id, i), None)
            held.discard(i)
        if not held:
            del self._by_request[request_id]
