"""`serve --workers N`: N gateway processes on one port (SO_REUSEPORT), one supervisor.

Each worker is a fresh `python -m gateway serve --worker` process (nothing forked from a process
that already ran an event loop). Metrics go through prometheus-client's multiprocess mode, so one
scrape of any worker shows the whole gateway. Breaker, budget and rate-limit state is per worker
unless the policy shares it through Redis (`state:`).
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

log = logging.getLogger("recloser.workers")

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
WORKERS_ENV = "RECLOSER_WORKERS"     # how many workers share the port (and the canaries' daily budget)
RESTART_PAUSE_S = 1.0
# Beyond a worker's own grace: how long it may take to unwind and flush before it is killed.
EXIT_MARGIN_S = 10.0


@dataclass(frozen=True)
class Listeners:
    host: str
    port: int
    metrics_host: str = "127.0.0.1"
    metrics_port: int | None = None


def worker_command(policy: str, at: Listeners, extra: Sequence[str] = ()) -> list[str]:
    command = [sys.executable, "-m", "gateway", "serve", "--policy", policy, "--host", at.host,
               "--port", str(at.port), "--worker", *extra]
    if at.metrics_port is not None:
        command += ["--metrics-host", at.metrics_host, "--metrics-port", str(at.metrics_port)]
    return command


def _ignore_sighup() -> None:
    # Until a worker's loop installs its own handler, a forwarded SIGHUP must not kill it; an ignored
    # signal stays ignored across exec.
    signal.signal(signal.SIGHUP, signal.SIG_IGN)


def supervise(policy: str, at: Listeners, workers: int, grace_s: float, extra: Sequence[str] = ()) -> int:
    """Runs `workers` gateway processes until SIGTERM/SIGINT; restarts any that dies. SIGHUP is passed
    on to every worker, so each reloads the policy.

    SIGTERM goes on to every worker at once (each turns unready and drains), and the supervisor
    waits out their grace before it exits."""
    metrics_dir = Path(tempfile.mkdtemp(prefix="recloser-metrics-"))
    env = {**os.environ, MULTIPROC_ENV: str(metrics_dir), WORKERS_ENV: str(workers)}
    stopping = False
    procs: list[subprocess.Popen[bytes]] = []

    def start() -> subprocess.Popen[bytes]:
        return subprocess.Popen(worker_command(policy, at, extra), env=env, preexec_fn=_ignore_sighup)

    def forward(signum: int) -> None:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signum)

    def stop(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        forward(signal.SIGTERM)

    def reload(signum: int, frame: FrameType | None) -> None:
        forward(signal.SIGHUP)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGHUP, reload)
    try:
        procs.extend(start() for _ in range(workers))
        print(f"recloser: {workers} workers on http://{at.host}:{at.port}/v1 "
              f"(pids {', '.join(str(p.pid) for p in procs)})", flush=True)
        while not stopping:
            time.sleep(0.2)
            for i, proc in enumerate(procs):
                code = proc.poll()
                if code is None or stopping:
                    continue
                _mark_dead(proc.pid)
                log.error("worker %d exited with %s; starting another", proc.pid, code)
                time.sleep(RESTART_PAUSE_S)
                procs[i] = start()
        return 0
    finally:
        forward(signal.SIGTERM)
        deadline = time.monotonic() + grace_s + EXIT_MARGIN_S
        for proc in procs:
            try:
                proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
        shutil.rmtree(metrics_dir, ignore_errors=True)


def _mark_dead(pid: int) -> None:
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]
