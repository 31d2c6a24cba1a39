"""The spend ledger: one JSON line per request (and per charged attempt), appended off the request
path, flushed on shutdown, rotated by size or by UTC day.

`write()` only queues: the request path never waits on the disk. A background task takes whatever
has queued up and appends it in one batch, in a worker thread. Rotated files are named
`<path>.<YYYYmmdd-HHMMSS>` (the time of rotation, UTC) and only those are ever read or deleted
here, so an operator's `ledger.jsonl.bak` next to the ledger is safe.

`journal()` queues an attempt's start or failure the same way, for the attempt journal beside the
ledger (see journal.py). The writer starts a batch as soon as something is queued, so a start
reaches the file (the kernel's page cache: it survives the process, not the machine) within one
batch of the moment the attempt began, ahead of any record that ends it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from gateway.metering import journal as attempt_journal
from gateway.metering.interrupted import JournalEntry
from gateway.metering.record import CallRecord
from gateway.policy.metering import LedgerSettings

log = logging.getLogger("recloser.ledger")

_ROTATED = re.compile(r"\.(\d{8}-\d{6})(?:-(\d+))?$")
MB = 1024 * 1024


def now_utc() -> datetime:
    return datetime.now(UTC)


def rotated_files(path: Path) -> list[Path]:
    """The rotated siblings of a ledger (`<path>.<YYYYmmdd-HHMMSS>[-n]`), oldest first."""
    found: list[tuple[str, int, Path]] = []
    try:
        siblings = list(path.parent.iterdir())
    except OSError:
        return []
    for p in siblings:
        if p.name.startswith(path.name + ".") and p.is_file():
            m = _ROTATED.fullmatch(p.name[len(path.name):])
            if m is not None:
                found.append((m.group(1), int(m.group(2) or 0), p))
    return [p for _, _, p in sorted(found)]


def ledger_files(path: Path) -> list[Path]:
    """The rotated files, oldest first, then the current file: every line in the order written."""
    return rotated_files(path) + ([path] if path.is_file() else [])


def read_ledger(paths: Iterable[Path]) -> Iterator[dict[str, Any]]:
    """Parsed ledger lines. A line that is not a JSON object (say, the torn last line of a crash) is
    skipped with a warning: one bad line must not keep a gateway from starting or a report from
    being made."""
    for path in paths:
        with path.open("rb") as f:
            for number, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    data = orjson.loads(line)
                except orjson.JSONDecodeError:
                    data = None
                if isinstance(data, dict):
                    yield data
                else:
                    log.warning("%s:%d: not a ledger record, skipped", path, number)


class LedgerWriter:
    def __init__(self, settings: LedgerSettings, clock_utc: Callable[[], datetime] = now_utc) -> None:
        if not settings.path:
            raise ValueError("a ledger needs a path")
        self.path = Path(settings.path)
        self.settings = settings
        self.clock_utc = clock_utc
        self._queue: deque[CallRecord | JournalEntry] = deque()
        self._queued = 0                 # records ever queued …
        self._done = 0                   # … and ever written (or given up on after a disk error)
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()      # one batch at a time, so lines keep their order
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self._stopping = False
        self._size = 0                   # of the current file, kept here to spare a stat per line
        self._opened_day: str | None = None
        self._journal: Path | None = None        # this process's attempt journal, once it has a line
        self._journal_size = 0
        self._open = attempt_journal.OpenAttempts()

    def write(self, record: CallRecord) -> None:
        """Queues a record; never waits on the disk."""
        if self._closed:
            log.warning("ledger %s is closed; record %s dropped", self.path, record.request_id)
            return
        self._queue.append(record)
        self._queued += 1
        self._wake.set()

    def journal(self, entry: JournalEntry) -> None:
        """Queues an attempt's start or failure for the attempt journal; never waits on the disk."""
        if self._closed:
            return
        self._queue.append(entry)
        self._queued += 1
        self._wake.set()

    def recover(self) -> list[CallRecord]:
        """At start-up, before anything reads the ledger: the attempts killed processes left in flight,
        written as interrupted records (returned)."""
        return attempt_journal.recover(self.path, os.getpid(), read_ledger, ledger_files)

    async def start(self) -> None:
        await asyncio.to_thread(self._open_existing)
        self._task = asyncio.create_task(self._run(), name=f"ledger {self.path}")

    async def flush(self) -> None:
        """Waits until everything queued so far is on disk (records queued later are not waited for)."""
        target = self._queued
        if self._done >= target:
            return
        if self._task is None or self._task.done():
            await self._drain()          # not started (or stopped): write from here
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append((target, waiter))
        self._wake.set()
        await waiter

    async def close(self) -> None:
        """Flushes, then stops the writer; records written after this are dropped, with a warning."""
        await self.flush()
        self._closed = True
        task, self._task = self._task, None
        if task is not None:
            # Not cancelled: a batch half-way through its thread would be orphaned. Asked to stop, the
            # writer finishes what is queued and returns.
            self._stopping = True
            self._wake.set()
            await task
        await self._drain()
        if self._journal is not None and not self._open:
            # Every attempt ended in the ledger: nothing is left for a next start to recover.
            await asyncio.to_thread(self._journal.unlink, True)

    async def _run(self) -> None:
        while not self._stopping:
            await self._wake.wait()
            self._wake.clear()
            await self._drain()

    async def _drain(self) -> None:
        async with self._lock:
            while self._queue:
                batch = [self._queue.popleft() for _ in range(len(self._queue))]
                try:
                    await asyncio.to_thread(self._append, batch)
                except Exception:
                    # Disk trouble must not take traffic down: the records are lost, and the log says so.
                    log.exception("could not write %d ledger records to %s", len(batch), self.path)
                self._done += len(batch)
                self._wake_flushers()

    def _wake_flushers(self) -> None:
        still = []
        for target, waiter in self._waiters:
            if self._done >= target:
                if not waiter.done():
                    waiter.set_result(None)
            else:
                still.append((target, waiter))
        self._waiters = still

    # Below: in the worker thread, one batch at a time.

    def _open_existing(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.is_file():
            stat = self.path.stat()
            self._size = stat.st_size
            # A file last written on an earlier day holds that day's lines: it rotates on the next write.
            self._opened_day = datetime.fromtimestamp(stat.st_mtime, UTC).strftime("%Y%m%d")

    def _append(self, batch: list[CallRecord | JournalEntry]) -> None:
        records: list[CallRecord] = []
        journal_lines: list[bytes] = []
        for item in batch:
            if isinstance(item, CallRecord):
                records.append(item)
                self._open.ledger(item)
            else:
                line = item.to_json() + b"\n"
                journal_lines.append(line)
                self._open.journal(item, line)
        # Starts first: a kill between the two writes then leaves an end missing (charged as interrupted),
        # never a start (a call charged twice, or not at all).
        self._write_journal(journal_lines)
        self._append_records(records)

    def _write_journal(self, lines: list[bytes]) -> None:
        if not lines:
            return
        if self._journal is None:
            self._journal = attempt_journal.journal_path(self.path, os.getpid())
            self.path.parent.mkdir(parents=True, exist_ok=True)
        if self._journal_size > attempt_journal.COMPACT_BYTES:
            # Rewritten with only the attempts still open (the new lines among them), then swapped in whole.
            kept = b"".join(self._open.lines())
            spare = self._journal.with_name(self._journal.name + ".new")
            spare.write_bytes(kept)
            os.replace(spare, self._journal)
            self._journal_size = len(kept)
            return
        with self._journal.open("ab") as f:
            f.write(b"".join(lines))
        self._journal_size += sum(len(line) for line in lines)

    def _append_records(self, batch: list[CallRecord]) -> None:
        if not batch:
            return
        limit = self.settings.rotate_mb * MB
        if self.settings.rotate_daily and self._opened_day not in (None, self.clock_utc().strftime("%Y%m%d")):
            self._rotate()
        chunk: list[bytes] = []
        chunk_size = 0
        for record in batch:
            line = record.to_json() + b"\n"
            if self._size + chunk_size > 0 and self._size + chunk_size + len(line) > limit:
                self._write(chunk)       # the file is full: what it can take, then a new file
                chunk, chunk_size = [], 0
                self._rotate()
            chunk.append(line)
            chunk_size += len(line)
        self._write(chunk)

    def _write(self, lines: list[bytes]) -> None:
        if not lines:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)   # the directory may have been removed
        with self.path.open("ab") as f:
            f.write(b"".join(lines))
        self._size = self.path.stat().st_size
        if self._opened_day is None:
            self._opened_day = self.clock_utc().strftime("%Y%m%d")

    def _rotate(self) -> None:
        now = self.clock_utc()
        self._opened_day = None          # the next write starts a new file, and its day
        self._size = 0
        if not self.path.is_file() or self.path.stat().st_size == 0:
            return
        stamp = now.astimezone(UTC).strftime("%Y%m%d-%H%M%S")
        target = self.path.with_name(f"{self.path.name}.{stamp}")
        n = 1
        while target.exists():           # several rotations in one second
            target = self.path.with_name(f"{self.path.name}.{stamp}-{n}")
            n += 1
        self.path.rename(target)
        rotated = rotated_files(self.path)
        for old in rotated[: max(0, len(rotated) - self.settings.keep)]:
            old.unlink(missing_ok=True)
