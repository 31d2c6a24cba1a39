"""The spend ledger: one JSON line per request (and per charged attempt), appended off the request
path, flushed on shutdown, rotated by size or by UTC day."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from gateway.metering.record import CallRecord
from gateway.metering.schema import LedgerSettings

log = logging.getLogger("switchyard.ledger")


def now_utc() -> datetime:
    return datetime.now(UTC)


def ledger_files(path: Path) -> list[Path]:
    """The current file and its rotated siblings (`<path>.<stamp>`), oldest first."""
    rotated = sorted(p for p in path.parent.glob(path.name + ".*") if p.is_file())
    return rotated + ([path] if path.is_file() else [])


def read_ledger(paths: Iterable[Path]) -> Iterator[dict[str, Any]]:
    for path in paths:
        with path.open("rb") as f:
            for line in f:
                if line.strip():
                    yield orjson.loads(line)


class LedgerWriter:
    def __init__(self, settings: LedgerSettings, clock_utc: Callable[[], datetime] = now_utc) -> None:
        assert settings.path, "a ledger needs a path"
        self.path = Path(settings.path)
        self.settings = settings
        self.clock_utc = clock_utc
        self._queue: deque[CallRecord] = deque()
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._task: asyncio.Task[None] | None = None
        self._opened_day: str | None = None

    def write(self, record: CallRecord) -> None:
        """Queues a record; never waits on the disk."""
        self._queue.append(record)
        self._idle.clear()
        self._wake.set()

    async def start(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.exists():
            self._opened_day = datetime.fromtimestamp(self.path.stat().st_mtime, UTC).strftime("%Y%m%d")
        self._task = asyncio.create_task(self._run())

    async def flush(self) -> None:
        """Waits until everything queued so far is on disk."""
        while self._queue or not self._idle.is_set():
            self._wake.set()
            await self._idle.wait()

    async def close(self) -> None:
        await self.flush()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._queue:
                batch = [self._queue.popleft() for _ in range(len(self._queue))]
                data = b"".join(r.to_json() + b"\n" for r in batch)
                try:
                    await asyncio.to_thread(self._append, data)
                except OSError:
                    # Disk trouble must not take traffic down; the records are lost, and say so.
                    log.exception("could not write %d ledger records to %s", len(batch), self.path)
            self._idle.set()

    def _append(self, data: bytes) -> None:
        self._rotate_if_due(len(data))
        with self.path.open("ab") as f:
            f.write(data)
        if self._opened_day is None:
            self._opened_day = self.clock_utc().strftime("%Y%m%d")

    def _rotate_if_due(self, incoming: int) -> None:
        if not self.path.exists():
            return
        today = self.clock_utc().strftime("%Y%m%d")
        too_big = self.path.stat().st_size + incoming > self.settings.rotate_mb * 1024 * 1024
        new_day = self.settings.rotate_daily and self._opened_day is not None and self._opened_day != today
        if not (too_big or new_day):
            return
        stamp = self.clock_utc().strftime("%Y%m%d-%H%M%S")
        target = self.path.with_name(f"{self.path.name}.{stamp}")
        n = 1
        while target.exists():
            target = self.path.with_name(f"{self.path.name}.{stamp}-{n}")
            n += 1
        self.path.rename(target)
        self._opened_day = today
        rotated = sorted(p for p in self.path.parent.glob(self.path.name + ".*") if p.is_file())
        for old in rotated[: max(0, len(rotated) - self.settings.keep)]:
            old.unlink()
