"""`recloser drill`: runs the drill's runs (side by side in processes, or one after another), prints each
row of the table the moment the runs it compares have finished that phase, and a progress line meanwhile.

Side by side, each run is a spawned process with its own gateway, sims and client, so no run waits on
another's interpreter lock and nothing is shared but the machine; all of them start their traffic at
once (a barrier after every gateway listens), so runs compared with each other go through each phase
under the same load. Runs report phase by phase over a queue; this process only prints.
"""

from __future__ import annotations

import multiprocessing
import queue
import shutil
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TextIO

from gateway.commands.drill import PhaseReport, run_drill_once
from gateway.commands.drill_plan import DrillSettings, Job, Table, compared, drill_jobs, intro, planned_seconds, progress


class Out(Protocol):
    def line(self, text: str) -> None:
        """A result: part of the table or of the summary."""

    def progress(self, text: str) -> None:
        """Where the runs are, after something changed."""

    def tick(self, text: str) -> None:
        """Where the runs are, once a second while nothing changed."""


class Console:
    """Results on stdout, progress on stderr: rewritten in place on a terminal, a line per change elsewhere."""

    def __init__(self, stdout: TextIO = sys.stdout, stderr: TextIO = sys.stderr) -> None:
        self.stdout, self.stderr = stdout, stderr
        self.tty = stderr.isatty()
        self._drawn = False

    def _erase(self) -> None:
        if self._drawn:
            self.stderr.write("\r\033[K")
            self.stderr.flush()
            self._drawn = False

    def line(self, text: str) -> None:
        self._erase()   # a result never lands after a half-drawn progress line
        self.stdout.write(text + "\n")
        self.stdout.flush()

    def progress(self, text: str) -> None:
        if self.tty:
            self._erase()
            self.stderr.write(text[:shutil.get_terminal_size().columns - 1])
            self._drawn = True
        else:
            self.stderr.write(text + "\n")
        self.stderr.flush()

    def tick(self, text: str) -> None:
        if self.tty:
            self.progress(text)

    def close(self) -> None:
        self._erase()


@dataclass(frozen=True)
class Event:
    key: str
    index: int                        # the phase; -1 once the run is over
    report: PhaseReport | None = None  # None: the phase starts (or, index -1, the run ended well)
    error: str = ""


def run_job(job: Job, s: DrillSettings, send: Callable[[Event], None], ready: Callable[[], None]) -> None:
    try:
        run_drill_once(job.breakers, s.rate_per_s, s.phase_s, job.canaries, job.phases, job.active_probes,
                       on_phase=lambda i, r: send(Event(job.key, i, r)), ready=ready)
        send(Event(job.key, -1))
    except BaseException:  # told to the parent, which stops the drill and prints it
        send(Event(job.key, -1, error=traceback.format_exc()))


def _in_process(job: Job, s: DrillSettings, events: Any, start: Any) -> None:
    def ready() -> None:
        start.wait(timeout=120)   # every run's gateway is up: traffic starts everywhere at once

    def send(event: Event) -> None:
        if event.error:
            start.abort()         # the others stop waiting for a run that will never be ready
        events.put(event)

    run_job(job, s, send, ready)


class Runs(Protocol):
    def next_event(self, timeout_s: float) -> Event | None: ...

    def stop(self) -> None: ...


class Processes:
    """Every run at once, each in a spawned process (no fork: the parent may hold threads and loops)."""

    def __init__(self, jobs: tuple[Job, ...], s: DrillSettings) -> None:
        ctx = multiprocessing.get_context("spawn")
        self._events = ctx.Queue()
        # Held for as long as the runs: a process forgets its arguments once started, and a barrier
        # nobody holds is unlinked before a slow child has attached to it.
        self._start = ctx.Barrier(len(jobs))
        self._procs = {job.key: ctx.Process(target=_in_process, args=(job, s, self._events, self._start),
                                            name=f"drill {job.key}", daemon=True) for job in jobs}
        for p in self._procs.values():
            p.start()

    def next_event(self, timeout_s: float) -> Event | None:
        try:
            event: Event = self._events.get(timeout=timeout_s)
            return event
        except queue.Empty:
            for key, p in self._procs.items():   # a process that died without a word: killed, out of memory
                if p.exitcode not in (None, 0):
                    return Event(key, -1, error=f"the run's process exited with {p.exitcode}")
            return None

    def stop(self) -> None:
        for p in self._procs.values():
            if p.is_alive():
                p.terminate()
            p.join(timeout=10)


class InSequence:
    """One run after another on a thread of this process: each run has the machine to itself."""

    def __init__(self, jobs: tuple[Job, ...], s: DrillSettings) -> None:
        self._events: queue.Queue[Event] = queue.Queue()
        self._halt = threading.Event()

        def all_jobs() -> None:
            for job in jobs:
                if self._halt.is_set():
                    return
                run_job(job, s, self._events.put, lambda: None)

        self._thread = threading.Thread(target=all_jobs, name="drill runs", daemon=True)
        self._thread.start()

    def next_event(self, timeout_s: float) -> Event | None:
        try:
            return self._events.get(timeout=timeout_s)
        except queue.Empty:
            return None

    def stop(self) -> None:
        self._halt.set()   # the run under way finishes its phases; the thread is a daemon if we leave first


def run_drill(s: DrillSettings, out: Out | None = None, chart: Path | None = None,
              clock: Callable[[], float] = time.monotonic) -> int:
    console = Console() if out is None else None
    out = out or console
    assert out is not None
    if chart is not None:
        from gateway.commands.drill_chart import ChartUnavailable, check_chart

        try:
            check_chart(chart)   # before the drill, not after a minute of it
        except ChartUnavailable as e:
            print(f"recloser drill: {e}", file=sys.stderr)
            return 2
    jobs = drill_jobs(s)
    started = clock()
    deadline = started + 3 * planned_seconds(s) + 120   # bounded: a wedged run ends the drill
    out.progress(progress(jobs, {}, 0.0, idle=f"starting {len(jobs)} runs"))
    out.line(intro(s))
    table = Table(s)
    results: dict[str, list[PhaseReport]] = {job.key: [] for job in jobs}
    running: dict[str, int] = {}
    for text in table.take(results):
        out.line(text)
    runs: Runs = Processes(jobs, s) if s.parallel else InSequence(jobs, s)
    try:
        finished = 0
        while finished < len(jobs):
            if clock() > deadline:
                out.line(f"recloser drill: the runs did not finish within {deadline - started:.0f} s")
                return 1
            event = runs.next_event(timeout_s=1.0)
            if event is None:
                out.tick(progress(jobs, running, clock() - started))
                continue
            if event.error:
                out.line(f"recloser drill: the run '{event.key}' failed:\n{event.error}")
                return 1
            if event.index < 0:
                finished += 1
                running.pop(event.key, None)
            elif event.report is None:
                running[event.key] = event.index
            else:
                results[event.key].append(event.report)
                for text in table.take(results):
                    out.line(text)
                continue   # the next phase's start follows at once: progress then
            if finished < len(jobs):
                out.progress(progress(jobs, running, clock() - started))
    finally:
        runs.stop()
        if console is not None:
            console.close()
    if chart is not None:
        from gateway.commands.drill_chart import draw_chart

        draw_chart(*compared(results), chart)
        out.line(f"chart: {chart}")
    return 0
