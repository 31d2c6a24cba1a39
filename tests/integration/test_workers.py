"""`serve --workers N`: several processes on one port, and one scrape that shows them all."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import free_port, write_policy

ROOT = Path(__file__).resolve().parents[2]
POLICY = """
version: 1
providers:
  up: {kind: sim}
routes:
  chat: {targets: [{provider: up, model: m}]}
"""


@pytest.fixture
def two_workers(tmp_path: Path) -> Iterator[str]:
    port = free_port()
    policy = write_policy(tmp_path, POLICY)
    proc = subprocess.Popen([sys.executable, "-m", "gateway", "serve", "--policy", str(policy), "--port", str(port),
                             "--workers", "2"], cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        pids: set[int] = set()
        while len(pids) < 2 and time.monotonic() < deadline:  # until both workers answer
            try:
                with httpx.Client() as c:  # a new connection each time, so the kernel spreads them
                    pids.add(c.get(url + "/healthz").json()["pid"])
            except httpx.TransportError:
                time.sleep(0.1)
        assert len(pids) == 2, "both workers should answer on the one port"
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=20)


def test_two_workers_serve_one_port_and_one_scrape_counts_both(two_workers: str) -> None:
    body = {"model": "chat", "messages": [{"role": "user", "content": "hi"}]}
    for _ in range(40):
        with httpx.Client() as c:
            assert c.post(two_workers + "/v1/chat/completions", json=body).status_code == 200
    text = httpx.get(two_workers + "/metrics").text
    counted = re.search(r'recloser_upstream_attempts_total\{model="m",outcome="ok",provider="up",route="chat"\} '
                        r'(\S+)', text)
    assert counted is not None and float(counted.group(1)) == 40.0


def test_new_connections_are_spread_evenly_over_two_workers(two_workers: str) -> None:
    # Each worker has its own socket on the port (SO_REUSEPORT): the kernel hashes each new
    # connection to one of them, so two workers take about half each and together hold twice
    # what one does.
    served: dict[int, int] = {}
    for _ in range(400):
        with httpx.Client() as c:   # a new connection, from a new source port, each time
            pid = c.get(two_workers + "/healthz").json()["pid"]
            served[pid] = served.get(pid, 0) + 1
    assert len(served) == 2
    assert all(140 <= n <= 260 for n in served.values()), served
